# OpenSearch 2.19.6 (local backend): a JDK 17 runtime; Maven fetches the zip once (chaoskit/systems/opensearch/dist.py);
# nodes run as nobody through runuser (util-linux, wanted by setup-system.sh already)
want java openjdk-17-jre-headless
want mvn maven
# OpenSearch 3.x (topology.version 3.*; the suite runs opensearch-stale-primary-3-8-0) needs Java 21 or newer:
# the distribution's openjdk-21 where it packages one (trixie, Ubuntu 24.04); bookworm has none -- install a
# JDK 21+ (e.g. Temurin) under /usr/lib/jvm or set OPENSEARCH_JAVA_HOME (chaoskit/jdk.py finds it)
if ! grep -qsE 'JAVA_VERSION="(2[1-9]|[3-9][0-9])' /usr/lib/jvm/*/release \
   && apt-cache policy openjdk-21-jre-headless 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  need+=(openjdk-21-jre-headless)
fi

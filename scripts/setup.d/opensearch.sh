# OpenSearch 2.19.6 (local backend): a JDK 17 runtime; Maven fetches the zip once (chaoskit/systems/opensearch/dist.py);
# nodes run as nobody through runuser (util-linux, wanted by setup-system.sh already)
want java openjdk-17-jre-headless
want mvn maven

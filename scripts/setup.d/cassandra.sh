# Cassandra 5.0.9 (local backend): a JDK 17 runtime; Maven fetches the jars once (chaoskit/systems/cassandra/dist.py)
want java openjdk-17-jre-headless
want mvn maven

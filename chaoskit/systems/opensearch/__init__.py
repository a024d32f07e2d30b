"""OpenSearch 2.19 cluster of 3: the Amazon OpenSearch Service stand-in.

Every node is cluster-manager eligible and holds data. The experiment's index ``chaoskit`` has 3 shards
with 1 replica each, spread over the nodes: every node holds primaries of some shards and replicas of
others. A write goes to the node holding its shard's primary, which forwards it to every in-sync replica
before acknowledging. When that node fails, the elected cluster manager promotes a replica of each of its
shards to primary (the cluster goes yellow: some replicas are missing) and writes carry on; when it comes
back its copies are recovered and the cluster goes green. Search sees what the last refresh (every
``refresh_interval``, 1 s) made visible: "typically eventual"; a GET by id is realtime.

Fault detection: a node that closes its connections (killed) is noticed at once; a silent one (partitioned,
frozen) after ``fault_detection_retries`` follower checks of ``fault_detection_timeout_s`` each (OpenSearch's
defaults: 3 x 10 s). Lab-sized: 256 MB heaps, ``cluster.info.update.interval`` 10 s (default 30 s, at least
10 s: how soon disk watermarks are noticed). Local backend: the zip from Maven Central (``dist``), nodes
run as ``nobody``; docker backend: ``$CHAOSKIT_OPENSEARCH_IMAGE`` (``node``).

``settings``, ``connection``, ``faults``, ``dist``, ``node``, ``state`` and ``system`` import no driver;
``topology`` imports opensearch-py (``pip install 'chaoskit[opensearch]'``).
"""

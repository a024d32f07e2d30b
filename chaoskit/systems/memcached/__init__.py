"""Memcached 1.6, three nodes: the ElastiCache for Memcached stand-in. A cache, not a database.

Each node is a plain ``memcached`` with nothing shared: no replication, no node-to-node traffic at all
(ElastiCache Memcached has none either). Which node holds a key is the *client's* choice (pymemcache's
``HashClient``: rendezvous hashing over the servers it was given). A killed node loses everything it held
and comes back empty. So there is no primary, no failover and no acknowledged write to lose: the figures
that matter are the hit ratio, the errors the application sees and the misses on keys it had cached
(:mod:`chaoskit.cache_checks`).

The local backend runs Debian's ``memcached`` (one per network namespace); the docker backend the official
``memcached`` image (``CHAOSKIT_MEMCACHED_IMAGE``) or the one ``chaoskit images`` builds from Debian's package.

``settings``, ``connection`` and ``system`` import no driver; ``topology`` imports pymemcache
(``pip install 'chaoskit[memcached]'``).
"""

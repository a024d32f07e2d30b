"""PostgreSQL primary + streaming replicas with automatic failover: the RDS Multi-AZ / Aurora stand-in.

Patroni (Debian's 3.0) manages each Postgres node and keeps the leader lock in a 3-member etcd
cluster; when the leader's lock expires (ttl) a replica is promoted. This is the field's standard
for self-managed Postgres HA. Lab-tuned: ttl 10 s, loop_wait 1 s, wal_sender_timeout 5 s (the
default made an old leader's demotion take ~52 s here).

``settings``, ``connection``, ``faults`` and ``system`` import no driver; ``topology`` imports psycopg
(``pip install 'chaoskit[postgres]'``).
"""

"""Redis with replicas and Sentinel: the ElastiCache / MemoryDB stand-in.

One primary, N replicas, M sentinels, lab-tuned (down-after 1000 ms). Ready means every sentinel
sees every replica and every other sentinel -- earlier failovers abort (-failover-abort-no-good-slave).

``settings``, ``connection``, ``faults`` and ``system`` import no driver; ``topology`` imports redis-py
(``pip install 'chaoskit[redis]'``).
"""

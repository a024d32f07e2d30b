"""How a user's own pymemcache reaches the running nodes (no driver until ``client()``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymemcache.client.hash import HashClient


@dataclass(frozen=True)
class MemcachedConnection:
    """How your own pymemcache reaches the nodes (``servers``: (host, port) this process reaches)."""

    servers: tuple[tuple[str, int], ...]
    nodes: dict[str, tuple[str, int]] = field(default_factory=dict)  # node name -> (host, port)

    def client(self, **kwargs: Any) -> HashClient:
        """pymemcache's ``HashClient`` over every node, the recommended way: ``ignore_exc=True`` (a dead node
        is a miss, not an error), a node marked dead after 2 failed retries 1 s apart and tried again after
        60 s; ``kwargs`` override any of its options. Raises ImportError without pymemcache
        (``pip install 'chaoskit[memcached]'``)."""
        from pymemcache.client.hash import HashClient

        opts: dict[str, Any] = {"ignore_exc": True, "connect_timeout": 0.5, "timeout": 0.5, "retry_attempts": 2,
                                "retry_timeout": 1.0, "dead_timeout": 60.0, "default_noreply": False, **kwargs}
        return HashClient(list(self.servers), **opts)

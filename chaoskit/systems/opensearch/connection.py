"""How a user's own opensearch-py reaches a running cluster (no driver until ``client()``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaoskit.systems.opensearch.settings import INDEX, PORT

if TYPE_CHECKING:
    from opensearchpy import OpenSearch


@dataclass(frozen=True)
class OpenSearchConnection:
    """How your own opensearch-py reaches the cluster: every node's address (port 9200, plain HTTP, no
    security plugin) and the index (documents ``{"v": <int>}`` with id ``str(v)``)."""

    hosts: tuple[str, ...]
    port: int = PORT
    index: str = INDEX
    nodes: dict[str, str] = field(default_factory=dict)  # node name -> address

    def client(self, **kwargs: Any) -> OpenSearch:
        """opensearch-py's own ``OpenSearch`` over every node; ``kwargs`` override its options. Raises
        ImportError without opensearch-py (``pip install 'chaoskit[opensearch]'``)."""
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=[{"host": h, "port": self.port} for h in self.hosts], **kwargs)

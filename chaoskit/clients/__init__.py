"""Workload clients: the Client protocol and retry presets (tenacity)."""

from chaoskit.clients.base import Client, Outcome
from chaoskit.clients.retry import RetryPolicy, call_with_policy

__all__ = ["Client", "Outcome", "RetryPolicy", "call_with_policy"]

"""The backend protocol: start nodes, fault them, cut links, tear everything down."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from chaoskit.backends.ledger import Ledger


@dataclass(frozen=True)
class NodeSpec:
    """How to run one server process. ``argv`` is run inside the node's network namespace/container."""

    name: str
    argv: tuple[str, ...]
    workdir: Path
    port: int
    user: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    image: str | None = None  # container image providing argv[0] (docker backend)
    extra_ports: tuple[int, ...] = ()  # other ports clients or chaoskit use (published too on Docker Desktop)
    replace_entrypoint: bool = False  # docker: argv[0] replaces the image's ENTRYPOINT (one given as a relative path)


@dataclass
class Node:
    """A started node. ``address`` is its address inside the topology's network (what servers announce)."""

    spec: NodeSpec
    address: str
    pid: int | None = None
    log_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    published: dict[int, tuple[str, int]] = field(default_factory=dict)  # node port -> where the host reaches it

    def endpoint(self, port: int) -> tuple[str, int]:
        """Where this host reaches the node's ``port``: its published address if any, else address:port."""
        return self.published.get(port, (self.address, port))

    @property
    def client_addr(self) -> tuple[str, int]:
        """Where clients on this host connect to the node's main port."""
        return self.endpoint(self.spec.port)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def port(self) -> int:
        return self.spec.port


@dataclass(frozen=True)
class LogLine:
    """One line of a node's log, and when the platform stamped it (seconds since the epoch) if it does:
    docker's log driver stamps every line it receives; a plain log file stamps nothing (``None``: the
    server's own timestamp in ``text`` is all there is)."""

    text: str
    at: float | None = None


class Backend(Protocol):
    """Where nodes run. Every method raises InfrastructureError when the platform refuses."""

    name: str
    ledger: Ledger  # what this backend created, written before creating it (and a lab's record)

    def prepare(self, names: list[str]) -> dict[str, str]:
        """Create the network for these node names; returns name -> address. Recorded in the ledger first."""
        ...

    def start(self, spec: NodeSpec) -> Node:
        """Start (or restart) a node's process; returns it with pid/address. Does not wait for readiness."""
        ...

    def kill(self, node: Node) -> None:
        """SIGKILL the node's process (no-op if it is not running)."""
        ...

    def stop(self, node: Node) -> None:
        """Stop the process gracefully (SIGTERM, then SIGKILL after a grace period)."""
        ...

    def pause(self, node: Node) -> None:
        """Freeze the process (SIGSTOP / docker pause)."""
        ...

    def resume(self, node: Node) -> None:
        """Thaw a paused process."""
        ...

    def is_running(self, node: Node) -> bool:
        """True while the node's process exists (paused counts as running)."""
        ...

    def is_paused(self, node: Node) -> bool:
        """True while the node is frozen (SIGSTOP / docker pause)."""
        ...

    def is_blocked(self, node: Node) -> bool:
        """True while rules that :meth:`block` added are in force on ``node`` (or, on a backend that
        re-applies them when the node starts again, while they are remembered for a stopped node)."""
        ...

    def state(self) -> dict[str, object]:
        """What a later process needs to re-attach to the running nodes (JSON-able; see ``attach``)."""
        ...

    def block(self, node: Node, peers: list[Node], *, one_way: bool = False,
              probability: float | None = None) -> None:
        """Drop traffic between ``node`` and ``peers`` (only inbound if one_way; a fraction if probability)."""
        ...

    def unblock(self, node: Node) -> None:
        """Remove every rule :meth:`block` added on ``node``."""
        ...

    def log_tail(self, node: Node, lines: int = 20) -> str:
        """The last lines of the node's log ('' if none)."""
        ...

    def log_lines(self, node: Node, since: float | None = None) -> list[LogLine]:
        """The node's whole log, line by line ([] if none); ``since`` (seconds since the epoch) drops the lines
        the platform stamped earlier (a backend that stamps none returns every line)."""
        ...

    def exec(self, node: Node, argv: list[str], timeout: float = 60.0) -> tuple[int, str]:
        """Run ``argv`` beside the node's server (its network namespace / inside its container), as an
        operator's tool would be (e.g. ``nodetool``); returns (exit status, stdout and stderr)."""
        ...

    def teardown(self) -> None:
        """Kill every node and remove every resource this backend created; idempotent, never raises."""
        ...


PARTITION_CHAIN = "CHAOSKIT"


def partition_rules(peers: list[Node], *, one_way: bool, probability: float | None) -> list[list[str]]:
    """iptables arguments (for the node's own namespace) that drop traffic with ``peers``.

    One chain is hooked into INPUT and OUTPUT: ``-s peer`` matches what arrives from a peer, ``-d peer``
    what leaves for it. ``one_way`` keeps only the inbound rules; ``probability`` drops a random share.
    """
    loss = ["-m", "statistic", "--mode", "random", "--probability", f"{probability:.4f}"] if probability else []
    rules = []
    for peer in peers:
        rules.append(["-A", PARTITION_CHAIN, "-s", peer.address, *loss, "-j", "DROP"])
        if not one_way:
            rules.append(["-A", PARTITION_CHAIN, "-d", peer.address, *loss, "-j", "DROP"])
    return rules


CHAIN_SETUP = [["-N", PARTITION_CHAIN], ["-I", "INPUT", "-j", PARTITION_CHAIN], ["-I", "OUTPUT", "-j", PARTITION_CHAIN]]

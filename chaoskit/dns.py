"""DNS endpoints: one dnsmasq per run serving the run's zone, records that follow the failover.

Managed databases hand out names, not addresses: RDS's writer / reader endpoints, ElastiCache's
primary endpoint. A failover there is a DNS update, and what a client sees depends on the record's
TTL and on how long the client keeps an address it resolved. An experiment with ``dns: {ttl_s: 5}``
gets a zone ``<run>.chaoskit.test`` served by dnsmasq with that TTL (``--local-ttl``); the records
live in one hosts file each in a directory dnsmasq watches (``--hostsdir``, inotify: a changed,
renamed or deleted file is answered within ~1 ms, measured on 2.90). The system's own failover hook
(Patroni's ``on_role_change`` callback, Sentinel's ``client-reconfig-script``) rewrites a file
atomically (temporary file + rename) -- no signal to dnsmasq, no chaoskit process in the loop.

On the local backend dnsmasq runs in the hub namespace on the subnet's third address (Toxiproxy
has the second); on docker (routed addressing) it is one more container of the run, of the image
``chaoskit/dnsmasq``, on the run's network just below Toxiproxy's address: nothing on the host. Either
way it is ledgered like a node: ``chaoskit cleanup`` ends it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.backends.docker_images import DNS_IMAGE
from chaoskit.drivers import Driver
from chaoskit.errors import InfrastructureError, MissingDependencyError, UsageError
from chaoskit.systems.base import Event

if TYPE_CHECKING:
    import dns.resolver

    from chaoskit.experiment import Experiment

DNS_PATTERNS = ("dns-endpoint", "dns-cached")  # the client patterns that resolve the run's names (clients.endpoint)
DRIVER = Driver("dns", "dnspython")  # what the DNS clients and the run's record watcher resolve with

DOMAIN = "chaoskit.test"  # RFC 2606: reserved for testing, never delegated
PORT = 53  # in the hub's own namespace: no conflict with a resolver of this host


@dataclass(frozen=True)
class DnsZone:
    """The run's zone: where it is served, where its records live, and their TTL."""

    domain: str  # <run>.chaoskit.test
    server: tuple[str, int]
    hosts_dir: Path
    ttl_s: int

    def name(self, label: str) -> str:
        """The full name of ``label`` in this zone (``writer`` -> ``writer.<run>.chaoskit.test``)."""
        return f"{label}.{self.domain}"

    def write(self, file: str, records: list[tuple[str, str]]) -> None:
        """Replace the hosts file ``file`` with ``records`` (address, label) atomically; none: remove it."""
        path = self.hosts_dir / file
        if not records:
            path.unlink(missing_ok=True)
            return
        tmp = self.hosts_dir / f".{file}.chaoskit"  # dnsmasq ignores dot files
        tmp.write_text("".join(f"{addr} {self.name(label)}\n" for addr, label in records))
        tmp.chmod(0o644)
        os.replace(tmp, path)

    def hook_lines(self, file: str, addr: str | None, label: str) -> list[str]:
        """sh lines that do what :meth:`write` does, for a hook script run by the system itself
        (``addr`` None: the address is the script's ``$ADDR`` variable)."""
        d, tmp = shlex.quote(str(self.hosts_dir)), f".{file}.$$"
        value = shlex.quote(addr) if addr else '"$ADDR"'
        return [f"printf '%s %s\\n' {value} {shlex.quote(self.name(label))} > {d}/{tmp}",
                f"chmod 644 {d}/{tmp}; mv -f {d}/{tmp} {d}/{file}"]

    def remove_line(self, file: str) -> str:
        return f"rm -f {shlex.quote(str(self.hosts_dir / file))}"


# ---- the hooks the systems install (run by the servers themselves) ----------------------------

def patroni_hook(zone: DnsZone, name: str, addr: str) -> str:
    """Patroni's ``on_start`` / ``on_role_change`` callback of node ``name`` (args: action, role, scope):
    as primary it points ``writer`` at itself and leaves ``reader``; as a replica it joins ``reader``."""
    reader = f"reader-{name}"
    return "\n".join([
        "#!/bin/sh", f"# chaoskit: the DNS records of {name}, kept by Patroni's callbacks ($1 action, $2 role)",
        'case "$1" in on_start|on_role_change) ;; *) exit 0 ;; esac',
        'case "$2" in',
        "  master|primary)", *(f"    {line}" for line in zone.hook_lines("writer", addr, "writer")),
        f"    {zone.remove_line(reader)} ;;",
        "  replica)", *(f"    {line}" for line in zone.hook_lines(reader, addr, "reader")), "    ;;",
        "esac", ""])


def sentinel_hook(zone: DnsZone) -> str:
    """Sentinel's ``client-reconfig-script`` (args: master, role, state, from-ip, from-port, to-ip, to-port),
    run by every sentinel that sees the switch: points ``primary`` at the promoted replica."""
    return "\n".join(["#!/bin/sh", "# chaoskit: Sentinel's client-reconfig-script: <master> <role> <state> "
                      "<from-ip> <from-port> <to-ip> <to-port>", 'ADDR="$6"',
                      *zone.hook_lines("primary", None, "primary"), ""])


def validate_dns_client(exp: Experiment) -> None:
    """The DNS client patterns (``chaoskit.clients.endpoint``) resolve the run's names: they need ``dns:``;
    ``cache_s`` is ``dns-cached``'s. ValueError with one line otherwise."""
    pattern = exp.client.pattern
    if pattern in DNS_PATTERNS and exp.dns is None:
        raise ValueError(f"client.pattern: {pattern} resolves the run's DNS names: add `dns: {{ttl_s: 5}}`")
    cache_s = exp.client.options.get("cache_s")
    if cache_s is not None and pattern != "dns-cached":
        raise ValueError("client.options.cache_s: only the dns-cached pattern keeps an address")
    if cache_s is not None and (isinstance(cache_s, bool) or not isinstance(cache_s, int | float) or cache_s <= 0):
        raise ValueError("client.options.cache_s: seconds to keep a resolved address (a number > 0)")


# ---- resolving ------------------------------------------------------------------------------

def resolver(server: tuple[str, int], timeout_s: float = 1.0) -> dns.resolver.Resolver:
    """A dnspython resolver that asks only ``server`` (no /etc/resolv.conf). dnspython is imported here,
    not with this module: validating an experiment needs no driver."""
    import dns.resolver

    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port = [server[0]], server[1]
    res.lifetime = res.timeout = timeout_s
    return res


class LookupFailed(OSError):
    """The run's DNS server did not answer a lookup (dnspython's timeout or error, as an OSError)."""


def lookup(res: dns.resolver.Resolver, name: str) -> tuple[list[str], int]:
    """The A records of ``name`` (sorted) and their TTL; ([], 0) when the name has none. LookupFailed when
    the server does not answer."""
    import dns.exception
    import dns.resolver

    try:
        answer = res.resolve(name, "A", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return [], 0
    except dns.exception.DNSException as exc:
        raise LookupFailed(f"{type(exc).__name__}: {exc}") from None
    return sorted(r.address for r in answer), int(answer.rrset.ttl) if answer.rrset is not None else 0


def refuse(backend_name: str) -> None:
    """DNS endpoints run on the local backend (with this host's dnsmasq: else exit 3), and on docker with routed
    addressing (the clients connect to the in-network addresses the records hold). UsageError (exit 2) elsewhere."""
    if backend_name == "docker":
        from chaoskit.backends.docker import addressing

        if addressing() != "routed":
            raise UsageError("dns: DNS endpoints on the docker backend need routed addressing (a Linux daemon)")
        return
    if backend_name != "local":
        raise UsageError(f"dns: DNS endpoints are not supported on the {backend_name} backend")
    if shutil.which("dnsmasq") is None:
        raise MissingDependencyError("`dnsmasq` not found: apt-get install -y dnsmasq-base (or run `make setup`)")


def zone_for(backend: Backend, run_id: str, workdir: Path, ttl_s: int) -> DnsZone:
    """The zone of a run: local, served in the hub namespace on the subnet's third address; docker, by a
    container on the run's network at the subnet's eighth host address (the hooks in the node containers
    write through the work directory's bind mount, and the server's inotify sees their writes)."""
    from chaoskit.backends.docker import DockerBackend
    from chaoskit.backends.local import LocalBackend

    hosts_dir = workdir / "dns" / "hosts"
    if isinstance(backend, LocalBackend):
        return DnsZone(f"{run_id}.{DOMAIN}", (str(list(backend.subnet.hosts())[2]), PORT), hosts_dir, ttl_s)
    if isinstance(backend, DockerBackend):
        return DnsZone(f"{run_id}.{DOMAIN}", (str(list(backend.subnet.hosts())[7]), PORT), hosts_dir, ttl_s)
    raise UsageError(f"dns: not supported on the {backend.name} backend")


class DnsServer:
    """dnsmasq as a process of the run in the hub namespace (local), or a container of the run (docker)."""

    def __init__(self, backend: Backend, zone: DnsZone) -> None:
        self.backend, self.zone = backend, zone
        self.proc: subprocess.Popen[bytes] | None = None
        self.node: Node | None = None  # docker: the server's container

    def argv(self) -> list[str]:
        z = self.zone
        return ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                f"--port={z.server[1]}", f"--listen-address={z.server[0]}", "--bind-interfaces",
                f"--local-ttl={z.ttl_s}", f"--hostsdir={z.hosts_dir}", f"--local=/{z.domain}/",
                "--user=root", "--pid-file=", "--log-facility=-"]

    def _netns(self) -> list[str]:
        """The argv prefix that runs dnsmasq in the hub namespace (local), after giving the hub its address."""
        from chaoskit.backends.local import LocalBackend

        if not isinstance(self.backend, LocalBackend):
            return []
        hub, prefix = self.backend.hub, self.backend.subnet.prefixlen
        res = subprocess.run(["ip", "-n", hub, "addr", "replace", f"{self.zone.server[0]}/{prefix}", "dev", "br0"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise InfrastructureError(f"could not give the hub an address for dnsmasq: {res.stderr.strip()}")
        return ["ip", "netns", "exec", hub]

    def start(self, timeout: float = 10.0) -> None:
        """Start dnsmasq and wait until it answers for the zone; InfrastructureError (with its log) otherwise."""
        from chaoskit.backends.docker import DockerBackend

        workdir = self.zone.hosts_dir.parent
        self.zone.hosts_dir.mkdir(parents=True, exist_ok=True)
        self.zone.hosts_dir.chmod(0o777)  # hooks run as the servers' users (postgres)
        self.zone.write("ns", [(self.zone.server[0], "ns")])
        log_path = workdir / "dnsmasq.log"
        if isinstance(self.backend, DockerBackend):
            self.backend.addresses["dns"] = self.zone.server[0]
            node = self.node = self.backend.start(NodeSpec("dns", tuple(self.argv()), workdir, PORT, image=DNS_IMAGE))
            alive, tail = (lambda: self.backend.is_running(node)), (lambda: self.backend.log_tail(node))
        else:
            netns = self._netns()
            with log_path.open("ab") as log:
                proc = self.proc = subprocess.Popen([*netns, *self.argv()], cwd=workdir, stdout=log,
                                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                    start_new_session=True)
            self.backend.ledger.record("process", "dnsmasq", proc.pid)
            alive, tail = (lambda: proc.poll() is None), (lambda: log_path.read_text(errors="replace")[-1500:])
        self._wait_answering(timeout, alive, tail)

    def _wait_answering(self, timeout: float, alive: Callable[[], bool], tail: Callable[[], str]) -> None:
        import dns.exception  # dnspython: a run with DNS endpoints has it (chaoskit[redis] / [postgres])

        res_ = resolver(self.zone.server, 0.2)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(dns.exception.DNSException, OSError):
                if lookup(res_, self.zone.name("ns"))[0]:
                    return
            if not alive() or time.monotonic() > deadline:
                raise InfrastructureError("dnsmasq did not answer for the run's zone", tail())
            time.sleep(0.05)

    def stop(self) -> None:
        """End dnsmasq (docker: kill its container; teardown removes it). Never raises."""
        if self.node is not None:
            with contextlib.suppress(Exception):
                self.backend.kill(self.node)
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def watch(zone: DnsZone, labels: tuple[str, ...], sink: Callable[[Event], None], clock: Callable[[], float],
          node_of: Callable[[str], str | None], interval: float = 0.1) -> Callable[[], None]:
    """Ask the server for ``labels`` every ``interval`` and report each change of a record as a
    ``dns-update`` event (detail: ``writer -> 10.213.3.11``; node: the node at that address when there
    is one). Returns a function that stops it."""
    stop = threading.Event()

    def loop() -> None:
        import dns.exception

        res, last = resolver(zone.server, 0.5), dict.fromkeys(labels, None)
        while not stop.wait(interval):
            for label in labels:
                try:
                    addrs = lookup(res, zone.name(label))[0]
                except (dns.exception.DNSException, OSError):
                    continue
                if addrs != last[label]:
                    if last[label] is not None:
                        node = node_of(addrs[0]) if len(addrs) == 1 else None
                        sink(Event(clock(), "dns", "dns-update", f"{label} -> {','.join(addrs) or 'none'}", node))
                    last[label] = addrs

    threading.Thread(target=loop, daemon=True, name="watch-dns").start()
    return stop.set

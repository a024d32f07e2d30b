"""Toxiproxy on the client path: the server binary, a typed HTTP client, and the proxies of one run.

On the local backend the server is built by chaoskit itself from the Go module proxy (pinned: ``@latest``
resolves to the old v2.5.0), once, into ``~/.cache/chaoskit/toxiproxy-2.12.0/``, and runs as one more
process of the run, inside the run's hub namespace (ledgered, so ``chaoskit cleanup`` ends it by PID),
listening on its own address of the run's subnet. On the docker backend it is one more container of the
run (ledgered too), of the official image ``ghcr.io/shopify/toxiproxy:2.12.0`` (``CHAOSKIT_TOXIPROXY_IMAGE``)
or, where that cannot be pulled, ``chaoskit/toxiproxy:2.12.0`` that ``chaoskit images`` builds: nothing on
the host but Docker. One proxy per data node stands between the
workload client and that node; toxic faults (:mod:`chaoskit.toxics`) add toxics to those proxies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chaoskit.backends.base import Node, NodeSpec
from chaoskit.errors import InfrastructureError, MissingDependencyError, UsageError

if TYPE_CHECKING:
    from chaoskit.backends.base import Backend
    from chaoskit.backends.docker import DockerBackend
    from chaoskit.backends.local import LocalBackend
    from chaoskit.systems.base import Topology

VERSION = "2.12.0"
MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"
BINARY = "toxiproxy-server"
API_PORT = 8474
FIRST_PROXY_PORT = 20000
IMAGE = ("CHAOSKIT_TOXIPROXY_IMAGE", f"ghcr.io/shopify/toxiproxy:{VERSION}")  # FROM scratch, ENTRYPOINT /toxiproxy
LOCAL_TAG = f"chaoskit/toxiproxy:{VERSION}"  # its stand-in, built by `chaoskit images` (chaoskit/images/toxiproxy)
GO_MIN = (1, 23)  # toxiproxy 2.12.0's go.mod: go 1.23.0 (the toolchain is not switched: GOTOOLCHAIN=local)
Stream = Literal["upstream", "downstream"]


# ---- the server binary -----------------------------------------------------------------------

def cache_dir() -> Path:
    """Where the built server lives: ``$CHAOSKIT_CACHE_DIR`` or ``$XDG_CACHE_HOME/chaoskit`` (~/.cache)."""
    base = os.environ.get("CHAOSKIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "chaoskit")
    return Path(base) / f"toxiproxy-{VERSION}"


def server_binary(progress: Any = print) -> Path:
    """The toxiproxy-server binary, built with ``go install`` on first use (atomically: a directory
    renamed into place, under a lock, so concurrent runs build it once). MissingDependencyError
    without ``go``; InfrastructureError if the build fails."""
    final = cache_dir()
    binary = final / BINARY
    if binary.is_file():
        return binary
    go = shutil.which("go")
    if go is None:
        raise MissingDependencyError(f"`go` not found: toxic faults build Toxiproxy {VERSION} from source with "
                                     f"Go {GO_MIN[0]}.{GO_MIN[1]} or newer (Debian 12's golang-go, 1.19, is too old)")
    found = go_version(go)
    if found is not None and found < GO_MIN:
        raise MissingDependencyError(f"go {found[0]}.{found[1]} is too old: Toxiproxy {VERSION} needs Go "
                                     f"{GO_MIN[0]}.{GO_MIN[1]} or newer")
    final.parent.mkdir(parents=True, exist_ok=True)
    with (final.parent / f"toxiproxy-{VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file():  # another run built it while we waited
            return binary
        progress(f"building Toxiproxy {VERSION} with `go install` into {final} (once, ~40 s)")
        tmp = Path(tempfile.mkdtemp(prefix=f".toxiproxy-{VERSION}-", dir=final.parent))
        try:
            res = subprocess.run([go, "install", f"{MODULE}@v{VERSION}"], capture_output=True, text=True,
                                 env={**os.environ, "GOBIN": str(tmp), "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"},
                                 timeout=900)  # static: it runs in any container image too
            if res.returncode != 0 or not (tmp / "server").is_file():
                raise InfrastructureError(f"`go install {MODULE}@v{VERSION}` failed", res.stderr[-2000:])
            (tmp / "server").rename(tmp / BINARY)
            tmp.chmod(0o755)  # mkdtemp made it private
            shutil.rmtree(final, ignore_errors=True)  # a partial directory from an older chaoskit
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return binary


def go_version(go: str) -> tuple[int, int] | None:
    """(major, minor) of the Go toolchain at ``go`` ("go1.26.8" -> (1, 26)); None if it cannot tell."""
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


# ---- the HTTP API ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Toxic:
    """One toxic as the API knows it. ``toxicity`` is the fraction of connections it acts on."""

    name: str
    type: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "stream": self.stream, "toxicity": self.toxicity,
                "attributes": dict(self.attributes)}

    @classmethod
    def of(cls, data: dict[str, Any]) -> Toxic:
        return cls(data["name"], data["type"], data.get("stream", "downstream"), float(data.get("toxicity", 1.0)),
                   {k: int(v) for k, v in (data.get("attributes") or {}).items()})


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def of(cls, data: dict[str, Any]) -> Proxy:
        return cls(data["name"], data["listen"], data["upstream"], bool(data["enabled"]),
                   tuple(Toxic.of(t) for t in data.get("toxics") or ()))


class ToxiproxyClient:
    """Typed calls to Toxiproxy's HTTP API (stdlib urllib). Every failure is an InfrastructureError."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("error", detail)
            raise InfrastructureError(f"toxiproxy {method} {path}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise InfrastructureError(f"toxiproxy {method} {path}: {exc}") from None
        return json.loads(raw) if raw.strip() else None

    def version(self) -> str:
        return str(self._call("GET", "/version").get("version", ""))

    def proxies(self) -> dict[str, Proxy]:
        return {name: Proxy.of(p) for name, p in self._call("GET", "/proxies").items()}

    def create_proxy(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy.of(self._call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream}))

    def set_enabled(self, name: str, enabled: bool) -> Proxy:
        return Proxy.of(self._call("POST", f"/proxies/{name}", {"enabled": enabled}))

    def add_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        return Toxic.of(self._call("POST", f"/proxies/{proxy}/toxics", toxic.body()))

    def toxics(self, proxy: str) -> list[Toxic]:
        return [Toxic.of(t) for t in self._call("GET", f"/proxies/{proxy}/toxics")]

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")


# ---- the proxies of one run ------------------------------------------------------------------

class ClientPath:
    """One proxy per data node between the workload client and that node, and the address mapping
    both ways: a node's own address (what Sentinel announces) to the proxy's listen address."""

    def __init__(self, api: ToxiproxyClient, host: str) -> None:
        self.api, self.host = api, host
        self.routes: dict[tuple[str, int], tuple[str, int]] = {}  # node address:port -> proxy listen
        self.names: dict[tuple[str, int], str] = {}  # proxy listen -> node name

    def add(self, node: Node) -> tuple[str, int]:
        """A proxy for ``node``'s main port (named after the node); returns where clients now connect."""
        listen = (self.host, FIRST_PROXY_PORT + len(self.routes))
        self.api.create_proxy(node.name, f"{listen[0]}:{listen[1]}", f"{node.address}:{node.port}")
        self.routes[(node.address, node.port)] = listen
        self.names[listen] = node.name
        return listen

    def route(self, addr: tuple[str, int]) -> tuple[str, int] | None:
        """The proxy in front of the node at ``addr`` (its in-network address), None if there is none."""
        return self.routes.get((addr[0], int(addr[1])))

    def node_at(self, host: str, port: int) -> str | None:
        return self.names.get((host, int(port)))

    def reset(self) -> None:
        self.api.reset()

    def state(self) -> dict[str, Any]:
        """What a later process needs to use these proxies again (a lab's record; see :meth:`restore`)."""
        return {"api": self.api.url, "host": self.host,
                "routes": [[*node, *self.routes[node], self.names[self.routes[node]]] for node in self.routes]}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> ClientPath:
        """The proxies a lab's record describes (they exist: nothing is created)."""
        path = cls(ToxiproxyClient(state["api"]), state["host"])
        for host, port, lhost, lport, name in state["routes"]:
            path.routes[(host, int(port))] = (lhost, int(lport))
            path.names[(lhost, int(lport))] = name
        return path


class LocalToxiproxy:
    """The server as a process of a local run: in the hub namespace, on the subnet's second address."""

    def __init__(self, backend: LocalBackend, binary: Path) -> None:
        self.backend, self.binary = backend, binary
        self.host = str(list(backend.subnet.hosts())[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = ToxiproxyClient(f"http://{self.host}:{API_PORT}")

    def start(self, timeout: float = 10.0) -> ClientPath:
        hub, prefix = self.backend.hub, self.backend.subnet.prefixlen
        res = subprocess.run(["ip", "-n", hub, "addr", "replace", f"{self.host}/{prefix}", "dev", "br0"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise InfrastructureError(f"could not give the hub an address: {res.stderr.strip()}")
        workdir = Path(self.backend.workdir) / "toxiproxy"
        workdir.mkdir(parents=True, exist_ok=True)
        with (workdir / "toxiproxy.log").open("ab") as log:
            self.proc = subprocess.Popen(["ip", "netns", "exec", hub, str(self.binary), "-host", self.host,
                                          "-port", str(API_PORT)], cwd=workdir, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.backend.ledger.record("process", "toxiproxy", self.proc.pid)
        proc = self.proc
        return _answering(self.api, self.host, timeout, lambda: proc.poll() is None,
                          lambda: (workdir / "toxiproxy.log").read_text(errors="replace")[-1500:])

    def stop(self) -> None:
        """Remove every toxic (``POST /reset``), then end the server. Never raises."""
        if self.proc is None:
            return
        with contextlib.suppress(InfrastructureError):
            ToxiproxyClient(self.api.url, timeout=1.0).reset()
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def _answering(api: ToxiproxyClient, host: str, timeout: float, alive: Callable[[], bool],
               tail: Callable[[], str]) -> ClientPath:
    """The client path once the just-started server answers on its API; InfrastructureError with the
    server's log tail if it exits or does not answer within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            api.version()
            return ClientPath(api, host)
        except InfrastructureError:
            if not alive() or time.monotonic() > deadline:
                raise InfrastructureError("toxiproxy-server did not answer on its API", tail()) from None
            time.sleep(0.05)


def image() -> str:
    """The server's image on docker: ``$CHAOSKIT_TOXIPROXY_IMAGE``, else the official one (whose stand-in where
    it cannot be pulled is :data:`LOCAL_TAG`)."""
    return os.environ.get(*IMAGE)


CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


def stage_image(context: Path, say: Callable[[str], None]) -> None:
    """Put this host's trusted CA certificates in the image's build context (``host-ca.crt``; empty when none
    is found): the build stage's Go then reaches the module proxy wherever this host does, through a
    TLS-inspecting proxy too. They stay in the build stage, not in the image."""
    import ssl

    paths = ssl.get_default_verify_paths()
    found = next((Path(p) for p in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile, *CA_BUNDLES)
                  if p and Path(p).is_file() and Path(p).stat().st_size > 0), None)
    (context / "host-ca.crt").write_bytes(found.read_bytes() if found else b"")
    say(f"building {LOCAL_TAG}: Toxiproxy {VERSION} with Go 1.23 from Debian's bookworm-backports (~1 min)")


class DockerToxiproxy:
    """The server as one more container of a docker run, on the run's network, of :func:`image` (its
    entrypoint is the server: the container's command is only its options). Routed addressing only (this
    host reaches containers directly)."""

    def __init__(self, backend: DockerBackend) -> None:
        self.backend = backend
        self.host = str(list(backend.subnet.hosts())[8])  # just below the nodes (from hosts[9])
        self.api = ToxiproxyClient(f"http://{self.host}:{API_PORT}")
        self.node: Node | None = None

    def start(self, timeout: float = 20.0) -> ClientPath:
        workdir = self.backend.workdir / "toxiproxy"
        workdir.mkdir(parents=True, exist_ok=True)
        self.backend.addresses["toxiproxy"] = self.host
        argv = ("-host", "0.0.0.0", "-port", str(API_PORT))  # noqa: S104 -- its own netns
        node = self.node = self.backend.start(NodeSpec("toxiproxy", argv, workdir, API_PORT, image=image()))
        return _answering(self.api, self.host, timeout, lambda: self.backend.is_running(node),
                          lambda: self.backend.log_tail(node))

    def stop(self) -> None:
        """Remove every toxic (``POST /reset``), then kill the container (teardown removes it). Never raises."""
        if self.node is None:
            return
        with contextlib.suppress(InfrastructureError):
            ToxiproxyClient(self.api.url, timeout=1.0).reset()
        with contextlib.suppress(Exception):
            self.backend.kill(self.node)


def server_for(backend: Backend, progress: Any = print) -> LocalToxiproxy | DockerToxiproxy:
    """The Toxiproxy server of a run on this backend (after :func:`refuse` let it through); on the local
    backend the binary is built first if need be (:func:`server_binary`, which may raise)."""
    from chaoskit.backends.docker import DockerBackend
    from chaoskit.backends.local import LocalBackend

    if isinstance(backend, LocalBackend):
        return LocalToxiproxy(backend, server_binary(progress))
    if isinstance(backend, DockerBackend):
        return DockerToxiproxy(backend)
    raise UsageError(f"toxic faults are not supported on the {backend.name} backend")


def put_on_client_path(topology: Topology, backend: Backend, progress: Any) -> LocalToxiproxy | DockerToxiproxy:
    """Start the run's server and route the topology's clients through one proxy per data node;
    returns the server (its ``stop()`` resets every toxic and ends it). Stops it again if routing fails."""
    server = server_for(backend, progress)
    try:
        path = server.start()
        topology.route_clients(path)
    except BaseException:
        server.stop()
        raise
    progress(f"toxiproxy on the client path: {len(path.routes)} proxies at {server.host}")
    return server


def refuse(backend_name: str) -> None:
    """Toxic faults only run where chaoskit can put the proxy on the client path: the local backend, and
    the docker backend with routed addressing (Linux). UsageError (exit 2) elsewhere."""
    if backend_name == "local":
        return
    if backend_name == "docker":
        from chaoskit.backends.docker import addressing

        if addressing() == "routed":
            return
        raise UsageError("toxic faults on the docker backend need routed addressing (a Linux daemon): with "
                         "published ports (Docker Desktop, Colima) the proxies are not reachable yet")
    raise UsageError(f"toxic faults are not supported on the {backend_name} backend")

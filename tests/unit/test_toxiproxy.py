"""Toxic faults and the Toxiproxy client: validation, the API calls they make, the binary's set-up.

The HTTP client is exercised against a tiny stand-in server (pure request/response mapping); the real
Toxiproxy is in tests/integration/test_toxiproxy.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from chaoskit import toxiproxy
from chaoskit.backends.base import Node, NodeSpec
from chaoskit.errors import InfrastructureError, MissingDependencyError, UsageError
from chaoskit.faults import parse_fault
from chaoskit.toxics import TOXIC_KINDS, Latency, Timeout, ToxicFault, uses_toxics
from chaoskit.toxiproxy import ClientPath, Toxic, ToxiproxyClient


def test_yaml_entries_become_typed_toxic_faults() -> None:
    fault = parse_fault({"kind": "latency", "target": "primary", "latency_ms": 800, "jitter_ms": 50,
                         "direction": "upstream", "toxicity": 0.5})
    assert isinstance(fault, Latency) and fault.latency_ms == 800 and fault.direction == "upstream"
    assert parse_fault(fault.spec()) == fault
    assert fault.toxic() == Toxic(fault.toxic_name, "latency", "upstream", 0.5, {"latency": 800, "jitter": 50})
    assert fault.lasting


@pytest.mark.parametrize(("entry", "field"), [
    ({"kind": "latency", "latency_ms": -1}, "latency_ms"),
    ({"kind": "latency", "toxicity": 1.5}, "toxicity"),
    ({"kind": "latency", "direction": "sideways"}, "direction"),
    ({"kind": "timeout", "timeout": 5}, "timeout"),  # the field is timeout_ms
    ({"kind": "bandwidth", "rate_kb": 0}, "rate_kb"),
])
def test_bad_toxic_fields_are_rejected(entry: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        parse_fault(entry)


def test_every_kind_maps_to_a_toxiproxy_type() -> None:
    types = {parse_fault({"kind": k}).toxic().type for k in TOXIC_KINDS}  # type: ignore[attr-defined]
    assert types == {"latency", "timeout", "reset_peer", "bandwidth", "slow_close", "slicer", "limit_data"}
    assert uses_toxics([parse_fault({"kind": "kill"}), Timeout()]) and not uses_toxics([parse_fault({"kind": "kill"})])


def test_toxic_names_follow_the_spec() -> None:
    assert Latency(latency_ms=100).toxic_name == Latency(latency_ms=100).toxic_name
    assert Latency(latency_ms=100).toxic_name != Latency(latency_ms=200).toxic_name


# ---- apply / heal / in_force against a recording API -------------------------------------------

class FakeAPI:
    def __init__(self) -> None:
        self.toxics_of: dict[str, list[Toxic]] = {"redis-1": [], "redis-2": []}

    def add_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        self.toxics_of[proxy].append(toxic)
        return toxic

    def toxics(self, proxy: str) -> list[Toxic]:
        return list(self.toxics_of[proxy])

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.toxics_of[proxy] = [t for t in self.toxics_of[proxy] if t.name != name]


class FakeTopology:
    def __init__(self, path: Any) -> None:
        self.client_path = path
        self.nodes = {n: Node(NodeSpec(n, (), Path("/tmp"), 6379), "10.0.0.1") for n in ("redis-1", "redis-2")}
        self.primary = "redis-1"

    def resolve(self, role: str, exclude: set[str] | None = None) -> list[Node]:
        return [self.nodes[self.primary if role == "primary" else role]]


def test_apply_adds_one_toxic_on_the_target_resolved_now_and_heal_removes_it() -> None:
    api = FakeAPI()
    path = ClientPath(api, "10.0.0.2")  # type: ignore[arg-type]
    topo = FakeTopology(path)
    fault = Latency(latency_ms=300)
    topo.primary = "redis-2"  # "primary" means whoever is primary when the fault is applied
    applied = fault.apply(topo, None)  # type: ignore[arg-type]
    assert applied.node_names == ["redis-2"] and api.toxics_of["redis-2"] == [fault.toxic()]
    assert fault.in_force(topo, None, applied.nodes)  # type: ignore[arg-type]
    applied.heal()
    applied.heal()  # idempotent
    assert api.toxics_of == {"redis-1": [], "redis-2": []}
    assert not fault.in_force(topo, None, applied.nodes)  # type: ignore[arg-type]


def test_a_toxic_fault_without_the_proxy_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="needs Toxiproxy on the client path"):
        Timeout().apply(FakeTopology(None), None)  # type: ignore[arg-type]


def test_client_path_maps_announced_addresses_both_ways() -> None:
    created: list[tuple[str, str, str]] = []

    class API:
        url = "http://10.213.1.2:8474"

        def create_proxy(self, name: str, listen: str, upstream: str) -> None:
            created.append((name, listen, upstream))

    path = ClientPath(API(), "10.213.1.2")  # type: ignore[arg-type]
    a = Node(NodeSpec("redis-1", (), Path("/tmp"), 6379), "10.213.1.10")
    b = Node(NodeSpec("redis-2", (), Path("/tmp"), 6379), "10.213.1.11")
    assert path.add(a) == ("10.213.1.2", 20000) and path.add(b) == ("10.213.1.2", 20001)
    assert created[1] == ("redis-2", "10.213.1.2:20001", "10.213.1.11:6379")
    assert path.route(("10.213.1.11", 6379)) == ("10.213.1.2", 20001)
    assert path.route(("10.213.1.99", 6379)) is None
    assert path.node_at("10.213.1.2", 20000) == "redis-1" and path.node_at("10.213.1.10", 6379) is None
    again = ClientPath.restore(json.loads(json.dumps(path.state())))  # a lab's record, read by another process
    assert again.routes == path.routes and again.names == path.names and again.host == path.host
    assert again.api.url == "http://10.213.1.2:8474"


# ---- the HTTP client against a stand-in server ---------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, Any]] = []

    def _reply(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append((method, self.path, body))
        if self.path == "/version":
            self._reply(200, {"version": "git"})
        elif self.path == "/proxies/redis-1/toxics" and method == "POST":
            if body["name"] == "dup":
                self._reply(409, {"error": "toxic already exists", "status": 409})
            else:
                self._reply(200, {**body, "attributes": body["attributes"]})
        elif self.path == "/proxies/redis-1/toxics":
            self._reply(200, [{"name": "t", "type": "latency", "stream": "downstream", "toxicity": 1,
                               "attributes": {"latency": 5, "jitter": 0}}])
        elif method == "DELETE" or self.path == "/reset":
            self.send_response(204)
            self.end_headers()
        else:
            self._reply(404, {"error": "proxy not found", "status": 404})

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[ToxiproxyClient]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.calls = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield ToxiproxyClient(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()


def test_client_sends_typed_requests_and_reads_typed_replies(api: ToxiproxyClient) -> None:
    assert api.version() == "git"
    added = api.add_toxic("redis-1", Toxic("slow", "latency", "upstream", 0.25, {"latency": 100, "jitter": 0}))
    assert added == Toxic("slow", "latency", "upstream", 0.25, {"latency": 100, "jitter": 0})
    assert api.toxics("redis-1") == [Toxic("t", "latency", "downstream", 1.0, {"latency": 5, "jitter": 0})]
    api.remove_toxic("redis-1", "slow")
    api.reset()
    assert [(m, p) for m, p, _ in _Handler.calls] == [
        ("GET", "/version"), ("POST", "/proxies/redis-1/toxics"), ("GET", "/proxies/redis-1/toxics"),
        ("DELETE", "/proxies/redis-1/toxics/slow"), ("POST", "/reset")]
    assert _Handler.calls[1][2] == {"name": "slow", "type": "latency", "stream": "upstream", "toxicity": 0.25,
                                    "attributes": {"latency": 100, "jitter": 0}}


def test_api_errors_are_infrastructure_errors_with_the_servers_words(api: ToxiproxyClient) -> None:
    with pytest.raises(InfrastructureError, match="HTTP 409 toxic already exists"):
        api.add_toxic("redis-1", Toxic("dup", "latency"))
    with pytest.raises(InfrastructureError, match="HTTP 404 proxy not found"):
        api.toxics("nope")
    with pytest.raises(InfrastructureError, match="toxiproxy GET /version"):
        ToxiproxyClient("http://127.0.0.1:9", timeout=0.5).version()  # nothing listens on the discard port


# ---- the binary and the backends -----------------------------------------------------------------

def test_missing_go_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(toxiproxy.shutil, "which", lambda _name: None)
    with pytest.raises(MissingDependencyError) as info:
        toxiproxy.server_binary(lambda _msg: None)
    assert "\n" not in str(info.value) and "`go` not found" in str(info.value) and info.value.exit_code == 3


def test_a_built_binary_is_used_without_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(toxiproxy.shutil, "which", lambda _name: None)
    binary = tmp_path / f"toxiproxy-{toxiproxy.VERSION}" / toxiproxy.BINARY
    binary.parent.mkdir()
    binary.write_text("")
    assert toxiproxy.server_binary(lambda _msg: None) == binary


def test_toxic_faults_refuse_published_docker_addressing_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoskit.backends import docker

    toxiproxy.refuse("local")
    monkeypatch.setattr(docker, "addressing", lambda: "routed")
    toxiproxy.refuse("docker")
    monkeypatch.setattr(docker, "addressing", lambda: "published")
    with pytest.raises(UsageError) as info:
        toxiproxy.refuse("docker")
    assert info.value.exit_code == 2 and "\n" not in str(info.value) and "routed addressing" in str(info.value)


def test_toxic_fault_base_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        ToxicFault().attributes()


def test_a_go_too_old_for_toxiproxy_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", str(tmp_path))
    go = tmp_path / "go"
    go.write_text("#!/bin/sh\necho go1.19.8\n")
    go.chmod(0o755)
    monkeypatch.setattr(toxiproxy.shutil, "which", lambda _name: str(go))
    assert toxiproxy.go_version(str(go)) == (1, 19)
    with pytest.raises(MissingDependencyError, match=r"^go 1\.19 is too old: Toxiproxy 2\.12\.0 needs Go 1\.23"):
        toxiproxy.server_binary(lambda _msg: None)


def test_only_experiments_with_a_toxic_fault_put_the_proxy_on_the_path() -> None:
    from chaoskit.catalog import list_experiments

    toxic = sorted(e.name for e in list_experiments(user=False) if uses_toxics(list(e.faults)))
    assert toxic == ["mongo-slow-primary", "mongo-slow-primary-no-timeout", "postgres-connection-reset",
                     "postgres-connection-reset-no-key", "postgres-slow-primary",
                     "postgres-slow-primary-no-timeout", "redis-blackhole-primary", "redis-primary-latency",
                     "redis-retry-storm", "redis-retry-storm-backoff"]

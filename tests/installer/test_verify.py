"""The runner's end-to-end test (row 88, `Runner.verify`) against local stand-ins of the
platform's hosts.

The API host is a real devpi-server started with the product's flags; the dashboard behaves like
oauth2-proxy with --skip-provider-button; Keycloak's discovery names the issuer. Only name
resolution and routing differ from a real cluster (HTTPS_PROXY and a resolver override).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fakes.devpi_server import DevpiServer, running_copy
from fakes.hosts import Behaviour, Hosts, dashboard_stand_in, discovery_stand_in, platform_hosts
from fakes.http import free_port
from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import CheckDone, Event, LogLine, PhaseFinished
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context
from thinkube_devpi.installer.runner import Runner

ISSUER = "https://auth.example.com/realms/thinkube"
DASHBOARD, API, AUTH = "devpi.example.com", "devpi-api.example.com", "auth.example.com"


@pytest.fixture(scope="module")
def restricted_devpi(
    tmp_path_factory: pytest.TempPathFactory, devpi_template: DevpiServer
) -> Iterator[DevpiServer]:
    """devpi-server as the product runs it: only root may create users and indexes."""
    flags = ("--restrict-modify", "root")
    yield from running_copy(tmp_path_factory, devpi_template, "devpi-e2e", flags)


@dataclass
class Platform:
    hosts: Hosts
    behaviour: Behaviour
    devpi: DevpiServer
    ctx: Context
    fake: FakeKubeAPI

    def run(self) -> tuple[bool, list[Event]]:
        events: list[Event] = []
        ok = Runner(self.ctx, emit=events.append).verify()
        return ok, events


@pytest.fixture
def platform(
    fake_kube: FakeKubeAPI,
    kubeconfig: Path,
    tmp_path: Path,
    restricted_devpi: DevpiServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Platform]:
    behaviour = Behaviour(issuer=ISSUER)
    dashboard = dashboard_stand_in(behaviour)
    discovery = discovery_stand_in(ISSUER)
    routes = {
        DASHBOARD: dashboard.server_address[1],
        API: restricted_devpi.port,
        AUTH: discovery.server_address[1],
    }
    with platform_hosts(routes) as hosts:
        hosts.servers += [dashboard, discovery]
        monkeypatch.setenv("HTTPS_PROXY", hosts.proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "devpi"}})
        fake_kube.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "devpi-root", "namespace": "devpi"},
                "data": {
                    "password": base64.b64encode(restricted_devpi.root_password.encode()).decode()
                },
            }
        )
        settings = Settings(domain="example.com", ca_file=hosts.ca_file).validate()
        kube = Kube.connect(kubeconfig, cache_dir=tmp_path / "cache")
        ctx = Context(settings, kube, resolve=hosts.resolve)
        yield Platform(hosts, behaviour, restricted_devpi, ctx, fake_kube)


def _lines(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, LogLine)]


def _e2e_indexes(devpi: DevpiServer) -> list[str]:
    listing = httpx.get(f"{devpi.url}root", headers={"Accept": "application/json"}).json()[
        "result"
    ]["indexes"]
    return [name for name in listing if name.startswith("e2e-")]


def test_everything_right_passes_and_leaves_no_scratch_index(platform: Platform) -> None:
    from leakcheck import find, process_argv

    with process_argv() as argv:
        ok, events = platform.run()
    lines = _lines(events)
    assert ok, "\n".join(lines)
    assert any(
        line.startswith("ok   dashboard without a session goes to Keycloak sign-in: expected 302")
        for line in lines
    )
    assert any(
        "pip installs it back from that index alone" in line and line.startswith("ok")
        for line in lines
    )
    assert any(
        "tk-devpi whoami reaches the API host" in line and line.startswith("ok") for line in lines
    )
    assert _e2e_indexes(platform.devpi) == []
    # root's login is made with the Secret's password and kept nowhere on this machine
    from thinkube_devpi.shell import session as sessions

    assert not sessions.sessions_path().exists()
    # root's password (read from its Secret) reaches no process's argv and no line shown
    assert find(platform.devpi.root_password, "\n".join(argv)) == []
    assert find(platform.devpi.root_password, "\n".join(lines)) == []


def test_row_88_shows_the_last_result_and_apply_phase_88_checks_again(platform: Platform) -> None:
    from thinkube_devpi.installer.events import PhaseSkipped

    runner = Runner(platform.ctx)
    ((row, before),) = runner.status(["88"])
    assert row.label == "88 test" and before.state.value == "unknown"
    assert "tk-devpi install test" in before.reason
    ok, first = platform.run()
    assert ok
    count = sum(isinstance(e, CheckDone) for e in first)
    ((_, after),) = runner.status(["test"])
    assert (after.state.value, after.reason) == ("healthy", f"all {count} checks passed")
    # `install apply --phase 88` is the same test: it runs again, never "already healthy"
    events: list[Event] = []
    assert Runner(platform.ctx, emit=events.append).apply(["88"])
    assert not any(isinstance(e, PhaseSkipped) for e in events)
    assert sum(isinstance(e, CheckDone) for e in events) == count
    # a failing run takes the healthy state back
    platform.behaviour.root_status = 200
    assert not platform.run()[0]
    assert runner.status(["88"])[0][1].state.value == "unknown"


@pytest.mark.parametrize(
    "breakage,failed_check",
    [
        ("dashboard 200", "dashboard without a session goes to Keycloak sign-in"),
        ("dashboard 403", "dashboard without a session goes to Keycloak sign-in"),
        ("oauth2/auth 200", "/oauth2/auth without a cookie is refused"),
        ("issuer mismatch", "OIDC discovery names the configured issuer"),
        ("api down", "API host answers /+api without sign-in"),
        ("api does not resolve", "devpi-api.example.com resolves"),
        ("upload refused", "a probe package uploads to a scratch index"),
    ],
)
def test_each_fault_fails_naming_the_check(
    platform: Platform, breakage: str, failed_check: str
) -> None:
    if breakage == "dashboard 200":
        platform.behaviour.root_status = 200
    elif breakage == "dashboard 403":
        platform.behaviour.root_status = 403
    elif breakage == "oauth2/auth 200":
        platform.behaviour.auth_status = 200
    elif breakage == "issuer mismatch":
        platform.ctx.settings.keycloak_realm = "other"
        platform.behaviour.issuer = platform.ctx.settings.issuer
    elif breakage == "api down":
        platform.hosts.fronts[API].backend_port = free_port()
    elif breakage == "api does not resolve":
        platform.hosts.unroute(API)
    elif breakage == "upload refused":
        # the route's body limit refuses every upload: a front that answers 413 to POSTs
        platform.hosts.fronts[API].backend_port = _refusing_uploads(platform)
    ok, events = platform.run()
    assert not ok
    finished = next(e for e in events if isinstance(e, PhaseFinished))
    assert failed_check in finished.message, finished.message
    assert any(line.startswith(f"FAIL {failed_check}") for line in _lines(events))
    assert _e2e_indexes(platform.devpi) == []


def test_anonymous_user_creation_allowed_fails(
    platform: Platform, fresh_devpi_server: DevpiServer
) -> None:
    # a server started without --restrict-modify root lets anyone register
    platform.hosts.fronts[API].backend_port = fresh_devpi_server.port
    ok, events = platform.run()
    assert not ok
    line = next(line for line in _lines(events) if "anonymous user creation is refused" in line)
    assert line.startswith("FAIL") and "was created (and removed)" in line
    listing = httpx.get(fresh_devpi_server.url, headers={"Accept": "application/json"}).json()[
        "result"
    ]
    assert not [u for u in listing if u.startswith("e2e-anon-")]


def test_the_cli_shows_each_check_as_a_preflight_row_and_json_carries_it(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    from thinkube_devpi.cli.install import EventPrinter, check_markup
    from thinkube_devpi.installer.preflight import Check

    platform.behaviour.root_status = 200  # the dashboard open without sign-in
    _, events = platform.run()
    capsys.readouterr()
    text = EventPrinter("text")
    text.console.width = 400
    for event in events:
        text(event)
    shown = capsys.readouterr().out.splitlines()
    gate = "dashboard without a session goes to Keycloak sign-in"
    row = next(i for i, line in enumerate(shown) if gate in line)
    assert shown[row].startswith(f"   FAIL {gate}: expected 302 to {ISSUER}")
    assert shown[row].endswith("got 200: the dashboard is open without sign-in")
    assert "oauth2-proxy Service" in shown[row + 1]  # its hint on the next line
    assert any(line.startswith("   ok   API host answers /+api without sign-in") for line in shown)
    # a preflight row is drawn by the same renderer, mark first
    text.console.print(check_markup(Check("cluster reachable", True, "https://127.0.0.1")))
    assert capsys.readouterr().out == "ok   cluster reachable: https://127.0.0.1\n"

    as_json = EventPrinter("json")
    for event in events:
        as_json(event)
    checks = [
        json.loads(line)["check"]
        for line in capsys.readouterr().out.splitlines()
        if json.loads(line)["event"] == "CheckDone"
    ]
    gate_check = next(c for c in checks if c["name"] == gate)
    assert gate_check["ok"] is False and gate_check["expected"].startswith("302 to ")
    assert gate_check["detail"] == "200: the dashboard is open without sign-in"
    assert "oauth2-proxy Service" in gate_check["hint"]
    assert sum(c["ok"] is True for c in checks) >= 5


def _refusing_uploads(platform: Platform) -> int:
    """A plain HTTP relay to devpi that answers 413 to uploads, as a body-size limit would."""
    from http.server import BaseHTTPRequestHandler

    from fakes.hosts import _http_server

    target = platform.devpi.url.rstrip("/")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if self.command == "POST" and "multipart" in (self.headers.get("Content-Type") or ""):
                self.send_response(413)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            }
            resp = httpx.request(self.command, target + self.path, content=body, headers=headers)
            self.send_response(resp.status_code)
            for k, v in resp.headers.items():
                if k.lower() not in (
                    "content-length",
                    "transfer-encoding",
                    "content-encoding",
                    "connection",
                ):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(resp.content)))
            self.end_headers()
            self.wfile.write(resp.content)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _relay

    server = _http_server(Handler)
    platform.hosts.servers.append(server)
    return int(server.server_address[1])


def test_the_fish_check_names_a_missing_tk_devpi_and_passes_once_it_is_on_path(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, tk_devpi_on_path: Path
) -> None:
    """A developer's fish functions call `tk-devpi`; where fish cannot find it (the toolkit not
    installed, or installed outside fish's PATH) the check says so and what to do."""
    import shutil

    from thinkube_devpi.fish import generator

    generator.install(generator.default_fish_dir())
    fish = shutil.which("fish")
    assert fish, "fish is installed by scripts/test.sh"
    with_tk = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{Path(fish).parent}{os.pathsep}/bin")
    assert shutil.which("tk-devpi") is None
    _, events = platform.run()
    row = next(line for line in _lines(events) if "devpi-whoami (fish) works" in line)
    assert row.startswith("FAIL devpi-whoami (fish) works: expected exit 0, got exit 127")
    assert "tk-devpi" in row  # fish's own words: Unknown command: tk-devpi
    fish_check = next(
        e.check for e in events if isinstance(e, CheckDone) and "(fish)" in e.check.name
    )
    assert "scripts/install.sh" in fish_check.hint

    monkeypatch.setenv("PATH", with_tk)
    ok, events = platform.run()
    assert ok, "\n".join(_lines(events))
    assert any(line.startswith("ok   devpi-whoami (fish) works") for line in _lines(events))

"""devpi initialisation against a real devpi-server started by the product's entrypoint.

One server for the module: the entrypoint (rendered into the deployment repository) initialises
the server directory with root's password from DEVPISERVER_ROOT_PASSWD and starts devpi-server with
its fixed flags. The server secret is laid out as a Secret volume lays it out (a 0644 file in a
read-only folder). Shims in front of devpi-init and devpi-server record their argv.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fakes.http import free_port
from leakcheck import find, process_argv
from thinkube_devpi.config import Settings
from thinkube_devpi.installer import devpi_init
from thinkube_devpi.installer.deployrepo import render_files

OUTSIDE = "https://devpi-api.example.com"
API_HOST, DASHBOARD_HOST = "devpi-api.example.com", "devpi.example.com"


def _rendered_outside_hosts() -> str:
    """DEVPI_OUTSIDE_HOSTS exactly as the rendered Deployment sets it."""
    import yaml

    dep = yaml.safe_load(render_files(Settings(domain="example.com").validate())["k8s/deployment.yaml"])
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return next(e["value"] for e in c["env"] if e["name"] == "DEVPI_OUTSIDE_HOSTS")
FAST = ["--argon2-memory-cost", "8", "--argon2-time-cost", "1", "--argon2-parallelism", "1"]


@dataclass
class Server:
    url: str
    root_password: str
    base: Path
    argv_log: Path
    process: subprocess.Popen[bytes]


def _shims(base: Path) -> tuple[Path, Path]:
    shims = base / "bin"
    shims.mkdir()
    log = base / "argv.log"
    real = Path(sys.executable).parent
    for name in ("devpi-init", "devpi-server", "python3"):
        target = Path(sys.executable) if name == "python3" else real / name
        if not target.exists():
            target = Path(shutil.which(name) or name)
        shim = shims / name
        shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> "{log}"\nexec "{target}" "$@"\n')
        shim.chmod(0o755)
    return shims, log


def entrypoint_env(base: Path, port: int, root_password: str, shims: Path) -> dict[str, str]:
    source = base / "secret-volume"
    source.mkdir(exist_ok=True)
    secret_file = source / "secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(48))
        secret_file.chmod(0o644)  # a Secret volume's default mode
        source.chmod(0o555)  # and a read-only folder
    return {
        "PATH": f"{shims}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(base / "home"),
        "DEVPI_DATA": str(base / "data"),
        "DEVPI_SECRET_SOURCE": str(secret_file),
        "DEVPI_SECRET_DIR": str(base / "tmp" / "devpi-secret"),
        "DEVPI_HOST": "127.0.0.1",
        "DEVPI_PORT": str(port),
        "DEVPI_OUTSIDE_HOSTS": _rendered_outside_hosts(),
        "DEVPISERVER_ROOT_PASSWD": root_password,
        "DEVPI_LAUNCHER": str(base / "devpi_server_launch.py"),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("devpi-product")
    (base / "data").mkdir()
    (base / "tmp").mkdir()
    files = render_files(Settings(domain="example.com").validate())
    entry = base / "entrypoint.sh"
    entry.write_text(files["entrypoint.sh"])
    (base / "devpi_server_launch.py").write_text(files["devpi_server_launch.py"])
    shims, log = _shims(base)
    port = free_port()
    root_password = secrets.token_urlsafe(24)
    env = entrypoint_env(base, port, root_password, shims)
    out = (base / "server.log").open("wb")
    # --offline-mode: the PyPI mirror's pages never wait for pypi.org (no network in tests)
    proc = subprocess.Popen(["sh", str(entry), *FAST, "--offline-mode"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError((base / "server.log").read_text()[-3000:])
        try:
            if httpx.get(url + "+api", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("devpi-server did not start: " + (base / "server.log").read_text()[-3000:])
        time.sleep(0.05)
    yield Server(url, root_password, base, log, proc)
    os.killpg(proc.pid, 15)
    proc.wait(10)
    (base / "secret-volume").chmod(0o755)


def login(url: str, user: str, password: str) -> dict[str, str]:
    r = httpx.post(url + "+login", json={"user": user, "password": password}, headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    token = r.json()["result"]["password"]
    return {"X-Devpi-Auth": base64.b64encode(f"{user}:{token}".encode()).decode(), "Accept": "application/json"}


def init(server: Server, user: str, password: str) -> list[str]:
    return devpi_init.initialise(server.url, root_password=server.root_password, user=user, user_password=password, index="prod")


def test_creates_user_and_index_then_changes_nothing(server: Server) -> None:
    pw = secrets.token_urlsafe(16)
    assert init(server, "admin", pw) == ["created user admin", "created index admin/prod"]
    ix = httpx.get(server.url + "admin/prod", headers={"Accept": "application/json"}).json()["result"]
    assert ix["bases"] == ["root/pypi"] and ix["volatile"] is False and "admin" in ix["acl_upload"]
    login(server.url, "admin", pw)
    assert init(server, "admin", pw) == []


def test_an_uploaded_package_survives_a_second_run(server: Server) -> None:
    pw = secrets.token_urlsafe(16)
    init(server, "keeper", pw)
    auth = login(server.url, "keeper", pw)
    r = httpx.post(server.url + "keeper/prod/", headers=auth,
                   data={":action": "file_upload", "name": "probe-pkg", "version": "1.0", "metadata_version": "2.1"},
                   files={"content": ("probe_pkg-1.0.tar.gz", b"not really a tarball", "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert init(server, "keeper", pw) == []
    simple = httpx.get(server.url + "keeper/prod/+simple/probe-pkg/")
    assert "probe_pkg-1.0.tar.gz" in simple.text


def test_converges_a_changed_setting_and_password(server: Server) -> None:
    pw = secrets.token_urlsafe(16)
    init(server, "drift", pw)
    root = login(server.url, "root", server.root_password)
    assert httpx.patch(server.url + "drift/prod", headers=root, json=["volatile=True", "acl_upload-=drift"]).status_code == 200
    new_pw = secrets.token_urlsafe(16)
    changes = init(server, "drift", new_pw)
    assert changes == ["set drift's password", "updated index drift/prod: volatile=False; acl_upload+=drift"]
    login(server.url, "drift", new_pw)
    assert init(server, "drift", new_pw) == []


def test_anonymous_user_creation_is_refused(server: Server) -> None:
    r = httpx.put(server.url + "intruder", json={"password": "x" * 12}, headers={"Accept": "application/json"})
    assert r.status_code in (401, 403), r.text
    assert httpx.get(server.url + "intruder", headers={"Accept": "application/json"}).status_code == 404


def test_admin_cannot_create_its_own_index(server: Server) -> None:
    pw = secrets.token_urlsafe(16)
    init(server, "limited", pw)
    r = httpx.put(server.url + "limited/other", headers=login(server.url, "limited", pw), json={"type": "stage"})
    assert r.status_code == 403


def _links(html: str, base: str) -> set[str]:
    import re
    from urllib.parse import urljoin

    found = re.findall(r"""(?:href|src|action)=["']([^"'#]+)""", html)
    return {urljoin(base, x) for x in found if not x.startswith(("javascript:", "mailto:", "data:"))}


def _crawl(server: Server, host: str, extra: dict[str, str] | None = None) -> dict[str, set[str]]:
    """devpi-web's pages reached through ``host`` (as the gateway passes it on), following the
    links devpi puts on them; returns each page's links as absolute URLs."""
    from urllib.parse import urlsplit

    start = f"https://{host}/"
    todo, seen, out = [start], set(), {}
    with httpx.Client(timeout=20) as client:
        while todo and len(seen) < 25:
            url = todo.pop(0)
            if url in seen:
                continue
            seen.add(url)
            parts = urlsplit(url)
            resp = client.get(
                server.url.rstrip("/") + (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                headers={"Host": host, "Accept": "text/html", **(extra or {})},
            )
            if "html" not in resp.headers.get("content-type", ""):
                continue
            links = _links(resp.text, url)
            out[url] = links
            # not into files, nor into the PyPI mirror's pages (they would ask pypi.org)
            todo += [
                x
                for x in links
                if urlsplit(x).hostname == host
                and "/+f/" not in x
                and not urlsplit(x).path.startswith("/root/pypi/")
            ]
    return out


@pytest.mark.parametrize("host", [DASHBOARD_HOST, API_HOST])
def test_every_link_stays_on_the_host_the_page_came_in_on(server: Server, host: str) -> None:
    from urllib.parse import urlsplit

    pages = _crawl(server, host)
    assert len(pages) >= 3, pages.keys()  # the root, an index, its packages ...: devpi-web answers
    ours = {API_HOST, DASHBOARD_HOST}
    for page, links in pages.items():
        for link in links:
            target = urlsplit(link).hostname
            assert target not in ours - {host}, f"{page} links to {link}"
    # devpi's own absolute links (its API, the login) name the host too
    api = httpx.get(server.url + "+api", headers={"Host": host, "Accept": "application/json"}).json()
    assert api["result"]["login"] == f"https://{host}/+login"


def test_a_client_cannot_choose_the_host_links_point_to(server: Server) -> None:
    evil = {"X-Outside-Url": "https://evil.example.net", "Accept": "application/json"}
    api = httpx.get(server.url + "+api", headers={**evil, "Host": DASHBOARD_HOST}).json()["result"]
    assert api["login"] == f"https://{DASHBOARD_HOST}/+login" and "evil" not in str(api)
    # a host that is not ours gets the API host's links, never its own
    page = httpx.get(server.url + "+api", headers={"X-Outside-Url": "https://evil.example.net", "Host": "evil.example.net",
                                                   "X-Forwarded-Host": "evil.example.net", "Accept": "application/json"})
    assert "evil" not in page.text and page.json()["result"]["login"].startswith(OUTSIDE + "/")
    pages = _crawl(server, "evil.example.net", {"X-Outside-Url": "https://evil.example.net"})
    assert not any("evil" in link for links in pages.values() for link in links)


def test_secret_volume_layout_is_copied_private(server: Server) -> None:
    source = server.base / "secret-volume" / "secret"
    assert stat.S_IMODE(source.stat().st_mode) == 0o644
    copy = server.base / "tmp" / "devpi-secret" / "secret"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    assert copy.read_text() == source.read_text()


def test_root_password_in_no_argv(server: Server) -> None:
    argv = server.argv_log.read_text()
    assert "devpi-init --serverdir" in argv and "devpi_server_launch.py" in argv and "--restrict-modify root" in argv
    assert "--outside-url" not in argv  # a fixed outside URL would send every link to one host
    assert not find(server.root_password, argv)
    assert "passwd" not in argv.lower()
    cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
    assert not find(server.root_password, cmdline)


def test_main_reads_env_and_prints_no_secret(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    pw = secrets.token_urlsafe(16)
    env = {"DEVPI_URL": server.url, "DEVPI_ROOT_PASSWORD": server.root_password, "DEVPI_USER": "fromenv",
           "DEVPI_USER_PASSWORD": pw, "DEVPI_INDEX": "prod"}
    assert devpi_init.main(env) == 0
    assert devpi_init.main({**env, "DEVPI_ROOT_PASSWORD": "wrong-password"}) == 1
    out = capsys.readouterr()
    assert "created index fromenv/prod" in out.out and "root could not log in" in out.err
    for s in (pw, server.root_password, "wrong-password"):
        assert not find(s, out.out + out.err)


def test_entrypoint_refuses_a_foreign_server_directory(tmp_path: Path) -> None:
    entry = tmp_path / "entrypoint.sh"
    entry.write_text(render_files(Settings(domain="example.com").validate())["entrypoint.sh"])
    (tmp_path / "data" / "server").mkdir(parents=True)
    (tmp_path / "data" / "server" / ".serverversion").write_text("4\n")
    shims, log = _shims(tmp_path)
    env = entrypoint_env(tmp_path, free_port(), "pw-" + secrets.token_hex(8), shims)
    with process_argv():
        r = subprocess.run(["sh", str(entry)], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "not created by thinkube-devpi" in r.stderr
    assert not log.exists()  # neither devpi-init nor devpi-server ran
    assert (tmp_path / "data" / "server" / ".serverversion").read_text() == "4\n"


def test_entrypoint_refuses_an_empty_root_password(tmp_path: Path) -> None:
    entry = tmp_path / "entrypoint.sh"
    entry.write_text(render_files(Settings(domain="example.com").validate())["entrypoint.sh"])
    (tmp_path / "data").mkdir()
    shims, _ = _shims(tmp_path)
    env = entrypoint_env(tmp_path, free_port(), "", shims)
    r = subprocess.run(["sh", str(entry)], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "without a password" in r.stderr
    assert not (tmp_path / "data" / "server").exists()
    (tmp_path / "secret-volume").chmod(0o755)

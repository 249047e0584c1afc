"""A real devpi-server on 127.0.0.1 for tests.

`devpi_server` starts one server for the whole session (about two seconds); tests create their own
users and indexes on it with `devpi_server.new_user()`, so they never see each other's state.
`fresh_devpi_server` starts one just for a test that restarts or resets it.

The root password reaches devpi-init through DEVPISERVER_ROOT_PASSWD, not argv. The secret file sits
in a 0700 folder as a 0600 file, as devpi-server demands. The hidden argon2 flags make user password
hashing cheap, which is what makes start-up and logins fast.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from fakes.http import free_port

__all__ = ["DevpiServer", "DevpiUser", "devpi_server", "devpi_template", "fresh_devpi_server"]

_counter = itertools.count(1)


def _bin(name: str) -> str:
    # The real console script next to this interpreter, not a pyenv shim (which costs 0.2 s).
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: pip install devpi-server")
    return found


@dataclass
class DevpiUser:
    """A user with one index of its own on the test server."""

    name: str
    password: str
    index: str  # "user/name"
    url: str  # root URL with a trailing slash

    @property
    def index_url(self) -> str:
        return f"{self.url}{self.index}"

    @property
    def simple_url(self) -> str:
        return f"{self.url}{self.index}/+simple/"


@dataclass
class DevpiServer:
    base: Path
    port: int = field(default_factory=free_port)
    root_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def serverdir(self) -> Path:
        return self.base / "server"

    @property
    def secretfile(self) -> Path:
        return self.base / "secret" / "secretfile"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def init(self, template: Path | None = None) -> None:
        """devpi-init a server dir (about 2.5 s: root's password is hashed at full argon2 cost),
        or copy an initialised `template` dir made by another DevpiServer."""
        self.base.mkdir(parents=True, exist_ok=True)
        if template is not None:
            shutil.copytree(template / "server", self.serverdir)
            self.secretfile.parent.mkdir(mode=0o700)
            shutil.copy2(template / "secret" / "secretfile", self.secretfile)
            return
        env = dict(os.environ, DEVPISERVER_ROOT_PASSWD=self.root_password)
        subprocess.run(
            [_bin("devpi-init"), "--serverdir", str(self.serverdir), "--no-root-pypi"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.secretfile.parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.secretfile.parent, 0o700)
        subprocess.run(
            [_bin("devpi-gen-secret"), "--secretfile", str(self.secretfile)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self, *, secretfile: bool = True, extra_args: tuple[str, ...] = ()) -> None:
        """Start devpi-server and wait until /+api answers. Without a secret file every restart
        voids all logins."""
        argv = [
            _bin("devpi-server"),
            "--serverdir", str(self.serverdir),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--argon2-memory-cost", "8",
            "--argon2-time-cost", "1",
            "--argon2-parallelism", "1",
        ]  # fmt: skip
        if secretfile:
            argv += ["--secretfile", str(self.secretfile)]
        argv += extra_args
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"devpi-server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "+api", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("devpi-server did not answer within 30 s")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def restart(self, *, secretfile: bool = True) -> None:
        self.stop()
        self.start(secretfile=secretfile)

    def new_user(
        self, prefix: str = "dev", *, volatile: bool = False, bases: str = ""
    ) -> DevpiUser:
        """Create a user with a password and an index `<user>/prod` of its own."""
        name = f"{prefix}{next(_counter)}x{secrets.token_hex(2)}"
        password = "pw-" + secrets.token_urlsafe(12)
        with httpx.Client(base_url=self.url, timeout=10) as http:
            r = http.put(f"/{name}", json={"password": password, "email": f"{name}@example.test"})
            r.raise_for_status()
            r = http.post("/+login", json={"user": name, "password": password})
            r.raise_for_status()
            token = r.json()["result"]["password"]
            import base64

            auth = base64.b64encode(f"{name}:{token}".encode()).decode()
            r = http.put(
                f"/{name}/prod",
                json={"type": "stage", "bases": bases, "volatile": volatile},
                headers={"X-Devpi-Auth": auth, "Accept": "application/json"},
            )
            r.raise_for_status()
        return DevpiUser(name=name, password=password, index=f"{name}/prod", url=self.url)


def running_copy(
    tmp_path_factory: pytest.TempPathFactory,
    template: DevpiServer,
    name: str,
    extra_args: tuple[str, ...] = (),
) -> Iterator[DevpiServer]:
    """A devpi-server on a copy of the initialised template, stopped when the generator closes."""
    server = DevpiServer(tmp_path_factory.mktemp(name), root_password=template.root_password)
    server.init(template.base)
    server.start(extra_args=extra_args)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def devpi_template(tmp_path_factory: pytest.TempPathFactory) -> DevpiServer:
    """An initialised, never started server dir that fresh servers copy."""
    template = DevpiServer(tmp_path_factory.mktemp("devpi-template"))
    template.init()
    return template


@pytest.fixture(scope="session")
def devpi_server(
    tmp_path_factory: pytest.TempPathFactory, devpi_template: DevpiServer
) -> Iterator[DevpiServer]:
    """One real devpi-server for the session; make users with `devpi_server.new_user()`."""
    yield from running_copy(tmp_path_factory, devpi_template, "devpi")


@pytest.fixture
def fresh_devpi_server(
    tmp_path_factory: pytest.TempPathFactory, devpi_template: DevpiServer
) -> Iterator[DevpiServer]:
    """A devpi-server of the test's own, for tests that restart or reset it."""
    yield from running_copy(tmp_path_factory, devpi_template, "devpi-fresh")

"""The fixtures every test area shares; the fakes themselves live in tests/fakes (``fakes.*``).

``isolated_home`` (autouse) gives each test its own HOME and XDG folders and clears every
THINKUBE_DEVPI_* variable; ``fake_kube``/``cluster`` is a fake API server shaped like a thinkube
cluster; ``settings`` are valid settings for example.com; ``tk`` runs `tk-devpi` in-process;
``free_port`` is a port nothing listens on; ``tk_devpi_on_path`` puts this checkout's `tk-devpi`
on PATH for child processes (fish, the end-to-end checks).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fakes.auth_cluster import auth_env  # noqa: F401
from fakes.controllers import Controllers
from fakes.devpi_server import *  # noqa: F403
from fakes.gitremote import remote  # noqa: F401
from fakes.http import free_port as _free_port
from fakes.keycloak import fake_keycloak  # noqa: F401
from fakes.keyring_env import *  # noqa: F403
from fakes.kube_api import FakeKubeAPI
from fakes.platform import world  # noqa: F401
from fakes.s3 import bucket, s3_server  # noqa: F401
from thinkube_devpi.config import Settings

SRC = Path(__file__).resolve().parents[1] / "src"
Run = Callable[..., Result]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the real control plane if this pytest run started it (tests/real_cluster); in the
    controller process only, after every pytest-xdist worker is done with it."""
    if hasattr(session.config, "workerinput"):
        return
    from real_cluster.harness import down_if_started_by_pytest

    down_if_started_by_pytest()


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own HOME and XDG dirs: nothing touches the real user's files."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_DATA_HOME", ".local/share"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    for var in list(os.environ):
        if var.startswith("THINKUBE_DEVPI_") or var in (
            "KUBECONFIG",
            "DEVPI_USER",
            "DEVPI_INDEX",
            "DEVPI_ADMIN_PASSWORD",
            "KEYCLOAK_ADMIN_PASSWORD",
        ):
            monkeypatch.delenv(var, raising=False)
    # retries keep their count and their Retry-After handling, without seconds of backoff
    monkeypatch.setenv("THINKUBE_DEVPI_RETRY_BACKOFF", "0.01")
    return home


@pytest.fixture
def fake_kube() -> Iterator[FakeKubeAPI]:
    """A fake kube-apiserver on 127.0.0.1 set up like a thinkube cluster: the Argo, ArgoCD and
    Gateway API CRDs, and the namespaces Argo Workflows and ArgoCD run in."""
    with FakeKubeAPI() as fake:
        for ns in ("argo", "argocd"):
            fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        fake.clear_log()
        yield fake


@pytest.fixture
def cluster(fake_kube: FakeKubeAPI) -> FakeKubeAPI:
    """The thinkube-shaped fake cluster, by the name the stories use."""
    return fake_kube


@pytest.fixture
def kubeconfig(fake_kube: FakeKubeAPI, tmp_path: Path) -> Path:
    return fake_kube.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def controllers(fake_kube: FakeKubeAPI) -> Iterator[Controllers]:
    with Controllers(fake_kube) as c:
        yield c


@pytest.fixture
def settings() -> Settings:
    return Settings(domain="example.com").validate()


@pytest.fixture
def free_port() -> int:
    return _free_port()


@pytest.fixture
def tk(helpers_home: Path) -> Run:
    """Run `tk-devpi ARGS...` in-process; `input=` feeds stdin. Fails loudly on crashes."""
    from thinkube_devpi.cli import main

    def run(*args: str, input: str | None = None, ok: bool | None = None) -> Result:
        result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
        if ok is True:
            assert result.exit_code == 0, result.output
        if ok is False:
            assert result.exit_code != 0, result.output
        return result

    return run


@pytest.fixture
def tk_devpi_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `tk-devpi` on PATH that runs this checkout's source (the installed one may be another)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "tk-devpi"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH={SRC} exec {sys.executable} -m thinkube_devpi.cli "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return script

"""Backup tests: a real devpi-server filled like a team's index, and an S3 server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes.devpi_server import DevpiServer
from fakes.s3 import S3Server
from shell.dists import make_sdist, make_wheel
from thinkube_devpi.installer.backup import core

JSON = {"Accept": "application/json"}


def login(url: str, user: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{url}+login", json={"user": user, "password": password}, timeout=10)
    r.raise_for_status()
    token = r.json()["result"]["password"]
    return {**JSON, "X-Devpi-Auth": base64.b64encode(f"{user}:{token}".encode()).decode()}


@dataclass
class Team:
    """Users, indexes with bases and ACLs, and packages in several versions (sdists and wheels)."""

    server: DevpiServer
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def fill_small(self, files: Path) -> Team:
        """One user, one index, one release (for tests about storage, not about devpi)."""
        url = self.url
        root = login(url, "root", self.server.root_password)
        self.passwords["alice"] = "pw-alice-" + base64.b32encode(os.urandom(10)).decode()
        httpx.put(f"{url}alice", json={"password": self.passwords["alice"]}, headers=root, timeout=10).raise_for_status()
        httpx.put(f"{url}alice/dev", json={"type": "stage", "bases": [], "acl_upload": ["root"]}, headers=root, timeout=10).raise_for_status()
        for path in (make_wheel(files, "tkfoo", "1.0"), make_sdist(files, "tkfoo", "1.0")):
            r = httpx.post(
                f"{url}alice/dev/",
                data={":action": "file_upload", "name": "tkfoo", "version": "1.0"},
                files={"content": (path.name, path.read_bytes())},
                headers=root,
                timeout=30,
            )
            assert r.status_code == 200, r.text
        return self

    def fill(self, files: Path) -> Team:
        url = self.url
        root = login(url, "root", self.server.root_password)
        for user in ("alice", "bob", "carol"):
            self.passwords[user] = f"pw-{user}-" + base64.b32encode(os.urandom(10)).decode()
            r = httpx.put(
                f"{url}{user}",
                json={"password": self.passwords[user], "email": f"{user}@example.test"},
                headers=root,
                timeout=10,
            )
            r.raise_for_status()
        indexes: dict[str, dict[str, Any]] = {
            "alice/base": {"bases": [], "acl_upload": ["alice"], "volatile": False},
            "alice/dev": {"bases": ["alice/base"], "acl_upload": ["alice", "bob"], "volatile": True},
            "bob/prod": {"bases": ["alice/dev"], "acl_upload": ["bob"], "volatile": False},
            "carol/empty": {"bases": ["bob/prod"], "acl_upload": [":ANONYMOUS:"]},
        }
        for name, conf in indexes.items():
            r = httpx.put(f"{url}{name}", json={"type": "stage", **conf}, headers=root, timeout=10)
            r.raise_for_status()
        uploads = [
            ("alice", "alice/base", "tkfoo", "1.0"),
            ("alice", "alice/base", "tkfoo", "1.1"),
            ("bob", "alice/dev", "tkfoo", "2.0"),
            ("alice", "alice/dev", "tkbar", "0.1"),
            ("bob", "bob/prod", "tkbar", "0.2"),
        ]
        for user, index, name, version in uploads:
            auth = login(url, user, self.passwords[user])
            for path in (make_wheel(files, name, version), make_sdist(files, name, version)):
                r = httpx.post(
                    f"{url}{index}/",
                    data={":action": "file_upload", "name": name, "version": version},
                    files={"content": (path.name, path.read_bytes())},
                    headers=auth,
                    timeout=30,
                )
                assert r.status_code == 200, r.text
        return self

    def snapshot(self) -> dict[str, Any]:
        """What a user sees: users, each index's config, every release file and its sha256."""
        users = httpx.get(self.url, headers=JSON, timeout=10).json()["result"]
        out: dict[str, Any] = {"users": sorted(users), "indexes": {}, "files": {}}
        for user, info in sorted(users.items()):
            for name, conf in sorted((info.get("indexes") or {}).items()):
                ix = f"{user}/{name}"
                conf = {k: v for k, v in conf.items() if k != "projects"}
                out["indexes"][ix] = conf
                simple = httpx.get(f"{self.url}{ix}/+simple/", timeout=10).text
                for project in re.findall(r'href="([^"]+)/?"', simple):
                    project = project.rstrip("/").rsplit("/", 1)[-1]
                    page = httpx.get(f"{self.url}{ix}/+simple/{project}/", timeout=10).text
                    for href in re.findall(r'href="([^"]+)"', page):
                        link, _, frag = href.partition("#")
                        data = httpx.get(httpx.URL(f"{self.url}{ix}/+simple/{project}/").join(link), timeout=10)
                        data.raise_for_status()
                        name = link.rsplit("/", 1)[-1]
                        out["files"][f"{ix}/{name}"] = hashlib.sha256(data.content).hexdigest()
                        assert frag == f"sha256={out['files'][f'{ix}/{name}']}", href
        return out


def pip_install(index_url: str, target: Path, *requirements: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir",
         "--disable-pip-version-check", "--only-binary", ":all:", "--index-url", index_url,
         "--target", str(target), *requirements],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def s3_target(s3_server: S3Server, bucket: str) -> core.S3Target:
    cfg = core.S3Config(endpoint=s3_server.endpoint, bucket=bucket, prefix=s3_server.prefix)
    return core.S3Target(cfg, core.Credentials(s3_server.access_key, s3_server.secret_key))


@pytest.fixture
def team(fresh_devpi_server: DevpiServer, tmp_path: Path) -> Team:
    files = tmp_path / "dists"
    files.mkdir()
    return Team(fresh_devpi_server).fill(files)


@pytest.fixture
def small_team(fresh_devpi_server: DevpiServer, tmp_path: Path) -> Team:
    files = tmp_path / "dists"
    files.mkdir()
    return Team(fresh_devpi_server).fill_small(files)

"""GitHub's REST API for the deployment repository: create it (private) and its deploy keys.

The token comes from a file and travels only in the Authorization header; no message here ever
holds it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkube_devpi._lazy import lazy_import
from thinkube_devpi.errors import Error
from thinkube_devpi.secrets import Secret, child_environ

API_VERSION = "2022-11-28"
_GITHUB_URL = re.compile(
    r"^(?:ssh://)?git@github\.com[:/](?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_import("httpx")


class GitHubError(Error):
    """A GitHub API call failed; the hint says what to do."""


def github_repo(url: str) -> tuple[str, str] | None:
    """``(owner, name)`` of a github.com SSH URL; None for any other host."""
    m = _GITHUB_URL.fullmatch(url)
    return (m.group("owner"), m.group("name")) if m else None


def public_key(private_key_file: str) -> str:
    """The OpenSSH public key of a private key file: ``<file>.pub`` or ``ssh-keygen -y``."""
    pub = Path(private_key_file + ".pub")
    if pub.is_file():
        text = pub.read_text().strip()
    else:
        proc = subprocess.run(
            ["ssh-keygen", "-y", "-P", "", "-f", private_key_file],
            env=child_environ(),
            capture_output=True,
            text=True,
            check=False,
            start_new_session=True,
        )
        if proc.returncode != 0:
            raise GitHubError(
                f"Cannot derive the public key of {private_key_file}.",
                f"Put it beside the key as {pub.name} (a key with a passphrase cannot be read).",
            )
        text = proc.stdout.strip()
    return " ".join(text.split()[:2])


@dataclass
class GitHub:
    token: Secret
    api_url: str = "https://api.github.com"
    client: httpx.Client | None = None

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        client = self.client or httpx.Client(timeout=30)
        try:
            return client.request(
                method,
                self.api_url.rstrip("/") + path,
                json=body,
                headers={
                    "Authorization": f"Bearer {self.token.reveal()}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": API_VERSION,
                },
            )
        except httpx.HTTPError as exc:
            raise GitHubError(
                f"Cannot reach the GitHub API at {self.api_url}: {type(exc).__name__}.",
                "Check the network, or set github_api_url.",
            ) from None
        finally:
            if self.client is None:
                client.close()

    def _fail(self, resp: httpx.Response, what: str) -> GitHubError:
        try:
            message = str(resp.json().get("message", ""))
        except ValueError:
            message = ""
        hint = {
            401: "The token in github_token_file was rejected: make a new one.",
            403: "The token lacks a permission: it needs Administration (read and write) on the "
            "repository, or the classic `repo` scope.",
            404: "The repository or organisation does not exist or the token cannot see it.",
            422: "GitHub refused the request as invalid.",
        }.get(resp.status_code, "")
        return GitHubError(f"{what}: HTTP {resp.status_code} ({message or 'no message'}).", hint)

    def ensure_repo(self, owner: str, name: str) -> str:
        """``exists`` or ``created`` (private)."""
        resp = self._request("GET", f"/repos/{owner}/{name}")
        if resp.status_code == 200:
            return "exists"
        if resp.status_code != 404:
            raise self._fail(resp, f"Reading repository {owner}/{name}")
        me = self._request("GET", "/user")
        if me.status_code != 200:
            raise self._fail(me, "Reading the token's user")
        login = str(me.json().get("login", ""))
        path = "/user/repos" if login.lower() == owner.lower() else f"/orgs/{owner}/repos"
        body = {
            "name": name,
            "private": True,
            "description": "DevPi deployment (managed by thinkube-devpi)",
            "auto_init": False,
        }
        resp = self._request("POST", path, body)
        if resp.status_code != 201:
            raise self._fail(resp, f"Creating private repository {owner}/{name}")
        return "created"

    def ensure_deploy_key(
        self, owner: str, name: str, title: str, key: str, *, read_only: bool
    ) -> str:
        """``present`` or ``added``; a key registered with other rights is an error."""
        page = 1
        while True:
            resp = self._request("GET", f"/repos/{owner}/{name}/keys?per_page=100&page={page}")
            if resp.status_code != 200:
                raise self._fail(resp, f"Listing deploy keys of {owner}/{name}")
            items = resp.json()
            for item in items:
                if " ".join(str(item.get("key", "")).split()[:2]) == key:
                    if bool(item.get("read_only")) != read_only:
                        raise GitHubError(
                            f"Deploy key {item.get('title')!r} of {owner}/{name} is registered "
                            f"{'read-only' if item.get('read_only') else 'read-write'}, but is "
                            f"configured as the {'read-only' if read_only else 'read-write'} key.",
                            "Delete it on GitHub (Settings, Deploy keys) and re-run.",
                        )
                    return "present"
            if len(items) < 100:
                break
            page += 1
        resp = self._request(
            "POST",
            f"/repos/{owner}/{name}/keys",
            {"title": title, "key": key, "read_only": read_only},
        )
        if resp.status_code != 201:
            raise self._fail(resp, f"Adding deploy key {title!r} to {owner}/{name}")
        return "added"

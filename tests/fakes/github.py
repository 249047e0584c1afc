"""A fake of GitHub's REST API (the few endpoints the installer uses), on 127.0.0.1.

Real paths and shapes: ``GET /user``, ``GET /repos/{owner}/{repo}``, ``POST /user/repos``,
``POST /orgs/{org}/repos``, ``GET``/``POST /repos/{owner}/{repo}/keys``. Bearer token required.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from fakes import http


class FakeGitHub:
    def __init__(self, token: str, login: str = "octo", orgs: tuple[str, ...] = ("thinkube-test",)) -> None:
        self.token = token
        self.login = login
        self.orgs = set(orgs)
        self.repos: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, str, dict[str, str]]] = []
        self._next_id = 1
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                fake.requests.append((self.command, self.path, raw, dict(self.headers)))
                status, body = fake.handle(self.command, self.path, raw, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _do

        self._handler = Handler
        self.url = ""

    def __enter__(self) -> FakeGitHub:
        self.server = http.serve(self._handler, name="fake-github")
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        http.stop(self.server)

    def handle(self, method: str, path: str, raw: str, auth: str) -> tuple[int, Any]:
        if auth != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        route = urlsplit(path).path
        body = json.loads(raw) if raw else {}
        if method == "GET" and route == "/user":
            return 200, {"login": self.login, "id": 1, "type": "User"}
        if m := re.fullmatch(r"/repos/([^/]+)/([^/]+)", route):
            full = f"{m.group(1)}/{m.group(2)}"
            if full in self.repos:
                return 200, self.repos[full]
            return 404, {"message": "Not Found"}
        if method == "POST" and (route == "/user/repos" or re.fullmatch(r"/orgs/[^/]+/repos", route)):
            owner = self.login if route == "/user/repos" else route.split("/")[2]
            if route != "/user/repos" and owner not in self.orgs:
                return 404, {"message": "Not Found"}
            full = f"{owner}/{body['name']}"
            if full in self.repos:
                return 422, {"message": "Repository creation failed.", "errors": [{"message": "name already exists on this account"}]}
            self.repos[full] = {"id": self._id(), "name": body["name"], "full_name": full, "private": bool(body.get("private")), "ssh_url": f"git@github.com:{full}.git"}
            return 201, self.repos[full]
        if m := re.fullmatch(r"/repos/([^/]+)/([^/]+)/keys", route):
            full = f"{m.group(1)}/{m.group(2)}"
            if full not in self.repos:
                return 404, {"message": "Not Found"}
            keys = self.keys.setdefault(full, [])
            if method == "GET":
                return 200, keys
            if any(k["key"] == body["key"] for k in keys):
                return 422, {"message": "Validation Failed", "errors": [{"message": "key is already in use"}]}
            key = {"id": self._id(), "key": body["key"], "title": body["title"], "read_only": bool(body.get("read_only", True)), "verified": True}
            keys.append(key)
            return 201, key
        return 404, {"message": "Not Found"}

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

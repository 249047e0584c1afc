"""A fake Keycloak (admin REST API and OIDC discovery) on 127.0.0.1, in a thread of the test.

Real paths and JSON shapes of Keycloak 17+ (no ``/auth`` prefix):

- ``POST /realms/master/protocol/openid-connect/token`` (password grant of ``admin-cli``)
- ``GET /realms/<realm>/.well-known/openid-configuration``
- ``GET /admin/realms/<realm>``
- ``GET|POST /admin/realms/<realm>/clients`` (``?clientId=`` exact match; POST answers 201 with a
  ``Location`` header, 409 ``{"errorMessage": "Client X already exists"}`` for a duplicate)
- ``GET|PUT|DELETE /admin/realms/<realm>/clients/<uuid>`` (PUT 204, DELETE 204)
- ``GET|POST /admin/realms/<realm>/clients/<uuid>/client-secret`` (``{"type": "secret", "value"}``)
- ``GET|POST /admin/realms/<realm>/clients/<uuid>/protocol-mappers/models`` and
  ``PUT|DELETE .../models/<id>``

Admin calls need ``Authorization: Bearer <token>`` with a token that has not expired (401
``{"error": "HTTP 401 Unauthorized"}`` otherwise); an unknown realm is 404
``{"error": "Realm not found."}``, an unknown client 404 ``{"error": "Could not find client"}``.
Tests steer it with :meth:`FakeKeycloak.fail`, :meth:`FakeKeycloak.hang`,
:meth:`FakeKeycloak.expire_tokens` and read :attr:`FakeKeycloak.requests`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import secrets
import socket
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from fakes import http
from fakes.tls import TestPKI, shared_pki

JSON = dict[str, Any]

CLIENT_DEFAULTS: JSON = {
    "surrogateAuthRequired": False,
    "enabled": True,
    "alwaysDisplayInConsole": False,
    "clientAuthenticatorType": "client-secret",
    "redirectUris": [],
    "webOrigins": [],
    "notBefore": 0,
    "bearerOnly": False,
    "consentRequired": False,
    "standardFlowEnabled": True,
    "implicitFlowEnabled": False,
    "directAccessGrantsEnabled": True,
    "serviceAccountsEnabled": False,
    "publicClient": False,
    "frontchannelLogout": True,
    "protocol": "openid-connect",
    "attributes": {},
    "authenticationFlowBindingOverrides": {},
    "fullScopeAllowed": True,
    "nodeReRegistrationTimeout": -1,
    "defaultClientScopes": ["web-origins", "acr", "profile", "roles", "basic", "email"],
    "optionalClientScopes": ["address", "phone", "offline_access", "microprofile-jwt"],
}


@dataclass
class Record:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "DELETE") and self.path.startswith("/admin/")


@dataclass
class Realm:
    name: str
    clients: dict[str, JSON] = field(default_factory=dict)  # uuid -> representation
    mappers: dict[str, list[JSON]] = field(default_factory=dict)  # client uuid -> mappers


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: JSON | None
    times: int | None


class _Reply(Exception):
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}


class FakeKeycloak:
    """In-memory Keycloak; ``with FakeKeycloak() as kc:`` or start()/stop()."""

    def __init__(
        self,
        *,
        admin_user: str = "admin",
        admin_password: str | None = None,
        realms: tuple[str, ...] = ("thinkube",),
        token_lifespan: float = 60.0,
        tls: TestPKI | None = None,
    ) -> None:
        self.tls = tls
        self.admin_user = admin_user
        self.admin_password = admin_password or secrets.token_urlsafe(18)
        self.token_lifespan = token_lifespan
        self.realms: dict[str, Realm] = {name: Realm(name) for name in ("master", *realms)}
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.requests: list[Record] = []
        self.issued_secrets: list[str] = []
        self._faults: list[_Fault] = []
        self._hangs: list[tuple[str, re.Pattern[str], float]] = []
        self._expire_after: int | None = None
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""
        self.issuer_override: str | None = None

    # ---- lifecycle

    def start(self) -> FakeKeycloak:
        tls = self.tls

        class _Server(ThreadingHTTPServer):
            def server_bind(self) -> None:
                super().server_bind()
                if tls is not None:  # wrapped before serving: the first request is TLS too
                    self.socket = tls.server_context().wrap_socket(self.socket, server_side=True)

        server = http.serve(_Handler, server_class=_Server, name="fake-keycloak", fake=self)
        self._server = server
        self.port = server.server_address[1]
        self.url = (
            f"https://localhost:{self.port}" if tls is not None else f"http://127.0.0.1:{self.port}"
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            http.stop(self._server)
            self._server = None

    def __enter__(self) -> FakeKeycloak:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test controls

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int = 500,
        body: JSON | None = None,
        times: int | None = 1,
    ) -> None:
        """The next ``times`` matching requests (None: all) answer ``status``."""
        if body is None:
            body = {"error": "unknown_error"} if status >= 500 else {"error": "HTTP error"}
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), status, body, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._hangs.clear()

    def hang(self, method: str, path_regex: str, seconds: float) -> None:
        """Matching requests wait ``seconds`` before answering (a client timeout fires first)."""
        with self._lock:
            self._hangs.append((method.upper(), re.compile(path_regex), seconds))

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (as if the run took longer than its life)."""
        with self._lock:
            for tok in self.tokens:
                self.tokens[tok] = 0.0

    def expire_after(self, admin_requests: int) -> None:
        """Tokens expire after that many more admin requests (mid-run expiry)."""
        with self._lock:
            self._expire_after = admin_requests

    def writes(self) -> list[Record]:
        return [r for r in self.requests if r.is_write]

    def token_requests(self) -> list[Record]:
        return [r for r in self.requests if r.path.endswith("/openid-connect/token")]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- direct state access (an admin clicking in the console)

    def add_client(self, realm: str, rep: JSON, *, secret: str | None = None) -> str:
        with self._lock:
            return self._create_client(self.realms[realm], copy.deepcopy(rep), secret)

    def clients(self, realm: str = "thinkube") -> list[JSON]:
        with self._lock:
            return [copy.deepcopy(c) for c in self.realms[realm].clients.values()]

    def client(self, client_id: str, realm: str = "thinkube") -> JSON | None:
        return next((c for c in self.clients(realm) if c["clientId"] == client_id), None)

    def client_mappers(self, uuid: str, realm: str = "thinkube") -> list[JSON]:
        with self._lock:
            return copy.deepcopy(self.realms[realm].mappers.get(uuid, []))

    def secret_of(self, client_id: str, realm: str = "thinkube") -> str:
        client = self.client(client_id, realm)
        assert client is not None
        return str(client["secret"])

    def rotate_secret(self, client_id: str, realm: str = "thinkube") -> str:
        with self._lock:
            for c in self.realms[realm].clients.values():
                if c["clientId"] == client_id:
                    c["secret"] = self._new_secret()
                    return str(c["secret"])
        raise KeyError(client_id)

    def update_client_direct(self, client_id: str, changes: JSON, realm: str = "thinkube") -> None:
        with self._lock:
            for c in self.realms[realm].clients.values():
                if c["clientId"] == client_id:
                    c.update(copy.deepcopy(changes))
                    return
        raise KeyError(client_id)

    # ---- internals

    def _new_secret(self) -> str:
        value = secrets.token_urlsafe(24)
        self.issued_secrets.append(value)
        return value

    def _create_client(self, realm: Realm, rep: JSON, secret: str | None = None) -> str:
        for c in realm.clients.values():
            if c["clientId"] == rep.get("clientId"):
                raise _Reply(409, {"errorMessage": f"Client {rep['clientId']} already exists"})
        if not rep.get("clientId"):
            raise _Reply(400, {"errorMessage": "clientId is required"})
        uid = str(uuidlib.uuid4())
        client = {**copy.deepcopy(CLIENT_DEFAULTS), **rep, "id": uid}
        client["attributes"] = {**(rep.get("attributes") or {})}
        if not client.get("publicClient") and not client.get("bearerOnly"):
            client["secret"] = secret or rep.get("secret") or self._new_secret()
        client.pop("protocolMappers", None)
        realm.clients[uid] = client
        realm.mappers[uid] = []
        for mapper in rep.get("protocolMappers") or []:
            realm.mappers[uid].append({**mapper, "id": str(uuidlib.uuid4())})
        return uid

    def _check_fault(self, method: str, path: str) -> None:
        with self._lock:
            for fault in self._faults:
                if fault.method in (method, "*") and fault.pattern.search(path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    raise _Reply(fault.status, fault.body)
            hangs = [s for m, p, s in self._hangs if m in (method, "*") and p.search(path)]
        if hangs:
            time.sleep(max(hangs))

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        try:
            self._check_fault(method, path)
            return self._route(method, path, query, headers, body)
        except _Reply as reply:
            return reply.status, reply.body, reply.headers

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/realms/([^/]+)/protocol/openid-connect/token", path)
        if m and method == "POST":
            return self._token(unquote(m.group(1)), body)
        m = re.fullmatch(r"/realms/([^/]+)/\.well-known/openid-configuration", path)
        if m and method == "GET":
            realm = unquote(m.group(1))
            if realm not in self.realms:
                raise _Reply(404, {"error": "Realm does not exist"})
            issuer = self.issuer_override or f"{self.url}/realms/{realm}"
            return (
                200,
                {
                    "issuer": issuer,
                    "authorization_endpoint": f"{issuer}/protocol/openid-connect/auth",
                    "token_endpoint": f"{issuer}/protocol/openid-connect/token",
                    "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
                    "code_challenge_methods_supported": ["plain", "S256"],
                },
                {},
            )
        if path.startswith("/admin/realms/"):
            self._authorize(headers)
            return self._admin(method, path[len("/admin/realms/") :], query, body)
        raise _Reply(404, {"error": "Unable to find matching target resource method"})

    def _token(self, realm: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        if realm != "master":
            raise _Reply(401, {"error": "invalid_client", "error_description": "Invalid client"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "password" or form.get("client_id") != "admin-cli":
            raise _Reply(
                400,
                {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"},
            )
        if form.get("username") != self.admin_user or form.get("password") != self.admin_password:
            raise _Reply(
                401, {"error": "invalid_grant", "error_description": "Invalid user credentials"}
            )
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = time.monotonic() + self.token_lifespan
        return (
            200,
            {
                "access_token": token,
                "expires_in": int(self.token_lifespan),
                "refresh_expires_in": 1800,
                "refresh_token": secrets.token_urlsafe(32),
                "token_type": "Bearer",
                "not-before-policy": 0,
                "session_state": str(uuidlib.uuid4()),
                "scope": "profile email",
            },
            {},
        )

    def _authorize(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        with self._lock:
            expiry = self.tokens.get(token)
            if expiry is None or expiry <= time.monotonic():
                raise _Reply(401, {"error": "HTTP 401 Unauthorized"})
            if self._expire_after is not None:
                self._expire_after -= 1
                if self._expire_after <= 0:
                    self._expire_after = None
                    for tok in self.tokens:
                        self.tokens[tok] = 0.0

    def _admin(
        self, method: str, rest: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = [unquote(p) for p in rest.split("/") if p]
        realm = self.realms.get(parts[0]) if parts else None
        if realm is None:
            raise _Reply(404, {"error": "Realm not found."})
        parts = parts[1:]
        data = json.loads(body) if body else None
        with self._lock:
            if not parts:
                if method == "GET":
                    return 200, {"id": realm.name, "realm": realm.name, "enabled": True}, {}
                raise _Reply(405, {"error": "HTTP 405 Method Not Allowed"})
            if parts[0] != "clients":
                raise _Reply(404, {"error": "Unable to find matching target resource method"})
            if len(parts) == 1:
                if method == "GET":
                    wanted = (query.get("clientId") or [None])[0]
                    items = [
                        copy.deepcopy(c)
                        for c in realm.clients.values()
                        if wanted is None or c["clientId"] == wanted
                    ]
                    return 200, items, {}
                if method == "POST":
                    if not isinstance(data, dict):
                        raise _Reply(400, {"errorMessage": "Unrecognized field"})
                    uid = self._create_client(realm, data)
                    loc = f"{self.url}/admin/realms/{realm.name}/clients/{uid}"
                    return 201, None, {"Location": loc}
                raise _Reply(405, {"error": "HTTP 405 Method Not Allowed"})
            client = realm.clients.get(parts[1])
            if client is None:
                raise _Reply(404, {"error": "Could not find client"})
            uid = parts[1]
            sub = parts[2:]
            if not sub:
                if method == "GET":
                    return 200, copy.deepcopy(client), {}
                if method == "PUT":
                    if not isinstance(data, dict):
                        raise _Reply(400, {"errorMessage": "Unrecognized field"})
                    if data.get("clientId") not in (None, client["clientId"]) and any(
                        c["clientId"] == data["clientId"] for c in realm.clients.values()
                    ):
                        raise _Reply(409, {"errorMessage": "Client already exists"})
                    for key, value in data.items():
                        if key in ("id",) or value is None:
                            continue
                        client[key] = copy.deepcopy(value)
                    return 204, None, {}
                if method == "DELETE":
                    del realm.clients[uid]
                    realm.mappers.pop(uid, None)
                    return 204, None, {}
            if sub == ["client-secret"]:
                if client.get("publicClient"):
                    raise _Reply(400, {"errorMessage": "Client is public"})
                if method == "POST":
                    client["secret"] = self._new_secret()
                if method in ("GET", "POST"):
                    return 200, {"type": "secret", "value": client.get("secret")}, {}
            if sub[:2] == ["protocol-mappers", "models"]:
                mappers = realm.mappers.setdefault(uid, [])
                if len(sub) == 2:
                    if method == "GET":
                        return 200, copy.deepcopy(mappers), {}
                    if method == "POST":
                        if not isinstance(data, dict) or not data.get("name"):
                            raise _Reply(400, {"errorMessage": "Unrecognized field"})
                        if any(m["name"] == data["name"] for m in mappers):
                            raise _Reply(
                                409, {"errorMessage": "Protocol mapper exists with same name"}
                            )
                        mid = str(uuidlib.uuid4())
                        mappers.append({**copy.deepcopy(data), "id": mid})
                        loc = (
                            f"{self.url}/admin/realms/{realm.name}/clients/{uid}"
                            f"/protocol-mappers/models/{mid}"
                        )
                        return 201, None, {"Location": loc}
                if len(sub) == 3:
                    mapper = next((m for m in mappers if m["id"] == sub[2]), None)
                    if mapper is None:
                        raise _Reply(404, {"error": "Model not found"})
                    if method == "GET":
                        return 200, copy.deepcopy(mapper), {}
                    if method == "PUT":
                        mapper.update(
                            {k: copy.deepcopy(v) for k, v in (data or {}).items() if k != "id"}
                        )
                        return 204, None, {}
                    if method == "DELETE":
                        mappers.remove(mapper)
                        return 204, None, {}
        raise _Reply(404, {"error": "Unable to find matching target resource method"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle and the client's
        # delayed ACK add ~40 ms to every answer
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        fake: FakeKeycloak = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = Record(self.command, parts.path, parse_qs(parts.query), headers, body)
        with fake._lock:
            fake.requests.append(record)
        status, payload, extra = fake.handle(
            self.command, parts.path, parse_qs(parts.query), headers, body
        )
        record.status = status
        data = b"" if payload is None else json.dumps(payload).encode()
        with contextlib.suppress(OSError):
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


@pytest.fixture
def fake_keycloak() -> Iterator[FakeKeycloak]:
    """Keycloak over TLS at https://localhost:<port>; trust ``kc.tls.ca_file``."""
    with FakeKeycloak(tls=shared_pki()) as kc:
        yield kc

"""Keycloak admin REST client (httpx): the dashboard's OIDC client, its mappers and secret.

Only what phase 40 needs: an admin token from the master realm (password grant of ``admin-cli``,
renewed before it expires and once more on a 401), find / create / update a client so it
converges, its protocol mappers, its secret, and delete by the client's uuid.

Secrets never leave this module except as :class:`~thinkube_devpi.secrets.Secret`: the admin
password goes only into the token request's form body, the client secret only out of
:meth:`KeycloakAdmin.client_secret`. Error messages name the step and the HTTP status and carry
Keycloak's short error text (redacted of every secret this client knows), never a body.

One thing, so one module past 500 lines: the Keycloak admin API calls phase 40 makes.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from thinkube_devpi._lazy import lazy_import
from thinkube_devpi.installer.phases.base import PhaseError
from thinkube_devpi.secrets import Secret, redact

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_import("httpx")


# httpx logs each request at INFO and httpcore its wire steps at DEBUG: keep both quiet (the
# token request's form body carries the admin password).
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

log = logging.getLogger(__name__)

ADMIN_CLIENT = "admin-cli"
RENEW_BEFORE = 15.0  # seconds before expiry a token is renewed
MANAGED_DESCRIPTION = "Managed by thinkube-devpi: the DevPi dashboard behind OAuth2 Proxy."
# Read-only fields of a client representation that an update must not send back
_NOT_SENT = ("secret", "registrationAccessToken", "access")


class KeycloakError(PhaseError):
    """A Keycloak step failed: the message names the step and the HTTP status."""

    def __init__(self, step: str, reason: str, hint: str = "", status: int | None = None) -> None:
        self.step = step
        self.status = status
        self.reason = reason
        head = f"Keycloak: {step} failed"
        if status is not None:
            head += f": HTTP {status}"
        head += f" ({reason})" if status is not None else f": {reason}"
        super().__init__(head + ".", hint)


@dataclass(frozen=True)
class ClientSpec:
    """What the dashboard's client must look like."""

    client_id: str
    dashboard: str  # host name
    groups_claim: bool = False
    name: str = "DevPi dashboard"

    @property
    def redirect_uri(self) -> str:
        return f"https://{self.dashboard}/oauth2/callback"

    @property
    def origin(self) -> str:
        return f"https://{self.dashboard}"

    def representation(self) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "name": self.name,
            "description": MANAGED_DESCRIPTION,
            "enabled": True,
            "protocol": "openid-connect",
            "publicClient": False,
            "bearerOnly": False,
            "clientAuthenticatorType": "client-secret",
            "standardFlowEnabled": True,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "serviceAccountsEnabled": False,
            "redirectUris": [self.redirect_uri],
            "webOrigins": [self.origin],
            "rootUrl": self.origin,
            "baseUrl": f"{self.origin}/",
            "attributes": {
                "pkce.code.challenge.method": "S256",
                "post.logout.redirect.uris": f"{self.origin}/*",
            },
        }

    def mappers(self) -> list[dict[str, Any]]:
        out = [
            {
                "name": f"{self.client_id}-audience",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {
                    "included.client.audience": self.client_id,
                    "id.token.claim": "true",
                    "access.token.claim": "true",
                },
            }
        ]
        if self.groups_claim:
            out.append(
                {
                    "name": GROUPS_MAPPER,
                    "protocol": "openid-connect",
                    "protocolMapper": "oidc-group-membership-mapper",
                    "config": {
                        "claim.name": "groups",
                        "full.path": "false",
                        "id.token.claim": "true",
                        "access.token.claim": "true",
                        "userinfo.token.claim": "true",
                    },
                }
            )
        return out

    def mapper_names(self) -> set[str]:
        return {f"{self.client_id}-audience", GROUPS_MAPPER}


GROUPS_MAPPER = "groups"


def client_drift(spec: ClientSpec, live: dict[str, Any]) -> list[str]:
    """Fields where ``live`` differs from the spec (lists compared as sets)."""
    out = []
    for key, want in spec.representation().items():
        have = live.get(key)
        if key == "attributes":
            have = have or {}
            out += [f"attributes.{k}" for k, v in want.items() if have.get(k) != v]
        elif isinstance(want, list):
            if sorted(have or []) != sorted(want):
                out.append(key)
        elif have != want:
            out.append(key)
    return out


def mapper_drift(want: dict[str, Any], live: dict[str, Any]) -> bool:
    if live.get("protocolMapper") != want["protocolMapper"]:
        return True
    have = live.get("config") or {}
    return any(have.get(k) != v for k, v in want["config"].items())


@dataclass
class EnsureResult:
    uuid: str
    created: bool = False
    changes: list[str] = field(default_factory=list)  # what was written, for the log

    @property
    def changed(self) -> bool:
        return self.created or bool(self.changes)


class KeycloakAdmin:
    """An admin session against one Keycloak and realm."""

    def __init__(
        self,
        base_url: str,
        realm: str,
        user: str,
        password: Secret,
        *,
        ca_file: str | None = None,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.realm = realm
        self.user = user
        self._password = password
        self._clock = clock
        self._token: Secret | None = None
        self._expires_at = 0.0
        self._known: list[Secret] = [password]
        self.writes = 0
        self.token_requests = 0
        verify: ssl.SSLContext | bool = True
        if ca_file:
            try:
                verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise KeycloakError(
                    "loading the CA file",
                    f"{ca_file}: {exc.strerror or type(exc).__name__}",
                    "Point keycloak_ca_file at a PEM file with the CA that signed Keycloak's "
                    "certificate.",
                ) from None
        self._http = httpx.Client(
            base_url=self.base_url,
            verify=verify,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KeycloakAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transport

    def _redact(self, text: str) -> str:
        """Every form (plain, JSON, URL-encoded, base64) of every secret this client knows."""
        return redact(text, self._known)

    def _error_text(self, resp: httpx.Response) -> str:
        """Keycloak's short error text, never the whole body."""
        try:
            data = resp.json()
        except ValueError:
            return resp.reason_phrase or "no details"
        if not isinstance(data, dict):
            return resp.reason_phrase or "no details"
        text = (
            data.get("error_description")
            or data.get("errorMessage")
            or data.get("error")
            or resp.reason_phrase
            or "no details"
        )
        return self._redact(str(text))[:200]

    def _send(self, step: str, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise KeycloakError(
                step,
                f"{self.base_url} did not answer in time",
                "Check that Keycloak is up and reachable from here, then re-run; the phase "
                "picks up where it stopped.",
            ) from None
        except httpx.ConnectError as exc:
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
                raise KeycloakError(
                    step,
                    f"TLS verification of {self.base_url} failed",
                    "Set keycloak_ca_file to the CA that signed Keycloak's certificate.",
                ) from None
            raise KeycloakError(
                step,
                f"cannot connect to {self.base_url}",
                "Is Keycloak up, and is keycloak_url right? Re-run when it answers.",
            ) from None
        except httpx.HTTPError as exc:
            raise KeycloakError(
                step, f"{type(exc).__name__} talking to {self.base_url}", "Re-run when it answers."
            ) from None

    def _fail(self, step: str, resp: httpx.Response) -> KeycloakError:
        status = resp.status_code
        hints = {
            401: "The admin token was refused: check keycloak_admin_user and "
            "KEYCLOAK_ADMIN_PASSWORD.",
            403: f"The admin user {self.user!r} lacks the realm-management rights "
            "(manage-clients) in this realm.",
            404: f"Does realm {self.realm!r} exist? Check keycloak_realm and keycloak_url.",
            409: "Another object has the same name; re-run to converge.",
        }
        hint = hints.get(
            status,
            "Keycloak had a problem: try again; a re-run repairs a half-done phase."
            if status >= 500
            else "",
        )
        return KeycloakError(step, self._error_text(resp), hint, status)

    def token(self) -> Secret:
        """A valid admin token, renewed when it is about to expire."""
        if self._token is not None and self._clock() < self._expires_at - RENEW_BEFORE:
            return self._token
        return self._new_token()

    def _new_token(self) -> Secret:
        step = f"signing in as admin user {self.user!r} (master realm)"
        self.token_requests += 1
        resp = self._send(
            step,
            "POST",
            "/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": ADMIN_CLIENT,
                "username": self.user,
                "password": self._password.reveal(),
            },
        )
        if resp.status_code in (400, 401):
            raise KeycloakError(
                step,
                "wrong admin user or password" + f": {self._error_text(resp)}",
                "Check keycloak_admin_user and KEYCLOAK_ADMIN_PASSWORD (environment, keyring or "
                "the TUI prompt).",
                resp.status_code,
            )
        if resp.status_code == 404:
            raise KeycloakError(
                step,
                "no master realm token endpoint there",
                f"Is {self.base_url} the Keycloak base URL (no /auth suffix on Keycloak 17+)?",
                404,
            )
        if resp.status_code != 200:
            raise self._fail(step, resp)
        try:
            data = resp.json()
            token = Secret(str(data["access_token"]), "keycloak admin token")
            lifetime = float(data.get("expires_in", 60))
        except (ValueError, KeyError, TypeError):
            raise KeycloakError(step, "the token response is not Keycloak's") from None
        self._token = token
        self._known.append(token)
        self._expires_at = self._clock() + lifetime
        log.debug("admin token for %s, valid %ss", self.user, lifetime)
        return token

    def _admin(
        self, step: str, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kw: Any
    ) -> httpx.Response:
        """An admin API call; a 401 (token expired early, revoked) renews the token once."""
        url = f"/admin/realms/{quote(self.realm, safe='')}{path}"
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token().reveal()}"}
            resp = self._send(step, method, url, headers=headers, **kw)
            if resp.status_code == 401 and attempt == 1:
                self._token = None
                continue
            break
        if method != "GET" and resp.status_code in ok:
            self.writes += 1
        if resp.status_code not in ok:
            raise self._fail(step, resp)
        return resp

    def _json(self, step: str, resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise KeycloakError(step, "the answer is not JSON") from None

    # ------------------------------------------------------------ reads

    def issuer(self) -> str:
        step = f"reading realm {self.realm!r}'s OpenID configuration"
        resp = self._send(
            step, "GET", f"/realms/{quote(self.realm, safe='')}/.well-known/openid-configuration"
        )
        if resp.status_code == 404:
            raise KeycloakError(
                step,
                "realm not found",
                f"Create realm {self.realm!r} in Keycloak or set keycloak_realm.",
                404,
            )
        if resp.status_code != 200:
            raise self._fail(step, resp)
        data = self._json(step, resp)
        return str((data or {}).get("issuer", ""))

    def check_realm(self) -> None:
        self._admin(f"reading realm {self.realm!r}", "GET", "")

    def find_client(self, client_id: str) -> dict[str, Any] | None:
        step = f"looking up client {client_id!r} in realm {self.realm!r}"
        resp = self._admin(step, "GET", "/clients", params={"clientId": client_id})
        items = self._json(step, resp)
        for item in items if isinstance(items, list) else []:
            if item.get("clientId") == client_id:
                return dict(item)
        return None

    def mappers(self, uuid: str) -> list[dict[str, Any]]:
        step = "reading the client's protocol mappers"
        resp = self._admin(step, "GET", f"/clients/{uuid}/protocol-mappers/models")
        items = self._json(step, resp)
        return list(items) if isinstance(items, list) else []

    def client_secret(self, uuid: str) -> Secret:
        step = "reading the client secret"
        resp = self._admin(step, "GET", f"/clients/{uuid}/client-secret")
        data = self._json(step, resp)
        value = (data or {}).get("value") if isinstance(data, dict) else None
        if not value:
            resp = self._admin(
                "generating a client secret", "POST", f"/clients/{uuid}/client-secret"
            )
            data = self._json(step, resp)
            value = (data or {}).get("value") if isinstance(data, dict) else None
        if not value:
            raise KeycloakError(step, "Keycloak returned no secret for a confidential client")
        secret = Secret(str(value), "from Keycloak")
        self._known.append(secret)
        return secret

    # ------------------------------------------------------------ writes

    def create_client(self, rep: dict[str, Any]) -> str:
        step = f"creating client {rep['clientId']!r}"
        resp = self._admin(step, "POST", "/clients", json=rep, ok=(201,))
        location = resp.headers.get("Location", "")
        uuid = location.rstrip("/").rsplit("/", 1)[-1]
        if not uuid:
            found = self.find_client(rep["clientId"])
            if not found:
                raise KeycloakError(step, "created, but Keycloak does not list it")
            uuid = str(found["id"])
        return uuid

    def update_client(self, uuid: str, rep: dict[str, Any]) -> None:
        body = {k: v for k, v in rep.items() if k not in _NOT_SENT}
        self._admin(
            f"updating client {rep.get('clientId')!r}",
            "PUT",
            f"/clients/{uuid}",
            json=body,
            ok=(204, 200),
        )

    def delete_client(self, uuid: str) -> bool:
        """Delete by the client's uuid; False when it was already gone."""
        step = f"deleting client {uuid} from realm {self.realm!r}"
        try:
            self._admin(step, "DELETE", f"/clients/{uuid}", ok=(204, 200))
        except KeycloakError as exc:
            if exc.status == 404 and "realm" not in exc.reason.lower():
                return False
            raise
        return True

    def create_mapper(self, uuid: str, mapper: dict[str, Any]) -> None:
        self._admin(
            f"adding protocol mapper {mapper['name']!r}",
            "POST",
            f"/clients/{uuid}/protocol-mappers/models",
            json=mapper,
            ok=(201,),
        )

    def update_mapper(self, uuid: str, mapper_id: str, mapper: dict[str, Any]) -> None:
        self._admin(
            f"updating protocol mapper {mapper['name']!r}",
            "PUT",
            f"/clients/{uuid}/protocol-mappers/models/{mapper_id}",
            json={**mapper, "id": mapper_id},
            ok=(204, 200),
        )

    def delete_mapper(self, uuid: str, mapper_id: str, name: str) -> None:
        self._admin(
            f"removing protocol mapper {name!r}",
            "DELETE",
            f"/clients/{uuid}/protocol-mappers/models/{mapper_id}",
            ok=(204, 200),
        )

    # ------------------------------------------------------------ convergence

    def drift(self, spec: ClientSpec) -> tuple[dict[str, Any] | None, list[str]]:
        """(live client, what differs from the spec); reads only."""
        live = self.find_client(spec.client_id)
        if live is None:
            return None, ["client missing"]
        out = client_drift(spec, live)
        have = {m.get("name"): m for m in self.mappers(str(live["id"]))}
        for want in spec.mappers():
            if want["name"] not in have:
                out.append(f"mapper {want['name']} missing")
            elif mapper_drift(want, have[want["name"]]):
                out.append(f"mapper {want['name']}")
        if not spec.groups_claim and GROUPS_MAPPER in have and _is_ours(have[GROUPS_MAPPER]):
            out.append(f"mapper {GROUPS_MAPPER} not wanted")
        return live, out

    def ensure(self, spec: ClientSpec) -> EnsureResult:
        """Create or update the client and its mappers; no write when it already converged."""
        live = self.find_client(spec.client_id)
        want = spec.representation()
        if live is None:
            uuid = self.create_client(want)
            result = EnsureResult(uuid, created=True)
        else:
            uuid = str(live["id"])
            result = EnsureResult(uuid)
            diff = client_drift(spec, live)
            if diff:
                merged = {**live, **want}
                merged["attributes"] = {**(live.get("attributes") or {}), **want["attributes"]}
                self.update_client(uuid, merged)
                result.changes += diff
        have = {m.get("name"): m for m in self.mappers(uuid)}
        for mapper in spec.mappers():
            current = have.get(mapper["name"])
            if current is None:
                self.create_mapper(uuid, mapper)
                result.changes.append(f"mapper {mapper['name']} added")
            elif mapper_drift(mapper, current):
                self.update_mapper(uuid, str(current["id"]), mapper)
                result.changes.append(f"mapper {mapper['name']} updated")
        extra = have.get(GROUPS_MAPPER)
        if not spec.groups_claim and extra is not None and _is_ours(extra):
            self.delete_mapper(uuid, str(extra["id"]), GROUPS_MAPPER)
            result.changes.append(f"mapper {GROUPS_MAPPER} removed")
        return result


def _is_ours(mapper: dict[str, Any]) -> bool:
    """The groups mapper this installer adds (same type and claim); others are left alone."""
    config = mapper.get("config") or {}
    return (
        mapper.get("protocolMapper") == "oidc-group-membership-mapper"
        and config.get("claim.name") == "groups"
    )

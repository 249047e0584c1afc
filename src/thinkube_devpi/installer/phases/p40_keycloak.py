"""Phase 40: the Keycloak client for the dashboard and the Secret oauth2-proxy reads.

The client ``devpi-dashboard`` converges (created, or updated field by field) to: confidential,
standard flow only, direct access grants off, PKCE S256, redirect
``https://<dashboard>/oauth2/callback``, web origin and base URL of the dashboard, an audience
mapper (oauth2-proxy checks ``aud``), and a group-membership mapper putting a ``groups`` claim in
the token when sign-in is limited to groups. A converged client gets no write.

The Secret ``devpi-dashboard-oidc`` holds ``client-id``, ``client-secret`` (read from Keycloak on
every apply, so a rotation there is picked up) and ``cookie-secret`` (32 random bytes, URL-safe
base64, generated once and kept across re-runs and client-secret rotations).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
from collections.abc import Iterator

from thinkube_devpi.installer.auth_checks import (
    CLIENT_ID,
    OIDC_SECRET,
    admin_password,
    check_hosts,
    check_issuer,
)
from thinkube_devpi.installer.events import Emit, ObjectApplied, State
from thinkube_devpi.installer.keycloak import (
    MANAGED_DESCRIPTION,
    ClientSpec,
    KeycloakAdmin,
    KeycloakError,
)
from thinkube_devpi.installer.phases.base import (
    Context,
    Desired,
    KeySource,
    Phase,
    PhaseError,
    PhaseStatus,
    Plan,
    RollbackPreview,
    SecretObject,
    realize,
)
from thinkube_devpi.secrets import Secret

_URLSAFE = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def cookie_secret_ok(text: str) -> bool:
    """What oauth2-proxy accepts: URL-safe base64 of 16, 24 or 32 bytes."""
    if not _URLSAFE.fullmatch(text):
        return False
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return False
    return len(raw) in (16, 24, 32)


def new_cookie_secret() -> Secret:
    return Secret(base64.urlsafe_b64encode(os.urandom(32)).decode(), "generated")


class CookieSecret(KeySource):
    """32 random bytes as URL-safe base64; kept once made (a bad value is replaced)."""

    describe = "generated once (32 random bytes, URL-safe base64)"

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        if existing and cookie_secret_ok(existing):
            return Secret(existing, "kept")
        return new_cookie_secret()


class Fixed(KeySource):
    """A value that is not secret (the client id)."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.describe = f"fixed: {value}"

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        return Secret(self.value, "fixed")


class FromKeycloak(KeySource):
    """The client secret, read from Keycloak at apply time (and compared at status time)."""

    def __init__(self, phase: KeycloakPhase) -> None:
        self.phase = phase
        self.describe = f"from Keycloak client {CLIENT_ID}"

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        current = self.phase.current_client_secret()
        if current is None:  # Keycloak not asked (no admin password, plan without it)
            return Secret(existing or "", "kept: Keycloak not asked")
        return current


class KeycloakPhase(Phase):
    number = 40
    name = "keycloak"
    title = "Keycloak client"
    summary = (
        f"Keycloak client {CLIENT_ID} (confidential, PKCE S256) and the Secret {OIDC_SECRET} "
        "with its id, its secret and a cookie secret."
    )
    keycloak_timeout = 15.0  # seconds per Keycloak request

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._admin: KeycloakAdmin | None = None
        self._uuid: str | None = None
        self._client_secret: Secret | None = None
        self._tolerant = False
        self._notes: list[str] = []

    # ------------------------------------------------------------ what it wants

    def spec(self) -> ClientSpec:
        return ClientSpec(
            CLIENT_ID, self.settings.dashboard, groups_claim=bool(self.settings.allowed_groups)
        )

    def secret(self) -> SecretObject:
        return SecretObject(
            OIDC_SECRET,
            self.settings.namespace,
            {
                "client-id": Fixed(CLIENT_ID),
                "client-secret": FromKeycloak(self),
                "cookie-secret": CookieSecret(),
            },
        )

    def objects(self) -> list[Desired]:
        return [self.secret()]

    def precheck(self) -> None:
        # the admin password is asked for when the phase runs (it may be skipped as healthy)
        check_issuer(self.settings)
        check_hosts(self.settings)

    def preflight(self) -> None:
        check_issuer(self.settings)
        check_hosts(self.settings)
        admin_password(self.ctx, required=True)

    # ------------------------------------------------------------ Keycloak session

    @contextlib.contextmanager
    def keycloak(self, *, required: bool) -> Iterator[KeycloakAdmin | None]:
        """An admin session for one operation (None when not required and no password)."""
        if self._admin is not None:
            yield self._admin
            return
        password = admin_password(self.ctx, required=required)
        if password is None:
            yield None
            return
        admin = KeycloakAdmin(
            self.settings.keycloak,
            self.settings.keycloak_realm,
            self.settings.keycloak_admin_user,
            password,
            ca_file=self.settings.keycloak_ca_file,
            timeout=self.keycloak_timeout,
        )
        self._admin = admin
        try:
            yield admin
        finally:
            admin.close()
            self._admin = None
            self._uuid = None
            self._client_secret = None

    def current_client_secret(self) -> Secret | None:
        if self._client_secret is not None:
            return self._client_secret
        admin = self._admin
        if admin is None:
            return None
        try:
            if self._uuid is None:
                live = admin.find_client(CLIENT_ID)
                if live is None:
                    return None
                self._uuid = str(live["id"])
            self._client_secret = admin.client_secret(self._uuid)
        except KeycloakError as exc:
            if not self._tolerant:
                raise
            self._notes.append(str(exc))
            return None
        return self._client_secret

    # ------------------------------------------------------------ plan, apply

    def plan(self) -> Plan:
        self._notes = []
        self._tolerant = True
        try:
            with self.keycloak(required=False) as admin:
                plan = super().plan()
                plan.notes += self._keycloak_plan(admin)
        except PhaseError as exc:
            plan = super().plan()
            plan.notes.append(f"Keycloak not asked: {exc.message}")
        finally:
            self._tolerant = False
        plan.notes += self._notes
        return plan

    def _keycloak_plan(self, admin: KeycloakAdmin | None) -> list[str]:
        where = f"realm {self.settings.keycloak_realm!r} at {self.settings.keycloak}"
        if admin is None or self.ctx.kube is None:
            return [
                f"Keycloak client {CLIENT_ID} in {where}: create or update "
                "(not asked: no cluster or KEYCLOAK_ADMIN_PASSWORD not set)"
            ]
        try:
            live, drift = admin.drift(self.spec())
        except KeycloakError as exc:
            return [f"Keycloak not asked: {exc.message}"]
        if live is None:
            return [f"Keycloak client {CLIENT_ID} in {where}: create"]
        if drift:
            return [f"Keycloak client {CLIENT_ID} in {where}: update {', '.join(drift)}"]
        return [f"Keycloak client {CLIENT_ID} in {where}: unchanged"]

    def apply(self, emit: Emit) -> None:
        self.preflight()
        self.ctx.require_kube()
        with self.keycloak(required=True) as admin:
            assert admin is not None
            issuer = admin.issuer()
            wanted = check_issuer(self.settings)
            if issuer.rstrip("/") != wanted:
                raise KeycloakError(
                    "checking the issuer",
                    f"Keycloak calls itself {issuer!r}, oauth2-proxy would expect {wanted!r}",
                    "Set keycloak_url to the URL Keycloak is configured with (its hostname); "
                    "oauth2-proxy refuses tokens from a different issuer.",
                )
            result = admin.ensure(self.spec())
            self._uuid = result.uuid
            if result.created:
                self.log(emit, f"Keycloak client {CLIENT_ID} created ({result.uuid})")
            elif result.changes:
                self.log(emit, f"Keycloak client {CLIENT_ID} updated: {', '.join(result.changes)}")
            else:
                self.log(emit, f"Keycloak client {CLIENT_ID} unchanged")
            self._client_secret = admin.client_secret(result.uuid)
            for obj in self.objects():
                if self.ctx.cancel.is_set():
                    raise PhaseError("Cancelled.", "Re-run the phase to finish it.")
                applied = self.apply_one(realize(obj))
                emit(ObjectApplied(self.name, applied.ref, applied.outcome))

    # ------------------------------------------------------------ status

    def status(self) -> PhaseStatus:
        with self.keycloak(required=False):
            return super().status()

    def health(self) -> PhaseStatus:
        admin = self._admin
        if admin is None:
            return PhaseStatus(
                State.UNKNOWN,
                "Keycloak not checked: KEYCLOAK_ADMIN_PASSWORD is not set",
            )
        live, drift = admin.drift(self.spec())
        if live is None:
            return PhaseStatus(
                State.PROGRESSING,
                f"Keycloak client {CLIENT_ID} is missing in realm {self.settings.keycloak_realm!r}",
            )
        if drift:
            return PhaseStatus(
                State.PROGRESSING,
                f"Keycloak client {CLIENT_ID} differs: {', '.join(drift)}",
                drift,
            )
        return PhaseStatus(
            State.HEALTHY,
            f"Keycloak client {CLIENT_ID} as wanted; {OIDC_SECRET} matches its secret",
        )

    # ------------------------------------------------------------ rollback

    def was_applied(self) -> bool:
        """The Secret exists, or a Keycloak admin password is at hand to look for the client; a
        partial install that never reached this phase is not asked for Keycloak's password."""
        if super().was_applied():
            return True
        try:
            return admin_password(self.ctx, required=False) is not None
        except PhaseError:
            return False

    def rollback_preview(self) -> RollbackPreview:
        preview = super().rollback_preview()
        preview.deletes.insert(
            0,
            f"Keycloak client {CLIENT_ID} in realm {self.settings.keycloak_realm} "
            "(only if thinkube-devpi made it)",
        )
        return preview

    def rollback(self, emit: Emit) -> None:
        with self.keycloak(required=True) as admin:
            assert admin is not None
            live = admin.find_client(CLIENT_ID)
            if live is None:
                self.log(emit, f"Keycloak client {CLIENT_ID}: absent")
            elif live.get("description") != MANAGED_DESCRIPTION:
                self.log(
                    emit,
                    f"Keycloak client {CLIENT_ID} kept: not made by thinkube-devpi",
                    "warning",
                )
            else:
                uuid = str(live["id"])
                admin.delete_client(uuid)
                self.log(emit, f"Keycloak client {CLIENT_ID} deleted ({uuid})")
        self.delete_objects(reversed(self.objects()), emit)

"""Checks shared by the sign-in and exposure phases (40, 50, 80), run before anything is written."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from thinkube_devpi.config import ConfigError, dns_name, https_url
from thinkube_devpi.installer.phases.base import Context, PhaseError
from thinkube_devpi.secrets import Secret, SecretError

if TYPE_CHECKING:
    from thinkube_devpi.config import Settings

ADMIN_PASSWORD_ENV = "KEYCLOAK_ADMIN_PASSWORD"
CLIENT_ID = "devpi-dashboard"
OIDC_SECRET = "devpi-dashboard-oidc"  # client-id, client-secret, cookie-secret


def check_issuer(settings: Settings) -> str:
    """The issuer URL ``<keycloak>/realms/<realm>``: https, a DNS host, no query or fragment."""
    try:
        base = https_url("keycloak_url", settings.keycloak)
    except ConfigError as exc:
        raise PhaseError(
            f"Invalid Keycloak issuer URL {settings.issuer!r}: {exc.allowed}.",
            "Set keycloak_url to Keycloak's https:// base URL, e.g. https://auth.example.com.",
        ) from None
    parts = urlsplit(base)
    if parts.query or parts.fragment or "/realms/" in parts.path:
        raise PhaseError(
            f"Invalid Keycloak issuer URL {settings.issuer!r}: keycloak_url must be the base URL, "
            "without query, fragment or /realms/ part.",
            "Set keycloak_url to e.g. https://auth.example.com; the realm comes from "
            "keycloak_realm.",
        )
    return f"{base}/realms/{settings.keycloak_realm}"


def check_hosts(settings: Settings) -> None:
    """The dashboard host lies inside the domain the session cookie is scoped to."""
    domain = settings.effective_domain
    for name, host in (("dashboard_host", settings.dashboard), ("api_host", settings.api)):
        try:
            dns_name(name, host)
        except ConfigError as exc:
            raise PhaseError(str(exc), "Fix the host name in the settings.") from None
    if not settings.dashboard.endswith(f".{domain}"):
        raise PhaseError(
            f"The dashboard host {settings.dashboard!r} is outside the domain {domain!r}: "
            f"oauth2-proxy's cookie is scoped to .{domain}, so sign-in could never stick.",
            f"Set dashboard_host to a name under {domain} (default devpi.{domain}) or set "
            "domain to the dashboard's parent domain.",
        )
    if settings.dashboard == settings.api:
        raise PhaseError(
            f"The dashboard and API hosts are the same ({settings.api!r}).",
            "The API host must stay open for pip while the dashboard needs sign-in: give them "
            "different names.",
        )


def admin_password(ctx: Context, *, required: bool = True) -> Secret | None:
    """``KEYCLOAK_ADMIN_PASSWORD``: typed in the TUI, then environment, keyring, prompt."""
    typed = ctx.session_secrets.get(ADMIN_PASSWORD_ENV)
    if typed:
        return typed
    from thinkube_devpi.secrets import lookup

    try:
        found = lookup(ADMIN_PASSWORD_ENV, interactive=ctx.interactive and required)
    except SecretError as exc:
        raise PhaseError(f"Cannot read {ADMIN_PASSWORD_ENV}: {exc}.") from None
    if found is None and required:
        raise PhaseError(
            f"The Keycloak admin password is not set ({ADMIN_PASSWORD_ENV}).",
            f"Export {ADMIN_PASSWORD_ENV}, store it in the keyring, or type it in the TUI; "
            "it is never written to disk or passed on a command line.",
            setting=ADMIN_PASSWORD_ENV,
        )
    return found

"""Read-only checks of the cluster and services before any write, as :class:`Check` rows."""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from thinkube_devpi.installer.kube import KubeError

if TYPE_CHECKING:
    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.kube import Kube


@dataclass(frozen=True)
class Check:
    """One preflight result."""

    name: str
    ok: bool | None  # None: could not be checked (plan mode)
    detail: str


def preflight(kube: Kube | None, settings: Settings, *, timeout: float = 3.0) -> list[Check]:
    """Cluster reachable, Argo and ArgoCD CRDs, ingress class or Gateway, Keycloak issuer, TLS."""
    out: list[Check] = []
    if kube is None:
        out.append(Check("cluster reachable", False, "no cluster: plan mode"))
    else:
        try:
            out.append(Check("cluster reachable", True, f"{kube.server} ({kube.version()})"))
        except KubeError as exc:
            out.append(Check("cluster reachable", False, str(exc)))
            kube = None
    if kube is not None:
        for label, api, kind in (
            ("Argo Workflows CRDs", "argoproj.io/v1alpha1", "Workflow"),
            ("ArgoCD CRDs", "argoproj.io/v1alpha1", "Application"),
        ):
            out.append(_kind_check(kube, label, api, kind))
        if settings.exposure == "gateway":
            ref_api, ref_kind = "gateway.networking.k8s.io/v1", "Gateway"
            name, ns = settings.gateway_name, settings.gateway_namespace
        else:
            ref_api, ref_kind = "networking.k8s.io/v1", "IngressClass"
            name, ns = settings.ingress_class, None
        out.append(_object_check(kube, f"{ref_kind} {name}", ref_api, ref_kind, name, ns))
        out.append(
            _object_check(
                kube,
                "wildcard TLS Secret",
                "v1",
                "Secret",
                settings.tls_secret_name,
                settings.tls_secret_namespace,
            )
        )
    else:
        for name in ("Argo Workflows CRDs", "ArgoCD CRDs", "ingress class", "wildcard TLS Secret"):
            out.append(Check(name, None, "needs a cluster"))
    out.append(_issuer_check(settings, timeout))
    return out


def _kind_check(kube: Kube, label: str, api: str, kind: str) -> Check:
    try:
        found = kube.has_kind(api, kind)
    except KubeError as exc:
        return Check(label, False, str(exc))
    return Check(label, found, f"{kind} ({api}) " + ("served" if found else "not served"))


def _object_check(
    kube: Kube, label: str, api: str, kind: str, name: str, namespace: str | None
) -> Check:
    from thinkube_devpi.installer.events import ObjectRef

    ref = ObjectRef(api, kind, name, namespace)
    try:
        found = kube.get(ref) is not None  # only existence: a Secret's data is never shown
    except KubeError as exc:
        return Check(label, False, str(exc))
    return Check(label, found, f"{ref} " + ("present" if found else "not found"))


def _issuer_check(settings: Settings, timeout: float) -> Check:
    url = f"{settings.issuer}/.well-known/openid-configuration"
    if settings.is_placeholder and not settings.keycloak_url:
        return Check("Keycloak issuer", None, f"set a domain first ({url} is a placeholder)")
    import httpx

    try:
        verify: ssl.SSLContext | bool = True
        if settings.keycloak_ca_file:
            verify = ssl.create_default_context(cafile=settings.keycloak_ca_file)
        with httpx.Client(timeout=timeout, verify=verify) as client:
            resp = client.get(url)
    except httpx.HTTPError as exc:
        return Check("Keycloak issuer", False, f"{url}: {type(exc).__name__}")
    if resp.status_code != 200:
        return Check("Keycloak issuer", False, f"{url}: HTTP {resp.status_code}")
    issuer = ""
    with contextlib.suppress(ValueError):
        issuer = str(resp.json().get("issuer", ""))
    ok = issuer == settings.issuer
    return Check(
        "Keycloak issuer", ok, f"{settings.issuer}" + ("" if ok else f" (server says {issuer!r})")
    )

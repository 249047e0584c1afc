"""Read-only checks of the cluster and services before any write, as :class:`Check` rows."""

from __future__ import annotations

import contextlib
import re
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
    hint: str = ""  # what to do when it failed


def _failed(label: str, exc: KubeError) -> Check:
    return Check(label, False, exc.message, exc.hint or "Check the cluster connection and re-run.")


def http_failure(exc: Exception, url: str) -> tuple[str, str]:
    """(what happened, what to do) for an HTTP call that got no answer; no class names."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return f"{url}: no answer in time", "Is Keycloak up and reachable from this machine?"
    text = re.sub(r"\[Errno -?\d+\] ", "", str(exc))
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLError):
        return (
            f"{url}: its TLS certificate is not trusted here",
            "Set keycloak_ca_file to the CA that signed it (`tk-devpi config init "
            "--keycloak-ca-file PATH`).",
        )
    if isinstance(exc, httpx.ConnectError):
        return (
            f"{url}: cannot connect ({text.splitlines()[0][:120] if text else 'refused'})",
            "Check the domain (or keycloak_url) and that the name resolves from this machine.",
        )
    return f"{url}: {text.splitlines()[0][:160] if text else 'the request failed'}", (
        "Check keycloak_url and the network, then re-run."
    )


def preflight(kube: Kube | None, settings: Settings, *, timeout: float = 3.0) -> list[Check]:
    """Cluster reachable, Argo and ArgoCD CRDs, ingress class or Gateway, Keycloak issuer, TLS."""
    out: list[Check] = []
    if kube is None:
        out.append(
            Check(
                "cluster reachable",
                False,
                "no cluster: plan mode",
                "Set KUBECONFIG or --context to a reachable cluster.",
            )
        )
    else:
        try:
            out.append(Check("cluster reachable", True, f"{kube.server} ({kube.version()})"))
        except KubeError as exc:
            out.append(_failed("cluster reachable", exc))
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
        return _failed(label, exc)
    product = "Argo Workflows" if kind == "Workflow" else "ArgoCD"
    return Check(
        label,
        found,
        f"{kind} ({api}) " + ("served" if found else "not served"),
        "" if found else f"Install {product} on the cluster first (thinkube installs it).",
    )


def _object_check(
    kube: Kube, label: str, api: str, kind: str, name: str, namespace: str | None
) -> Check:
    from thinkube_devpi.installer.events import ObjectRef

    ref = ObjectRef(api, kind, name, namespace)
    try:
        found = kube.get(ref) is not None  # only existence: a Secret's data is never shown
    except KubeError as exc:
        return _failed(label, exc)
    hints = {
        "Secret": "Set tls_secret_name/tls_secret_namespace to the wildcard certificate's Secret.",
        "IngressClass": "Set ingress_class to one `kubectl get ingressclass` lists.",
        "Gateway": "Set gateway_name/gateway_namespace to the cluster's Gateway.",
    }
    return Check(
        label,
        found,
        f"{ref} " + ("present" if found else "not found"),
        "" if found else hints.get(kind, ""),
    )


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
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        detail, hint = http_failure(exc, url)
        return Check("Keycloak issuer", False, detail, hint)
    if resp.status_code != 200:
        return Check(
            "Keycloak issuer",
            False,
            f"{url}: HTTP {resp.status_code}",
            "Check keycloak_realm (and keycloak_url when Keycloak is not at auth.DOMAIN).",
        )
    issuer = ""
    with contextlib.suppress(ValueError):
        issuer = str(resp.json().get("issuer", ""))
    ok = issuer == settings.issuer
    return Check(
        "Keycloak issuer",
        ok,
        f"{settings.issuer}" + ("" if ok else f" (server says {issuer!r})"),
        "" if ok else "Set keycloak_url to the address Keycloak calls itself.",
    )

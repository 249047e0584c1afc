"""Read-only checks of the cluster and services before any write, as :class:`Check` rows.

:class:`Check` is the product's one check result: preflight's rows and phase 88's end-to-end checks
are both made of it, and the faces show both the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from thinkube_devpi.installer.kube import KubeError

if TYPE_CHECKING:
    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.kube import Kube


MARKS = {True: "ok", False: "FAIL", None: "--"}


@dataclass(frozen=True)
class Check:
    """One check's result: what was looked at, whether it held, what was found.

    ``expected`` is set when the check compares what it found with a known answer (phase 88's);
    ``hint`` says what to do when it failed.
    """

    name: str
    ok: bool | None  # None: could not be checked (plan mode)
    detail: str  # what was found
    hint: str = ""
    expected: str = ""

    @property
    def mark(self) -> str:
        return MARKS[self.ok]

    @property
    def text(self) -> str:
        """The check and its finding, e.g. ``API host answers /+api: expected 200, got 302``."""
        if self.expected:
            return f"{self.name}: expected {self.expected}, got {self.detail}"
        return f"{self.name}: {self.detail}"

    @property
    def line(self) -> str:
        """The plain-text row: ``ok   name: ...``, ``FAIL name: ...`` or ``--   name: ...``."""
        return f"{self.mark:<4} {self.text}"


def _failed(label: str, exc: KubeError) -> Check:
    return Check(label, False, exc.message, hint=exc.hint or "Check the cluster connection and re-run.")


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
    """Cluster reachable, Argo and ArgoCD CRDs, the Gateway (or IngressClass) and the peer the
    NetworkPolicies admit, the wildcard Secret where it is used, Argo CD's tracking, Keycloak."""
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
        out += exposure_checks(kube, settings)
        out.append(argocd_tracking_check(kube, settings))
        out.append(storage_check(kube, settings))
    else:
        for name in ("Argo Workflows CRDs", "ArgoCD CRDs", "exposure", "gateway peer"):
            out.append(Check(name, None, "needs a cluster"))
    out.append(_issuer_check(settings, timeout))
    return out


def exposure_checks(kube: Kube, settings: Settings) -> list[Check]:
    """The Gateway (or IngressClass) the settings name, with what the cluster offers when it is
    missing; the peer the NetworkPolicies admit; the wildcard Secret only where it is used."""
    from thinkube_devpi.installer.phases.base import Context, PhaseError
    from thinkube_devpi.installer.phases.p80_exposure import ExposurePhase

    phase = ExposurePhase(Context(settings, kube=kube))
    out: list[Check] = []
    if settings.exposure == "gateway":
        ref_api, ref_kind = "gateway.networking.k8s.io/v1", "Gateway"
        name, ns = settings.gateway_name, settings.gateway_namespace
        label = f"Gateway {ns}/{name}"
    else:
        ref_api, ref_kind = "networking.k8s.io/v1", "IngressClass"
        name, ns = settings.ingress_class, None
        label = f"IngressClass {name}"
    check = _object_check(kube, label, ref_api, ref_kind, name, ns)
    if check.ok is False:
        try:
            offer = phase.detected_exposure()
        except KubeError as exc:
            offer = str(exc)
        check = dataclasses.replace(check, detail=f"{check.detail}. {offer}")  # keeps the hint
    elif check.ok and settings.exposure == "gateway":
        try:
            phase.check_gateway()
            listener = f", listener {settings.gateway_section}" if settings.gateway_section else ""
            check = Check(check.name, True, check.detail + listener)
        except PhaseError as exc:
            check = Check(check.name, False, f"{exc.message} {exc.hint}")
    out.append(check)
    if check.ok:
        try:
            phase.check_peer()
            peer = (
                "Cilium's ingress identity"
                if settings.ingress_peer == "cilium-ingress"
                else f"pods in {settings.ingress_peer_namespace}"
            )
            out.append(Check("gateway peer", True, f"{peer} may reach devpi"))
        except PhaseError as exc:
            out.append(Check("gateway peer", False, f"{exc.message} {exc.hint}"))
        except KubeError as exc:
            out.append(Check("gateway peer", False, str(exc)))
    if settings.exposure == "ingress" and not (settings.tls_cert_file and settings.tls_key_file):
        out.append(
            _object_check(
                kube,
                "wildcard TLS Secret",
                "v1",
                "Secret",
                settings.tls_source_name,
                settings.tls_secret_namespace,
            )
        )
    return out


def storage_check(kube: Kube, settings: Settings) -> Check:
    """The storage class the package data gets; a warning when it cannot apply fsGroup."""
    from thinkube_devpi.installer.phases.base import Context
    from thinkube_devpi.installer.phases.p20_storage import StoragePhase

    phase = StoragePhase(Context(settings, kube=kube))
    try:
        sc = phase.storage_class()
        warning = phase.fs_group_warning()
    except KubeError as exc:
        return _failed("storage class", exc)
    if sc is None:
        found = f"StorageClass {settings.storage_class} not found" if settings.storage_class else (
            "the cluster has no default StorageClass"
        )
        return Check(
            "storage class",
            False,
            found,
            hint="Set storage_class to one `kubectl get storageclass` lists.",
        )
    name = sc["metadata"]["name"]
    return Check("storage class", True, f"warning: {warning}" if warning else f"{name}")


def argocd_tracking_check(kube: Kube, settings: Settings) -> Check:
    """Which resource tracking the Argo CD in front of us uses. Nothing the installer applies
    itself carries the Application's instance label, so neither method prunes it."""
    from thinkube_devpi.installer.events import ObjectRef
    from thinkube_devpi.installer.phases.p70_deploy import argocd_tracking_method

    try:
        cm = kube.get(ObjectRef("v1", "ConfigMap", "argocd-cm", settings.argocd_namespace))
    except KubeError as exc:
        return _failed("Argo CD tracking", exc)
    method, why = argocd_tracking_method(cm, kube, settings.argocd_namespace)
    return Check("Argo CD tracking", True, f"{method} ({why})")


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

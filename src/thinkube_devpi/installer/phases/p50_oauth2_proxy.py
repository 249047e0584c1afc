"""Phase 50: OAuth2 Proxy as the dashboard's reverse proxy, signing people in with Keycloak.

Details that make oauth2-proxy refuse to start or answer differently than expected (DESIGN.md
section 6), each handled here:

- ``--email-domain`` is required even when groups decide: ``*`` plus ``--allowed-group``, or a
  domain (setting ``email_domain``, default ``*``).
- it listens on 127.0.0.1 unless told ``--http-address=0.0.0.0:4180``.
- without a session it shows its own sign-in page (403) unless ``--skip-provider-button=true``,
  which makes it a 302 to Keycloak.
- the cookie secret must decode to 16, 24 or 32 bytes: URL-safe base64 of 32 bytes (phase 40).
- list flags have plural environment names; no list value is passed through the environment.
- every thinkube app shares the cookie domain: devpi's cookie has its own name.
- with allowed groups the generic OIDC code asks for a ``groups`` scope, which Keycloak refuses
  unless a client scope of that name exists: the scope is set explicitly (the groups claim comes
  from phase 40's dedicated mapper instead).

No secret is in ``args``: client id/secret, cookie secret and Redis password come from
secretKeyRefs as ``OAUTH2_PROXY_*`` variables (never expanded into args). A pod-template annotation
follows both Secrets' data (a digest), so a rotated secret rolls the pods and a label does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from thinkube_devpi.installer.auth_checks import (
    CLIENT_ID,
    OIDC_SECRET,
    check_hosts,
    check_issuer,
)
from thinkube_devpi.installer.events import Emit, ObjectRef, State
from thinkube_devpi.installer.manifests import (
    container_security,
    deployment,
    deployment_available,
    deployment_progress,
    meta,
    pod_security,
    resources,
    secret_env,
    selector,
)
from thinkube_devpi.installer.phases.base import (
    Deferred,
    Desired,
    Phase,
    PhaseError,
    PhaseStatus,
    secret_data_version,
)

NAME = "oauth2-proxy"
VERSION = "v7.15.3"
IMAGE = f"quay.io/oauth2-proxy/oauth2-proxy:{VERSION}"
PORT = 4180
UID = 65532  # the distroless image's nonroot user
COOKIE_NAME = "__Secure-devpi-oauth2"
SECRET_VERSIONS = "thinkube-devpi/secret-versions"
CA_CONFIGMAP = "oauth2-proxy-keycloak-ca"
REDIS_SECRET = "ephemeral-redis-auth"  # phase 30
REDIS_SERVICE = "ephemeral-redis"
DEVPI_SERVICE = "devpi"
DEVPI_PORT = 3141


def upstream(namespace: str) -> str:
    return f"http://{DEVPI_SERVICE}.{namespace}.svc:{DEVPI_PORT}"


class OAuth2ProxyPhase(Phase):
    number = 50
    name = "oauth2-proxy"
    title = "OAuth2 Proxy in front of the dashboard"
    summary = (
        "Deployment + Service oauth2-proxy: Keycloak sign-in for the dashboard, sessions in Redis, "
        "upstream devpi."
    )

    @property
    def deployment_ref(self) -> ObjectRef:
        return ObjectRef("apps/v1", "Deployment", NAME, self.settings.namespace)

    # ------------------------------------------------------------ what it wants

    def args(self) -> list[str]:
        s = self.settings
        out = [
            "--provider=keycloak-oidc",
            f"--oidc-issuer-url={s.issuer}",
            f"--redirect-url=https://{s.dashboard}/oauth2/callback",
            f"--upstream={upstream(s.namespace)}",
            f"--http-address=0.0.0.0:{PORT}",
            "--reverse-proxy=true",
            "--skip-provider-button=true",
            "--code-challenge-method=S256",
            "--scope=openid email profile",
            f"--cookie-name={COOKIE_NAME}",
            f"--cookie-domain=.{s.effective_domain}",
            "--cookie-samesite=none",
            "--cookie-secure=true",
            "--cookie-httponly=true",
            "--session-store-type=redis",
            f"--redis-connection-url=redis://{REDIS_SERVICE}.{s.namespace}.svc:6379",
            f"--whitelist-domain={s.dashboard}",
            "--pass-host-header=true",
            "--silence-ping-logging=true",
            "--ping-path=/ping",
            "--ready-path=/ready",
        ]
        # with --reverse-proxy it would trust X-Forwarded-* from anyone; the NetworkPolicy lets
        # only the gateway in, and this says so to oauth2-proxy too
        out += [f"--trusted-proxy-ip={cidr}" for cidr in s.gateway_peer_cidrs]
        if s.allow_unverified_email:
            out.append("--insecure-oidc-allow-unverified-email=true")
        if s.allowed_groups:
            # groups decide; the e-mail domain must still be given ("*" lets any through it)
            out.append("--email-domain=*")
            out += [f"--allowed-group={g}" for g in s.allowed_groups]
        else:
            out.append(f"--email-domain={s.email_domain}")
        if s.keycloak_ca_file:
            out += [
                "--provider-ca-file=/etc/oauth2-proxy/ca/ca.crt",
                "--use-system-trust-store=true",
            ]
        return out

    def env(self) -> list[dict[str, Any]]:
        return [
            secret_env("OAUTH2_PROXY_CLIENT_ID", OIDC_SECRET, "client-id"),
            secret_env("OAUTH2_PROXY_CLIENT_SECRET", OIDC_SECRET, "client-secret"),
            secret_env("OAUTH2_PROXY_COOKIE_SECRET", OIDC_SECRET, "cookie-secret"),
            secret_env("OAUTH2_PROXY_REDIS_PASSWORD", REDIS_SECRET, "password"),
        ]

    def objects(self) -> list[Desired]:
        ns = self.settings.namespace
        out: list[Desired] = []
        if self.settings.keycloak_ca_file:
            out.append(self.ca_configmap())
        out += [
            Deferred(self.deployment_ref, self.deployment),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(NAME, ns),
                "spec": {
                    "selector": selector(NAME),
                    "ports": [
                        {"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}
                    ],
                },
            },
        ]
        return out

    def ca_configmap(self) -> dict[str, Any]:
        path = self.settings.keycloak_ca_file
        text = Path(path).read_text() if path and Path(path).is_file() else ""
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(CA_CONFIGMAP, self.settings.namespace),
            "data": {"ca.crt": text},
        }

    def _secret_versions(self) -> str:
        """Both Secrets' data digests: a new client or cookie secret or password rolls pods."""
        kube = self.ctx.kube
        if kube is None:
            return "set at apply"
        ns = self.settings.namespace
        parts = []
        for name in (OIDC_SECRET, REDIS_SECRET):
            live = kube.get(ObjectRef("v1", "Secret", name, ns))
            parts.append(secret_data_version(live))
        return ".".join(parts)

    def deployment(self) -> dict[str, Any]:
        ns = self.settings.namespace
        mounts: list[dict[str, Any]] = []
        volumes: list[dict[str, Any]] = []
        if self.settings.keycloak_ca_file:
            mounts.append(
                {"name": "keycloak-ca", "mountPath": "/etc/oauth2-proxy/ca", "readOnly": True}
            )
            volumes.append({"name": "keycloak-ca", "configMap": {"name": CA_CONFIGMAP}})
        container: dict[str, Any] = {
            "name": NAME,
            "image": IMAGE,
            "args": self.args(),
            "env": self.env(),
            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
            "livenessProbe": {
                "httpGet": {"path": "/ping", "port": "http"},
                "initialDelaySeconds": 5,
                "periodSeconds": 10,
                "timeoutSeconds": 2,
            },
            "readinessProbe": {
                "httpGet": {"path": "/ready", "port": "http"},
                "periodSeconds": 5,
                "timeoutSeconds": 2,
            },
            "resources": resources("20m", "32Mi", "500m", "128Mi"),
            "securityContext": container_security(),
        }
        if mounts:
            container["volumeMounts"] = mounts
        pod_spec: dict[str, Any] = {
            "automountServiceAccountToken": False,
            "securityContext": pod_security(UID),
            "containers": [container],
        }
        if volumes:
            pod_spec["volumes"] = volumes
        return deployment(
            NAME, ns, pod_spec, template_annotations={SECRET_VERSIONS: self._secret_versions()}
        )

    # ------------------------------------------------------------ checks, health

    def precheck(self) -> None:
        # the Secrets it checks for come from phases 30 and 40 of the same run
        check_issuer(self.settings)
        check_hosts(self.settings)

    def preflight(self) -> None:
        check_issuer(self.settings)
        check_hosts(self.settings)
        kube = self.ctx.require_kube()
        ns = self.settings.namespace
        for name, keys, phase in (
            (OIDC_SECRET, ("client-id", "client-secret", "cookie-secret"), "40 keycloak"),
            (REDIS_SECRET, ("password",), "30 redis"),
        ):
            live = kube.get(ObjectRef("v1", "Secret", name, ns))
            missing = [k for k in keys if k not in ((live or {}).get("data") or {})]
            if live is None or missing:
                what = "does not exist" if live is None else f"lacks {', '.join(missing)}"
                raise PhaseError(
                    f"Secret {ns}/{name} {what}: oauth2-proxy could not start.",
                    f"Apply phase {phase} first (`tk-devpi install apply --phase {phase.split()[1]}`).",
                )

    def health(self) -> PhaseStatus:
        live = self.ctx.require_kube().get(self.deployment_ref)
        progress = deployment_progress(live)
        if deployment_available(live):
            return PhaseStatus(State.HEALTHY, f"{NAME}: {progress}, client {CLIENT_ID}")
        return PhaseStatus(State.PROGRESSING, f"{NAME}: {progress}")

    def wait_ready(self, emit: Emit) -> None:
        self.wait_for(
            emit,
            self.deployment_ref,
            deployment_available,
            f"{self.deployment_ref} to be available",
        )

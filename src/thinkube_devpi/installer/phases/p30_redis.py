"""Phase 30: an ephemeral Redis for oauth2-proxy's sessions.

The password lives in a Secret. redis-server reads it from a config file mounted from that Secret
(never from its command line), and the probes authenticate through ``REDISCLI_AUTH`` from a
secretKeyRef. Only oauth2-proxy's pods may connect.
"""

from __future__ import annotations

from typing import Any

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
    Derived,
    Desired,
    Generated,
    Phase,
    PhaseStatus,
    SecretObject,
    secret_data_version,
)
from thinkube_devpi.secrets import Secret

NAME = "ephemeral-redis"
AUTH_SECRET = "ephemeral-redis-auth"
# Debian variant: the redis user is uid/gid 999
REDIS_IMAGE = "docker.io/library/redis:7.4.2-bookworm"
PORT = 6379
SECRET_VERSION = "thinkube-devpi/secret-version"


def redis_conf(values: dict[str, Secret]) -> str:
    # No persistence: sessions are ephemeral by design; a restart signs people in again.
    return "\n".join(
        [
            f"requirepass {values['password'].reveal()}",
            f"port {PORT}",
            "protected-mode no",
            'save ""',
            "appendonly no",
            "maxmemory 200mb",
            "maxmemory-policy volatile-lru",
            "",
        ]
    )


class RedisPhase(Phase):
    number = 30
    name = "redis"
    title = "Redis for oauth2-proxy sessions"
    summary = "Deployment + Service ephemeral-redis, password from a Secret, reachable only by oauth2-proxy."

    @property
    def deployment_ref(self) -> ObjectRef:
        return ObjectRef("apps/v1", "Deployment", NAME, self.settings.namespace)

    def secret(self) -> SecretObject:
        return SecretObject(
            AUTH_SECRET,
            self.settings.namespace,
            {
                "password": Generated(32),
                "redis.conf": Derived("derived from password", redis_conf),
            },
        )

    def objects(self) -> list[Desired]:
        ns = self.settings.namespace
        return [
            self.secret(),
            Deferred(self.deployment_ref, self.deployment),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(NAME, ns),
                "spec": {
                    "selector": selector(NAME),
                    "ports": [
                        {"name": "redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"}
                    ],
                },
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": meta(NAME, ns),
                "spec": {
                    "podSelector": {"matchLabels": selector(NAME)},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [{"podSelector": {"matchLabels": selector("oauth2-proxy")}}],
                            "ports": [{"protocol": "TCP", "port": PORT}],
                        }
                    ],
                },
            },
        ]

    def _secret_version(self) -> str:
        """A digest of the Secret's data: a new password rolls the pods, a new label does not."""
        kube = self.ctx.kube
        if kube is None:
            return "set at apply"
        live = kube.get(ObjectRef("v1", "Secret", AUTH_SECRET, self.settings.namespace))
        return "set at apply" if live is None else secret_data_version(live)

    def deployment(self) -> dict[str, Any]:
        ns = self.settings.namespace
        probe = {"exec": {"command": ["sh", "-c", "redis-cli ping | grep -q PONG"]}}
        pod_spec = {
            "automountServiceAccountToken": False,
            "securityContext": pod_security(999, fs_group=999),
            "containers": [
                {
                    "name": "redis",
                    "image": REDIS_IMAGE,
                    "command": ["redis-server", "/etc/redis/redis.conf"],
                    "ports": [{"name": "redis", "containerPort": PORT, "protocol": "TCP"}],
                    "env": [secret_env("REDISCLI_AUTH", AUTH_SECRET, "password")],
                    "readinessProbe": {
                        **probe,
                        "periodSeconds": 5,
                        "timeoutSeconds": 2,
                    },
                    "livenessProbe": {
                        **probe,
                        "initialDelaySeconds": 10,
                        "periodSeconds": 10,
                        "timeoutSeconds": 2,
                    },
                    "resources": resources("50m", "64Mi", "500m", "256Mi"),
                    "securityContext": container_security(),
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/redis", "readOnly": True},
                        {"name": "data", "mountPath": "/data"},
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "config",
                    "secret": {
                        "secretName": AUTH_SECRET,
                        "items": [{"key": "redis.conf", "path": "redis.conf"}],
                        "defaultMode": 0o440,
                    },
                },
                {"name": "data", "emptyDir": {"sizeLimit": "256Mi"}},
            ],
        }
        return deployment(
            NAME,
            ns,
            pod_spec,
            recreate=True,
            template_annotations={SECRET_VERSION: self._secret_version()},
        )

    def health(self) -> PhaseStatus:
        live = self.ctx.require_kube().get(self.deployment_ref)
        if deployment_available(live):
            return PhaseStatus(State.HEALTHY, f"{NAME}: {deployment_progress(live)}")
        return PhaseStatus(State.PROGRESSING, f"{NAME}: {deployment_progress(live)}")

    def wait_ready(self, emit: Emit) -> None:
        self.wait_for(
            emit,
            self.deployment_ref,
            deployment_available,
            f"{self.deployment_ref} to be available",
        )

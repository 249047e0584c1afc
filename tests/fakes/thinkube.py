"""A cluster shaped like a real thinkube, and the gateway controller's part in it.

Seeded as DESIGN.md section 6 "Real thinkube" says (read from thinkube's playbooks,
ansible/40_thinkube/core/infrastructure/gateway-api/10_deploy.yaml and inventory/group_vars):

- Envoy Gateway: GatewayClass ``eg`` (controller ``gateway.envoyproxy.io/gatewayclass-controller``),
  its controller and the proxy pods of ``thinkube-gateway`` in ``envoy-gateway-system``, labelled
  as Envoy Gateway labels them (``gateway.envoyproxy.io/owning-gateway-name`` ...);
- Gateway ``gateway-system/thinkube-gateway``: listeners ``http`` (80) and ``https`` (443,
  ``*.<domain>``, certificate ``gateway-tls-secret``), both ``allowedRoutes: All``, and the
  catch-all HTTP-to-HTTPS redirect route on ``http``;
- the wildcard certificate as Secret ``default/<domain with dots as dashes>-tls``;
- the default StorageClass ``k8s-hostpath`` (OpenEBS Rawfile CSI, ext4);
- Argo Workflows from its Helm chart (release ``argo-workflows`` in ``argo``): Deployment
  ``argo-workflows-workflow-controller`` labelled ``app.kubernetes.io/component:
  workflow-controller``; Argo CD 3.x (release ``argocd``) with its ``argocd-cm``;
- Cilium's CRDs (FakeKubeAPI(crds=THINKUBE_CRDS)); no ingress-nginx, no IngressClass at all.
"""

from __future__ import annotations

import base64
from typing import Any

from fakes.kube_api import FakeKubeAPI
from fakes.tls import shared_pki

THINKUBE_CRDS = ("argo", "argocd", "gateway", "cilium")
GW = "gateway.networking.k8s.io/v1"
EG_NAMESPACE = "envoy-gateway-system"
GATEWAY_NAMESPACE = "gateway-system"
GATEWAY = "thinkube-gateway"
ARGO_CONTROLLER = "argo-workflows-workflow-controller"
PROXY_LABELS = {
    "app.kubernetes.io/name": "envoy",
    "app.kubernetes.io/component": "proxy",
    "app.kubernetes.io/managed-by": "envoy-gateway",
    "gateway.envoyproxy.io/owning-gateway-name": GATEWAY,
    "gateway.envoyproxy.io/owning-gateway-namespace": GATEWAY_NAMESPACE,
}


def _ns(fake: FakeKubeAPI, name: str) -> None:
    if fake.get("v1", "Namespace", name) is None:
        fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def _deployment(
    fake: FakeKubeAPI, name: str, namespace: str, labels: dict[str, str], image: str
) -> None:
    fake.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(labels)},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {"containers": [{"name": "main", "image": image}]},
                },
            },
        }
    )
    fake.make_deployment_ready(namespace, name)


def wildcard_secret_name(domain: str) -> str:
    return f"{domain.replace('.', '-')}-tls"


def seed_thinkube(fake: FakeKubeAPI, domain: str = "example.com") -> None:
    for ns in ("default", EG_NAMESPACE, GATEWAY_NAMESPACE, "argo", "argocd", "keycloak"):
        _ns(fake, ns)
    cert, key = shared_pki().issue([f"*.{domain}", domain])
    tls = {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}
    for name, ns in ((wildcard_secret_name(domain), "default"), ("gateway-tls-secret", GATEWAY_NAMESPACE)):
        fake.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": name, "namespace": ns},
                "data": dict(tls),
            }
        )
    # Envoy Gateway: its controller and the Gateway's proxies
    _deployment(
        fake,
        "envoy-gateway",
        EG_NAMESPACE,
        {"app.kubernetes.io/name": "gateway-helm", "control-plane": "envoy-gateway"},
        "docker.io/envoyproxy/gateway:v1.8.0",
    )
    _deployment(
        fake,
        f"envoy-{GATEWAY_NAMESPACE}-{GATEWAY}-4a0b2c1d",
        EG_NAMESPACE,
        PROXY_LABELS,
        "docker.io/envoyproxy/envoy:distroless-v1.38.0",
    )
    fake.create(
        {
            "apiVersion": GW,
            "kind": "GatewayClass",
            "metadata": {"name": "eg"},
            "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"},
        }
    )
    all_routes = {"namespaces": {"from": "All"}}
    fake.create(
        {
            "apiVersion": GW,
            "kind": "Gateway",
            "metadata": {"name": GATEWAY, "namespace": GATEWAY_NAMESPACE},
            "spec": {
                "gatewayClassName": "eg",
                "listeners": [
                    {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": all_routes},
                    {
                        "name": "https",
                        "protocol": "HTTPS",
                        "port": 443,
                        "hostname": f"*.{domain}",
                        "tls": {
                            "mode": "Terminate",
                            "certificateRefs": [
                                {
                                    "kind": "Secret",
                                    "name": "gateway-tls-secret",
                                    "namespace": GATEWAY_NAMESPACE,
                                }
                            ],
                        },
                        "allowedRoutes": all_routes,
                    },
                ],
            },
        }
    )
    fake.patch_status(
        GW,
        "Gateway",
        GATEWAY,
        GATEWAY_NAMESPACE,
        {
            "addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
            "conditions": [_cond("Accepted", "True", "Accepted", "", 1), _cond("Programmed", "True", "Programmed", "", 1)],
        },
    )
    fake.create(
        {
            "apiVersion": GW,
            "kind": "HTTPRoute",
            "metadata": {"name": "http-to-https-redirect", "namespace": GATEWAY_NAMESPACE},
            "spec": {
                "parentRefs": [
                    {"name": GATEWAY, "namespace": GATEWAY_NAMESPACE, "sectionName": "http"}
                ],
                "rules": [
                    {
                        "filters": [
                            {
                                "type": "RequestRedirect",
                                "requestRedirect": {"scheme": "https", "statusCode": 301},
                            }
                        ]
                    }
                ],
            },
        }
    )
    # OpenEBS Rawfile CSI behind the default class (ext4 on a loop device: fsGroup applies)
    fake.create(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": "k8s-hostpath",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "rawfile.csi.openebs.io",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": True,
            "parameters": {"fsType": "ext4"},
        }
    )
    # Argo Workflows and Argo CD from their Helm charts
    _deployment(
        fake,
        ARGO_CONTROLLER,
        "argo",
        {
            "app.kubernetes.io/name": "argo-workflows-workflow-controller",
            "app.kubernetes.io/component": "workflow-controller",
            "app.kubernetes.io/instance": "argo-workflows",
        },
        "quay.io/argoproj/workflow-controller:v3.7.2",
    )
    _deployment(
        fake,
        "argocd-application-controller",
        "argocd",
        {
            "app.kubernetes.io/name": "argocd-application-controller",
            "app.kubernetes.io/component": "application-controller",
            "app.kubernetes.io/instance": "argocd",
        },
        "quay.io/argoproj/argocd:v3.1.8",
    )
    fake.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "argocd-cm", "namespace": "argocd"},
            "data": {"url": f"https://argocd.{domain}"},
        }
    )


def play_gateway(fake: FakeKubeAPI, namespace: str) -> None:
    """Envoy Gateway's part: report each HTTPRoute's status per parent, as its controller does.

    Accepted is False (NoMatchingParent) for a Gateway or listener that does not exist and
    (NotAllowedByListeners) where the listener's allowedRoutes refuse the namespace;
    ResolvedRefs is False (BackendNotFound) for a Service that does not exist.
    """
    for route in fake.list(GW, "HTTPRoute", namespace):
        parents = []
        gen = route["metadata"].get("generation", 1)
        for ref in route["spec"].get("parentRefs") or []:
            gw = fake.get(GW, "Gateway", ref["name"], ref.get("namespace", namespace))
            listeners = ((gw or {}).get("spec") or {}).get("listeners") or []
            section = ref.get("sectionName")
            chosen = [x for x in listeners if section in (None, x.get("name"))]
            if gw is None or not chosen:
                accepted = ("False", "NoMatchingParent", "no such Gateway or listener")
            elif not any(
                ((x.get("allowedRoutes") or {}).get("namespaces") or {}).get("from") == "All"
                or ref.get("namespace", namespace) == namespace
                for x in chosen
            ):
                accepted = ("False", "NotAllowedByListeners", "namespace not allowed")
            else:
                accepted = ("True", "Accepted", "Route is accepted")
            missing = [
                b["name"]
                for rule in route["spec"].get("rules") or []
                for b in rule.get("backendRefs") or []
                if fake.get("v1", "Service", b["name"], namespace) is None
            ]
            resolved = (
                ("False", "BackendNotFound", f"Service {namespace}/{missing[0]} not found")
                if missing
                else ("True", "ResolvedRefs", "Resolved all the Object references for the Route")
            )
            parents.append(
                {
                    "parentRef": {
                        "group": "gateway.networking.k8s.io",
                        "kind": "Gateway",
                        **{k: v for k, v in ref.items() if k in ("name", "namespace", "sectionName")},
                    },
                    "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
                    "conditions": [
                        _cond("Accepted", *accepted, gen),
                        _cond("ResolvedRefs", *resolved, gen),
                    ],
                }
            )
        if (route.get("status") or {}).get("parents") != parents:
            fake.patch_status(GW, "HTTPRoute", route["metadata"]["name"], namespace, {"parents": parents})


def _cond(kind: str, status: str, reason: str, message: str, gen: int) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": gen,
        "lastTransitionTime": "2026-12-01T00:00:00Z",
    }


class GatewayController:
    """Plays Envoy Gateway in a thread: route status follows the routes (``with`` block)."""

    def __init__(self, fake: FakeKubeAPI, namespace: str) -> None:
        import threading

        self.fake = fake
        self.namespace = namespace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="gateway")

    def _run(self) -> None:
        while not self._stop.wait(0.03):
            play_gateway(self.fake, self.namespace)

    def __enter__(self) -> GatewayController:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

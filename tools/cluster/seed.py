"""Shape a bare control plane like a thinkube cluster (DESIGN.md section 6, "Real thinkube").

- the projects' own CRDs, read from their Go modules: Gateway API (standard channel, with its CEL
  rules and its safe-upgrades ValidatingAdmissionPolicy), Argo Workflows, Argo CD
- namespaces argo, argocd, gateway-system, envoy-gateway-system, keycloak
- two kwok Nodes that take the pods (kwok gives them realistic status; no container runs)
- a default StorageClass served by tools/cluster/provisioner.py (a stand-in, not a storage driver)
- the wildcard TLS Secret default/<domain with dots as dashes>-tls
- GatewayClass `envoy-gateway` and Gateway gateway-system/thinkube-gateway with listeners http (80)
  and https (443, the wildcard certificate), both allowedRoutes All, as thinkube's playbooks make it
- the Gateway's proxy pods in envoy-gateway-system, labelled as Envoy Gateway labels them (a
  Deployment whose pods kwok runs: a stand-in, no proxy listens), so the installer finds its peer

It waits until the CRDs are Established, the Nodes Ready and the controller-manager has made the
`default` ServiceAccount, so a test may start right after.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kubeclient import Api, ApiError
from provisioner import PROVISIONER

MANAGER = "thinkube-test-bed"
NAMESPACES = ["argo", "argocd", "gateway-system", "envoy-gateway-system", "keycloak"]
NODES = ["kwok-node-0", "kwok-node-1"]
STORAGE_CLASS = "test-bed-hostpath"


def crd_documents(paths: list[Path]) -> Iterator[dict[str, Any]]:
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    for file in files:
        for doc in yaml.safe_load_all(file.read_text()):
            if doc and doc.get("kind") in (
                "CustomResourceDefinition",
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
            ):
                yield doc


def wait(what: str, check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"seed: {what} not ready after {seconds:.0f} s")
        time.sleep(0.2)


def established(api: Api, name: str) -> bool:
    crd = api.get("CustomResourceDefinition", name) or {}
    return any(
        c["type"] == "Established" and c["status"] == "True"
        for c in (crd.get("status") or {}).get("conditions", [])
    )


def node_ready(api: Api, name: str) -> bool:
    node = api.get("Node", name) or {}
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (node.get("status") or {}).get("conditions", [])
    )


def node(name: str) -> dict[str, Any]:
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"capacity": resources, "allocatable": resources},
    }


def envoy_proxy() -> dict[str, Any]:
    """The Deployment Envoy Gateway makes for gateway-system/thinkube-gateway, with its labels."""
    labels = {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/managed-by": "envoy-gateway",
        "gateway.envoyproxy.io/owning-gateway-name": "thinkube-gateway",
        "gateway.envoyproxy.io/owning-gateway-namespace": "gateway-system",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "envoy-gateway-system-thinkube-gateway",
            "namespace": "envoy-gateway-system",
            "labels": labels,
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "envoy", "image": "docker.io/envoyproxy/envoy:distroless-v1.36.2"}
                    ]
                },
            },
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--pki", required=True, type=Path)
    parser.add_argument("--crds", action="append", type=Path, default=[])
    args = parser.parse_args()
    api = Api(args.kubeconfig)
    t0 = time.monotonic()

    crds = []
    for doc in crd_documents(args.crds):
        api.apply(doc, MANAGER)
        if doc["kind"] == "CustomResourceDefinition":
            crds.append(doc["metadata"]["name"])
    print(f"applied {len(crds)} CRDs", flush=True)

    for ns in NAMESPACES:
        api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, MANAGER)
    for name in NODES:
        try:
            api.request("POST", api.path("Node"), node(name))
        except ApiError as exc:
            if exc.status != 409:
                raise
    api.apply(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
        MANAGER,
    )
    tls_name = args.domain.replace(".", "-") + "-tls"
    api.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": tls_name, "namespace": "default"},
            "data": {
                "tls.crt": base64.b64encode((args.pki / "wildcard.crt").read_bytes()).decode(),
                "tls.key": base64.b64encode((args.pki / "wildcard.key").read_bytes()).decode(),
            },
        },
        MANAGER,
    )

    for name in crds:
        wait(f"CRD {name}", lambda name=name: established(api, name))
    print(f"CRDs established after {time.monotonic() - t0:.1f} s", flush=True)

    gw = "gateway.networking.k8s.io/v1"
    api.apply(
        {
            "apiVersion": gw,
            "kind": "GatewayClass",
            "metadata": {"name": "envoy-gateway"},
            "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"},
        },
        MANAGER,
    )
    api.apply(
        {
            "apiVersion": gw,
            "kind": "ReferenceGrant",
            "metadata": {"name": "thinkube-gateway-wildcard-tls", "namespace": "default"},
            "spec": {
                "from": [
                    {
                        "group": "gateway.networking.k8s.io",
                        "kind": "Gateway",
                        "namespace": "gateway-system",
                    }
                ],
                "to": [{"group": "", "kind": "Secret", "name": tls_name}],
            },
        },
        MANAGER,
    )
    api.apply(
        {
            "apiVersion": gw,
            "kind": "Gateway",
            "metadata": {"name": "thinkube-gateway", "namespace": "gateway-system"},
            "spec": {
                "gatewayClassName": "envoy-gateway",
                "listeners": [
                    {
                        "name": "http",
                        "port": 80,
                        "protocol": "HTTP",
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    },
                    {
                        "name": "https",
                        "port": 443,
                        "protocol": "HTTPS",
                        "hostname": f"*.{args.domain}",
                        "tls": {
                            "mode": "Terminate",
                            "certificateRefs": [
                                {"kind": "Secret", "name": tls_name, "namespace": "default"}
                            ],
                        },
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    },
                ],
            },
        },
        MANAGER,
    )

    for name in NODES:
        wait(f"kwok Node {name}", lambda name=name: node_ready(api, name))
    proxy = envoy_proxy()
    api.request(
        "PATCH",
        "/apis/apps/v1/namespaces/envoy-gateway-system/deployments/"
        f"{proxy['metadata']['name']}?fieldManager={MANAGER}&force=true",
        proxy,
        "application/apply-patch+yaml",
    )
    wait(
        "the gateway's proxy pod (kwok gives it an address)",
        lambda: any(
            (p.get("status") or {}).get("podIP")
            for p in api.request(
                "GET",
                "/api/v1/namespaces/envoy-gateway-system/pods?labelSelector="
                "gateway.envoyproxy.io%2Fowning-gateway-name%3Dthinkube-gateway",
            )["items"]
        ),
    )
    wait(
        "the controller-manager (ServiceAccount default/default)",
        lambda: api.request("GET", "/api/v1/namespaces/default/serviceaccounts")["items"] != [],
    )
    print(f"seeded in {time.monotonic() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

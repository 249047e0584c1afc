"""A very small Kubernetes API client for the test bed's own helpers (seed.py, provisioner.py).

Standard library plus PyYAML only, so the helpers run before and apart from the project's code.
Every request has a timeout.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

TIMEOUT = 15.0

# kind -> (api prefix, plural, namespaced) for the kinds the helpers touch
RESOURCES: dict[str, tuple[str, str, bool]] = {
    "CustomResourceDefinition": (
        "/apis/apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        False,
    ),
    "ValidatingAdmissionPolicy": (
        "/apis/admissionregistration.k8s.io/v1",
        "validatingadmissionpolicies",
        False,
    ),
    "ValidatingAdmissionPolicyBinding": (
        "/apis/admissionregistration.k8s.io/v1",
        "validatingadmissionpolicybindings",
        False,
    ),
    "Namespace": ("/api/v1", "namespaces", False),
    "Node": ("/api/v1", "nodes", False),
    "Secret": ("/api/v1", "secrets", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "PersistentVolume": ("/api/v1", "persistentvolumes", False),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims", True),
    "StorageClass": ("/apis/storage.k8s.io/v1", "storageclasses", False),
    "GatewayClass": ("/apis/gateway.networking.k8s.io/v1", "gatewayclasses", False),
    "Gateway": ("/apis/gateway.networking.k8s.io/v1", "gateways", True),
    "ReferenceGrant": ("/apis/gateway.networking.k8s.io/v1", "referencegrants", True),
}


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status


class Api:
    def __init__(self, kubeconfig: str | Path) -> None:
        conf = yaml.safe_load(Path(kubeconfig).read_text())
        cluster = conf["clusters"][0]["cluster"]
        user = conf["users"][0]["user"]
        self.server = cluster["server"].rstrip("/")
        if not self.server.startswith("https://"):
            raise ValueError(f"kubeconfig server {self.server!r}: only https:// is allowed")
        self.ssl = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.ssl.load_cert_chain(user["client-certificate"], user["client-key"])

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)  # noqa: S310 (https only)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=TIMEOUT) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, method, path, exc.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else None

    def path(self, kind: str, name: str = "", namespace: str = "") -> str:
        prefix, plural, namespaced = RESOURCES[kind]
        ns = f"/namespaces/{namespace}" if namespaced and namespace else ""
        return f"{prefix}{ns}/{plural}" + (f"/{name}" if name else "")

    def apply(self, obj: dict[str, Any], manager: str) -> Any:
        """Server-side apply (creates a missing object)."""
        meta = obj["metadata"]
        path = self.path(obj["kind"], meta["name"], meta.get("namespace", ""))
        return self.request(
            "PATCH",
            f"{path}?fieldManager={manager}&force=true",
            obj,
            "application/apply-patch+yaml",
        )

    def get(self, kind: str, name: str, namespace: str = "") -> Any:
        try:
            return self.request("GET", self.path(kind, name, namespace))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str = "") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.request("GET", self.path(kind, "", namespace))["items"]
        return items

"""The test side of the real control plane (scripts/cluster.sh): start it, read it, count requests.

``RealCluster`` is what the tests hold: the admin kubeconfig the installer uses (user
``thinkube-admin``), a separate client for the test's own reads and the stand-ins' writes (user
``test-harness``, which the API server's audit policy does not record), and the audit log, which
records every request of ``thinkube-admin`` as the API server saw it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.dynamic.exceptions import NotFoundError
from kubernetes.dynamic.resource import Resource, ResourceList

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
MANAGED_BY = "app.kubernetes.io/managed-by=thinkube-devpi"
# the environment before the tests' HOME isolation: the Go caches are the user's
ORIGINAL_ENV = dict(os.environ)


def cluster_dir() -> Path:
    return Path(os.environ.get("CLUSTER_DIR") or ROOT / ".cluster")


def binaries_present() -> bool:
    return all(os.access(cluster_dir() / "bin" / b, os.X_OK) for b in BINARIES)


def run_script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**ORIGINAL_ENV, "CLUSTER_DIR": str(cluster_dir()), "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """An exclusive lock shared by the pytest-xdist workers (and any other process)."""
    path = cluster_dir() / f".{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


STARTED_BY_PYTEST = "started-by-pytest"


def ensure_up() -> str:
    """Start the control plane unless it runs; returns what `up` said. Marks a start by pytest
    so that the session's end (tests/conftest.py) stops it again."""
    with file_lock("up"):
        status = run_script("up", timeout=600)
        if status.returncode != 0:
            raise RuntimeError(f"scripts/cluster.sh up failed:\n{status.stdout}\n{status.stderr}")
        if "already up" not in status.stdout:
            (cluster_dir() / "run" / STARTED_BY_PYTEST).write_text(str(os.getpid()))
        return status.stdout


def down_if_started_by_pytest() -> None:
    marker = cluster_dir() / "run" / STARTED_BY_PYTEST
    if marker.exists():
        run_script("down", timeout=120)
        marker.unlink(missing_ok=True)


@dataclass
class AuditEvent:
    verb: str
    uri: str
    code: int
    resource: str
    namespace: str
    name: str
    subresource: str

    @property
    def path(self) -> str:
        return self.uri.split("?", 1)[0]

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS


class RealCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.kubeconfig = root / "kubeconfig"  # the admin's: what the installer is given
        self.harness_kubeconfig = root / "run" / "harness.kubeconfig"
        self.audit_log = root / "run" / "audit.log"
        self._offset = 0
        api = config.new_client_from_config(config_file=str(self.harness_kubeconfig))
        api.configuration.retries = 3
        self.api = api
        self.dyn = dynamic.DynamicClient(
            api, cache_file=str(root / "run" / f"discovery-{os.getpid()}.json")
        )
        self.core = client.CoreV1Api(api)

    # -- the installer's requests, as the API server recorded them

    def clear_log(self) -> None:
        self._offset = self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def requests(self, settle: float = 0.5) -> list[AuditEvent]:
        """Requests of the admin (the installer) since clear_log(), from the audit log."""
        deadline = time.monotonic() + 10
        size = -1
        while time.monotonic() < deadline:  # the last events may still be on their way
            time.sleep(settle)
            new = self.audit_log.stat().st_size
            if new == size:
                break
            size = new
        out = []
        with self.audit_log.open("rb") as fh:
            fh.seek(self._offset)
            for line in fh:
                event = json.loads(line)
                if event.get("stage") != "ResponseComplete":
                    continue
                ref = event.get("objectRef") or {}
                out.append(
                    AuditEvent(
                        verb=event["verb"],
                        uri=event["requestURI"],
                        code=(event.get("responseStatus") or {}).get("code", 0),
                        resource=ref.get("resource", ""),
                        namespace=ref.get("namespace", ""),
                        name=ref.get("name", ""),
                        subresource=ref.get("subresource", ""),
                    )
                )
        return out

    def writes(self) -> list[AuditEvent]:
        return [e for e in self.requests() if e.is_write]

    # -- the harness's own reads and the stand-ins' writes

    def resource(self, api_version: str, kind: str) -> Any:
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        try:
            obj = self.resource(api_version, kind).get(name=name, namespace=namespace)
        except NotFoundError:
            return None
        result: dict[str, Any] = obj.to_dict()
        return result

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        items = self.resource(api_version, kind).get(namespace=namespace, **kw).to_dict()["items"]
        return list(items)

    def apply(self, obj: dict[str, Any], manager: str) -> dict[str, Any]:
        meta = obj["metadata"]
        result: dict[str, Any] = (
            self.resource(obj["apiVersion"], obj["kind"])
            .server_side_apply(
                body=obj,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=manager,
                force_conflicts=True,
            )
            .to_dict()
        )
        return result

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        result: dict[str, Any] = (
            self.resource(obj["apiVersion"], obj["kind"])
            .create(body=obj, namespace=meta.get("namespace"))
            .to_dict()
        )
        return result

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: dict[str, Any]
    ) -> dict[str, Any]:
        res = self.resource(api_version, kind)
        # Argo's CRDs have no status subresource: its controller writes status with the object
        target = res.subresources.get("status", res)
        result: dict[str, Any] = target.patch(
            body={"status": status},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        ).to_dict()
        return result

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        with contextlib.suppress(NotFoundError):
            self.resource(api_version, kind).delete(name=name, namespace=namespace)

    def listable(self) -> list[Any]:
        """Every namespaced or cluster resource type that can be listed (no subresources)."""
        out = []
        for res in self.dyn.resources.search():
            if isinstance(res, ResourceList) or not isinstance(res, Resource):
                continue
            if "/" in (res.name or "/") or "list" not in (res.verbs or []):
                continue
            if res.kind in ("Event", "CustomResourceDefinition", "APIService"):
                continue
            if getattr(res, "preferred", True) is False:
                continue
            out.append(res)
        return out

    def ours(self) -> dict[str, tuple[str, int]]:
        """Every object labelled as ours: 'Kind ns/name' -> (resourceVersion, generation)."""
        out: dict[str, tuple[str, int]] = {}
        seen: set[tuple[str, str]] = set()
        for res in self.listable():
            if (res.group, res.kind) in seen:
                continue
            seen.add((res.group, res.kind))
            for obj in res.get(label_selector=MANAGED_BY).to_dict()["items"]:
                meta = obj["metadata"]
                key = f"{res.kind} {meta.get('namespace') or ''}/{meta['name']}"
                out[key] = (meta["resourceVersion"], meta.get("generation", 0))
        return out

    def wait(self, what: str, check: Any, timeout: float = 60, interval: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not so after {timeout:.0f} s")
            time.sleep(interval)

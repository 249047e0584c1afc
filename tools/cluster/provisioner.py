"""The test bed's stand-in for a volume provisioner (it is NOT a real storage driver).

A real thinkube cluster has a CSI driver behind its default StorageClass. Here no node exists to
mount anything, so this loop plays the external provisioner for the StorageClass whose
`provisioner` is PROVISIONER: for each PersistentVolumeClaim that kube-controller-manager's binder
marks with `volume.kubernetes.io/storage-provisioner: PROVISIONER`, it creates a PersistentVolume
(a hostPath under --root, with the claim's size and access modes, pre-bound by claimRef); the real
binder in kube-controller-manager then binds the two. A Released volume of ours is deleted, as the
Delete reclaim policy asks.

    python3 tools/cluster/provisioner.py --kubeconfig K --root DIR
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kubeclient import Api, ApiError

PROVISIONER = "test-bed.thinkube-devpi.io/hostpath"
ANNOTATION = "volume.kubernetes.io/storage-provisioner"


def provision(api: Api, root: Path, pvc: dict[str, Any]) -> None:
    meta, spec = pvc["metadata"], pvc["spec"]
    name = f"pvc-{meta['uid']}"
    if api.get("PersistentVolume", name) is not None:
        return
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": spec.get("storageClassName") or "",
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }
    try:
        api.request("POST", api.path("PersistentVolume"), pv)
        print(f"provisioned {name} for {meta['namespace']}/{meta['name']}", flush=True)
    except ApiError as exc:
        if exc.status != 409:
            raise


def reclaim(api: Api, root: Path, pv: dict[str, Any]) -> None:
    meta = pv["metadata"]
    if (meta.get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
        return
    if (pv.get("status") or {}).get("phase") != "Released":
        return
    try:
        api.request("DELETE", api.path("PersistentVolume", meta["name"]))
    except ApiError as exc:
        if exc.status != 404:
            raise
    shutil.rmtree(root / meta["name"], ignore_errors=True)
    print(f"deleted released {meta['name']}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--interval", type=float, default=0.3)
    args = parser.parse_args()
    stop = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    api = Api(args.kubeconfig)
    while not stop:
        try:
            for pvc in api.list("PersistentVolumeClaim"):
                annotations = pvc["metadata"].get("annotations") or {}
                if (
                    (pvc.get("status") or {}).get("phase") == "Pending"
                    and annotations.get(ANNOTATION) == PROVISIONER
                    and not pvc["spec"].get("volumeName")
                ):
                    provision(api, args.root, pvc)
            for pv in api.list("PersistentVolume"):
                reclaim(api, args.root, pv)
        except (OSError, ApiError) as exc:  # the API server may be starting or stopping
            print(f"provisioner: {exc}", file=sys.stderr, flush=True)
        time.sleep(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What real API servers and kubeconfigs do that a naive client trips over (issue 12, item 10).

- the server stores quantities canonically (the fake does it as kube-apiserver does: ``5120Mi``
  comes back as ``5Gi``): a converged install must not show "differs from the plan";
- ``KUBECONFIG`` may list several files, merged as kubectl merges them;
- an HA API server answers a lagging watch with 504 "Too large resource version", which a
  wait must survive as it survives 410.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import yaml

from fakes.controllers import Controllers
from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import ObjectRef, State
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context
from thinkube_devpi.installer.phases.p10_namespace import NamespacePhase
from thinkube_devpi.installer.phases.p20_storage import StoragePhase


def test_a_quantity_the_server_rewrote_is_no_difference(
    fake_kube: FakeKubeAPI, kube: Kube, controllers: Controllers
) -> None:
    settings = dataclasses.replace(Settings(domain="example.com").validate(), storage_size="5120Mi")
    ctx = Context(settings, kube, wait_timeout=10)
    NamespacePhase(ctx).apply(lambda e: None)
    StoragePhase(ctx).apply(lambda e: None)
    live = fake_kube.get("v1", "PersistentVolumeClaim", "devpi-data-pvc", "devpi")
    assert live["spec"]["resources"]["requests"]["storage"] == "5Gi"  # as a real server keeps it
    status = StoragePhase(ctx).status()
    assert status.state is State.HEALTHY, status.reason
    assert all(i.action == "unchanged" for i in StoragePhase(ctx).plan().items)
    # a real change still shows
    bigger = dataclasses.replace(settings, storage_size="6Gi")
    assert "differs" in StoragePhase(Context(bigger, kube)).status().reason


def test_every_file_of_a_multi_path_kubeconfig_counts(
    fake_kube: FakeKubeAPI, tmp_path: Path, monkeypatch
) -> None:
    full = yaml.safe_load(fake_kube.write_kubeconfig(tmp_path / "fake.yaml").read_text())
    # clusters and users in one file, the context and the current context in another
    (tmp_path / "creds.yaml").write_text(
        yaml.safe_dump({**full, "contexts": [], "current-context": ""})
    )
    (tmp_path / "ctx.yaml").write_text(
        yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
             "contexts": full["contexts"], "current-context": full["current-context"]}
        )
    )
    monkeypatch.setenv(
        "KUBECONFIG", f"{tmp_path / 'missing.yaml'}:{tmp_path / 'creds.yaml'}:{tmp_path / 'ctx.yaml'}"
    )
    kube = Kube.connect(cache_dir=tmp_path / "cache")
    assert kube.get(ObjectRef("v1", "Namespace", "default")) is not None


def test_a_wait_survives_a_lagging_server_504(
    fake_kube: FakeKubeAPI, kube: Kube
) -> None:
    fake_kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "namespace": "default"},
         "data": {"ready": "no"}}
    )
    fake_kube.fail(
        "WATCH", r"/configmaps$", status=504, reason="Timeout",
        message="Too large resource version: 99999, current: 12", times=2,
    )

    def later() -> None:
        time.sleep(0.5)
        obj = fake_kube.get("v1", "ConfigMap", "m", "default")
        obj["data"] = {"ready": "yes"}
        fake_kube.delete("v1", "ConfigMap", "m", "default")
        fake_kube.create({k: v for k, v in obj.items() if k in ("apiVersion", "kind", "data")}
                         | {"metadata": {"name": "m", "namespace": "default"}})

    threading.Thread(target=later, daemon=True).start()
    got = kube.wait_until(
        ObjectRef("v1", "ConfigMap", "m", "default"),
        lambda o: (o or {}).get("data", {}).get("ready") == "yes",
        what="the ConfigMap",
        timeout=10,
    )
    assert got["data"]["ready"] == "yes"
    watches = [r for r in fake_kube.requests if r.watch and r.path.endswith("/configmaps")]
    assert len(watches) >= 3  # two refused with 504, then one that saw the change

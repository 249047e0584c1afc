"""Every object the plan makes is valid for Kubernetes and consistent with the others."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from thinkube_devpi.config import Settings
from thinkube_devpi.installer.kube import with_common_labels
from thinkube_devpi.installer.phases import build
from thinkube_devpi.installer.phases.base import Context, SecretObject, realize
from thinkube_devpi.secrets import Secret

VERSIONS = ["1.31", kubernetes_validate.latest_version()]
BUILTIN_GROUPS = (
    "v1",
    "apps/",
    "batch/",
    "networking.k8s.io/",
    "rbac.authorization.k8s.io/",
    "policy/",
)


def planned_objects(settings: Settings) -> list[dict[str, Any]]:
    ctx = Context(settings)
    out = []
    for phase in build(ctx):
        if not phase.needs_cluster:
            continue
        for desired in phase.objects():
            obj = realize(desired)
            if isinstance(obj, SecretObject):
                # values come from the cluster or Keycloak at apply time: shape is what counts here
                obj = obj.manifest({key: Secret("placeholder-value") for key in obj.keys})
            out.append(with_common_labels(obj))
    return out


SETTINGS = {
    "defaults": Settings(domain="example.com"),
    "gateway": Settings(
        domain="example.org", exposure="gateway", storage_class="fast", storage_size="20Gi"
    ),
}


@pytest.fixture(params=list(SETTINGS))
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return planned_objects(SETTINGS[request.param].validate())


@pytest.mark.parametrize("version", VERSIONS)
def test_every_builtin_object_passes_strict_validation(
    objects: list[dict[str, Any]], version: str
) -> None:
    checked = 0
    for obj in objects:
        if obj["apiVersion"].startswith(BUILTIN_GROUPS):
            kubernetes_validate.validate(obj, version, strict=True)
            checked += 1
    assert checked >= 12


def test_a_wrong_object_fails_the_same_check() -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "x"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "5Gi"}},
            "sise": 1,
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.31", strict=True)


def _pods(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(owner, pod template) for every workload."""
    out = []
    for obj in objects:
        template = (obj.get("spec") or {}).get("template")
        if obj["kind"] in ("Deployment", "Job", "StatefulSet") and template:
            out.append((obj, template))
    return out


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_services_select_pods_and_their_ports(objects: list[dict[str, Any]]) -> None:
    pods = _pods(objects)
    for svc in (o for o in objects if o["kind"] == "Service"):
        targets = [t for _, t in pods if _matches(svc["spec"]["selector"], t["metadata"]["labels"])]
        if not targets:  # the devpi Service's pods live in the deployment repository (phase 60)
            assert svc["metadata"]["name"] == "devpi", svc["metadata"]["name"]
            continue
        port_names = {
            p.get("name")
            for t in targets
            for c in t["spec"]["containers"]
            for p in c.get("ports", [])
        }
        port_numbers = {
            p["containerPort"]
            for t in targets
            for c in t["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in port_names | port_numbers, (
                f"{svc['metadata']['name']}: no container port {target}"
            )


def test_workload_selectors_match_their_templates(objects: list[dict[str, Any]]) -> None:
    for owner, template in _pods(objects):
        if owner["kind"] == "Deployment":
            assert _matches(
                owner["spec"]["selector"]["matchLabels"], template["metadata"]["labels"]
            )


def test_every_secret_key_ref_names_a_planned_secret_and_key(objects: list[dict[str, Any]]) -> None:
    secrets = {
        (o["metadata"]["name"]): set(o.get("data", {})) for o in objects if o["kind"] == "Secret"
    }
    refs = 0
    for _, template in _pods(objects):
        spec = template["spec"]
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for env in c.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    refs += 1
                    assert ref["key"] in secrets.get(ref["name"], set()), f"{ref} is not planned"
        for vol in spec.get("volumes", []):
            if "secret" in vol:
                name = vol["secret"]["secretName"]
                assert name in secrets, f"volume {vol['name']}: Secret {name} is not planned"
                for item in vol["secret"].get("items", []):
                    assert item["key"] in secrets[name]
    assert refs >= 1


def test_network_policies_select_planned_pods(objects: list[dict[str, Any]]) -> None:
    pods = _pods(objects)
    for pol in (o for o in objects if o["kind"] == "NetworkPolicy"):
        sel = pol["spec"]["podSelector"].get("matchLabels", {})
        if pol["metadata"]["name"] == "devpi":
            continue  # devpi's pods come from the deployment repository (phase 60)
        assert any(_matches(sel, t["metadata"]["labels"]) for _, t in pods), pol["metadata"]["name"]


def test_pods_are_non_root_pinned_and_bounded(objects: list[dict[str, Any]]) -> None:
    for owner, template in _pods(objects):
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, owner["metadata"]["name"]
        for c in spec["containers"] + spec.get("initContainers", []):
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["resources"]["requests"] and c["resources"]["limits"]
            image = c["image"]
            assert not image.endswith(":latest") and (
                ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image
            ), image
            assert not any("$(" in a for a in c.get("command", []) + c.get("args", [])), (
                "no $(VAR) expansion in argv"
            )

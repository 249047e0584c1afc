"""The Argo objects against hera's generated models (Argo Workflows' published schema).

hera's models check types but let unknown fields through: a round trip
(``model_validate`` then ``model_dump(by_alias=True, exclude_unset=True)``) exposes them.
hera follows Argo 4.0 (``schedules`` required on a CronWorkflow).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hera.workflows.models import CronWorkflow, Workflow, WorkflowTemplate
from pydantic import ValidationError

from thinkube_devpi.config import Settings
from thinkube_devpi.installer.argo_build import build_workflow, cron_workflow, workflow_template
from thinkube_devpi.installer.kube import with_common_labels

MODELS = {"WorkflowTemplate": WorkflowTemplate, "CronWorkflow": CronWorkflow, "Workflow": Workflow}


def check(obj: dict[str, Any]) -> None:
    model = MODELS[obj["kind"]]
    parsed = model.model_validate(obj)
    back = parsed.model_dump(by_alias=True, exclude_unset=True)
    assert _strip(back) == _strip(obj), "unknown or dropped fields"


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


@pytest.fixture
def objs(build_settings: Settings) -> list[dict[str, Any]]:
    return [with_common_labels(workflow_template(build_settings)), with_common_labels(cron_workflow(build_settings)),
            with_common_labels(build_workflow(build_settings))]


def test_argo_objects_match_the_published_models(objs: list[dict[str, Any]]) -> None:
    for obj in objs:
        check(obj)


def test_a_wrong_object_of_each_kind_is_rejected(objs: list[dict[str, Any]]) -> None:
    wft, cron, wf = (copy.deepcopy(o) for o in objs)
    wft["spec"]["templates"][0]["stepz"] = wft["spec"]["templates"][0].pop("steps")  # unknown field
    with pytest.raises((AssertionError, ValidationError)):
        check(wft)
    bad_type = copy.deepcopy(objs[0])
    bad_type["spec"]["activeDeadlineSeconds"] = {"hours": 1}
    with pytest.raises(ValidationError):
        check(bad_type)
    del cron["spec"]["schedules"]  # required from Argo 4.0
    with pytest.raises(ValidationError):
        check(cron)
    wf["spec"]["workflowTemplateRef"] = "devpi-build"  # an object, not a string
    with pytest.raises(ValidationError):
        check(wf)


def test_no_blind_host_keys_and_no_secret_in_args(objs: list[dict[str, Any]]) -> None:
    import json

    text = json.dumps(objs)
    assert "StrictHostKeyChecking=no" not in text and "insecureIgnoreHostKey" not in text
    assert ":latest" not in text
    wft = objs[0]
    for t in wft["spec"]["templates"]:
        for c in [t.get("container"), t.get("script"), *(t.get("initContainers") or [])]:
            for e in (c or {}).get("env", []):
                assert "valueFrom" not in e  # secrets arrive as mounted files only
    build = {t["name"]: t for t in wft["spec"]["templates"]}["build"]
    assert build["container"]["image"].startswith("ghcr.io/osscontainertools/kaniko:") and "@sha256:" in build["container"]["image"]
    mounts = {m["mountPath"] for m in build["container"]["volumeMounts"]}
    assert "/kaniko/.docker" in mounts
    vol = {v["name"]: v for v in wft["spec"]["volumes"]}["docker-config"]["secret"]
    assert vol["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]

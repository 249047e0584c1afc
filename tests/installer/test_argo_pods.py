"""Build and monitor pods as Argo's controller makes them from our objects (issue 12, items 1, 8).

The pods come from :mod:`fakes.argo_pods`, Argo's own rule for ServiceAccounts and tokens applied
to the WorkflowTemplate, the installer's Workflow and the CronWorkflow the product renders, with
the ServiceAccounts, token Secret, Roles and RoleBindings phase 10 plans. Argo's ``init`` and
``wait`` containers must reach the API (else every step ends in Error); nothing that runs the
repository's code (the git steps, the clone, Kaniko with the Dockerfile) may hold a token that can
create Workflows or read Secrets.
"""

from __future__ import annotations

import pytest

from fakes.argo_pods import ArgoRefused, Cluster, allowed, build_pod, exec_spec, token_account
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.argo_build import build_workflow, cron_workflow, workflow_template
from thinkube_devpi.installer.phases.base import Context, realize
from thinkube_devpi.installer.phases.p10_namespace import (
    EXECUTOR_SA,
    EXECUTOR_TOKEN,
    KANIKO_SA,
    NamespacePhase,
)

STEPS = ("resolve", "build", "bump")
# what runs code from the deployment repository (or git against it) in each step's pod
REPO_CODE = {"resolve": ["main"], "build": ["clone", "main"], "bump": ["main"]}


def planned(settings: Settings) -> list[dict]:
    objs = [realize(o) for o in NamespacePhase(Context(settings)).objects()]
    return [o for o in objs if isinstance(o, dict)]


def runs(settings: Settings) -> dict[str, dict]:
    """The spec each kind of run executes: the installer's Workflow and the monitor's."""
    wft = workflow_template(settings)
    installer_wf = build_workflow(settings)
    cron = cron_workflow(settings)
    return {
        "WorkflowTemplate alone": exec_spec({"workflowTemplateRef": {"name": "x"}}, wft),
        "installer Workflow": exec_spec(installer_wf["spec"], wft),
        "CronWorkflow": exec_spec(cron["spec"]["workflowSpec"], wft),
    }


@pytest.mark.parametrize("run", ["WorkflowTemplate alone", "installer Workflow", "CronWorkflow"])
@pytest.mark.parametrize("step", STEPS)
def test_argo_containers_get_a_token_and_repository_code_none(
    settings: Settings, run: str, step: str
) -> None:
    objects = planned(settings)
    cluster = Cluster.of(objects)
    pod = build_pod(settings.argo_namespace, runs(settings)[run], step, cluster)
    # Argo's own containers report the step's outputs through the API: they need a token
    assert token_account(pod, "init", cluster) == EXECUTOR_SA
    assert token_account(pod, "wait", cluster) == EXECUTOR_SA
    # the containers running repository code get none at all
    for name in REPO_CODE[step]:
        assert token_account(pod, name, cluster) is None, f"{step}/{name} can reach the API"
    assert pod["spec"]["serviceAccountName"] == KANIKO_SA


def test_executor_token_secret_is_the_one_argo_looks_for(settings: Settings) -> None:
    objects = planned(settings)
    cluster = Cluster.of(objects)
    assert cluster.token_secret_name(settings.argo_namespace, EXECUTOR_SA) == EXECUTOR_TOKEN
    assert cluster.token_owner(settings.argo_namespace, EXECUTOR_TOKEN) == EXECUTOR_SA


def test_executor_account_has_argos_documented_minimum(settings: Settings) -> None:
    objects = planned(settings)
    ns = settings.argo_namespace
    for verb in ("create", "patch"):
        assert allowed(objects, ns, EXECUTOR_SA, verb, "argoproj.io", "workflowtaskresults")


@pytest.mark.parametrize(
    ("verb", "group", "resource"),
    [
        ("create", "argoproj.io", "workflows"),
        ("create", "argoproj.io", "cronworkflows"),
        ("update", "argoproj.io", "workflowtemplates"),
        ("get", "", "secrets"),
        ("list", "", "secrets"),
        ("create", "", "pods"),
    ],
)
def test_no_account_in_a_build_pod_may_create_workflows_or_read_secrets(
    settings: Settings, verb: str, group: str, resource: str
) -> None:
    """A Workflow may name any ServiceAccount of the namespace: so none of the accounts whose
    token sits in a build pod (the pod's own, the executor's) may create one or read a Secret."""
    objects = planned(settings)
    cluster = Cluster.of(objects)
    holders: set[str] = {KANIKO_SA}
    for spec in runs(settings).values():
        for step in STEPS:
            pod = build_pod(settings.argo_namespace, spec, step, cluster)
            for c in [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]:
                who = token_account(pod, c["name"], cluster)
                if who:
                    holders.add(who)
    assert holders == {KANIKO_SA, EXECUTOR_SA}
    for sa in holders:
        assert not allowed(objects, settings.argo_namespace, sa, verb, group, resource), sa


def test_the_double_sees_the_old_shape_fail(settings: Settings) -> None:
    """What issue 12 found: an account with automount false and a workflow that sets nothing
    gives init/wait no token; automount false without an executor account is refused."""
    objects = planned(settings)
    cluster = Cluster.of(objects)
    spec = workflow_template(settings)["spec"]
    old = {
        k: v for k, v in spec.items() if k not in ("automountServiceAccountToken", "executor")
    }
    pod = build_pod(settings.argo_namespace, old, "resolve", cluster)
    assert token_account(pod, "wait", cluster) is None
    with pytest.raises(ArgoRefused, match=r"executor\.serviceAccountName"):
        build_pod(
            settings.argo_namespace, {**old, "automountServiceAccountToken": False}, "bump", cluster
        )


def test_an_upgrade_removes_the_old_monitor_account_that_could_create_workflows(
    fake_kube, kube
) -> None:
    """Earlier releases gave devpi-repo-monitor a Role with `workflows: create`; phase 10 removes
    it (only when it is ours)."""
    from thinkube_devpi.installer.phases.p10_namespace import RETIRED_SA

    ours = {"app.kubernetes.io/managed-by": "thinkube-devpi", "app.kubernetes.io/part-of": "thinkube-devpi"}
    rbac = "rbac.authorization.k8s.io/v1"
    fake_kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": RETIRED_SA, "namespace": "argo", "labels": ours}})
    fake_kube.create({"apiVersion": rbac, "kind": "Role",
                      "metadata": {"name": RETIRED_SA, "namespace": "argo", "labels": ours},
                      "rules": [{"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]}]})
    fake_kube.create({"apiVersion": rbac, "kind": "RoleBinding",
                      "metadata": {"name": RETIRED_SA, "namespace": "argo", "labels": ours},
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RETIRED_SA},
                      "subjects": [{"kind": "ServiceAccount", "name": RETIRED_SA, "namespace": "argo"}]})
    settings = Settings(domain="example.com").validate()
    NamespacePhase(Context(settings, kube)).apply(lambda e: None)
    for api, kind in (("v1", "ServiceAccount"), (rbac, "Role"), (rbac, "RoleBinding")):
        assert fake_kube.get(api, kind, RETIRED_SA, "argo") is None, kind
    roles = [*fake_kube.list(rbac, "Role", "argo"), *fake_kube.list(rbac, "RoleBinding", "argo")]
    for sa in (KANIKO_SA, EXECUTOR_SA):
        assert not allowed(roles, "argo", sa, "create", "argoproj.io", "workflows")
    assert allowed(roles, "argo", EXECUTOR_SA, "patch", "argoproj.io", "workflowtaskresults")

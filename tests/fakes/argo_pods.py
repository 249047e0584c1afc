"""The pods Argo Workflows' controller would make for our workflows, and what Kubernetes then mounts.

A test double of two upstream rules, kept as close to their source as a few lines allow:

- argoproj/argo-workflows ``workflow/controller/workflowpod.go``, ``setupServiceAccount`` and
  ``newExecContainer``: the pod's ``serviceAccountName`` comes from the template, else the (joined)
  workflow spec; ``automountServiceAccountToken`` is set on the pod ONLY when the template or the
  workflow sets it to false; with ``executor.serviceAccountName`` Argo adds a volume
  ``exec-sa-token`` from that account's token Secret (``sa.secrets[0]``, else the annotation
  ``workflows.argoproj.io/service-account-token.name``, else ``<sa>.service-account-token``) and
  mounts it into its own ``init`` and ``wait`` containers only, at the standard token path; an
  automount of false without an executor account is refused ("executor.serviceAccountName must not
  be empty if automountServiceAccountToken is false").
- Kubernetes' ServiceAccount admission: when the pod does not set ``automountServiceAccountToken``,
  the account's own field decides (true when unset); a mounted token goes to every container that
  has no mount at the token path yet.

A Workflow from a ``workflowTemplateRef`` runs the template's spec joined with its own (the
Workflow's fields win), as Argo's ``JoinWorkflowSpec`` does; a CronWorkflow's Workflows carry its
``workflowSpec``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
EXEC_TOKEN_VOLUME = "exec-sa-token"
TOKEN_NAME_ANNOTATION = "workflows.argoproj.io/service-account-token.name"


class ArgoRefused(Exception):
    """The controller refuses to make the pod (the step ends in Error)."""


def _join(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _join(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def exec_spec(workflow_spec: JSON, template: JSON | None) -> JSON:
    """The spec a Workflow runs: its WorkflowTemplate's, joined with its own."""
    if template is None:
        return copy.deepcopy(workflow_spec)
    own = {k: v for k, v in workflow_spec.items() if k != "workflowTemplateRef"}
    return _join(template["spec"], own)


@dataclass
class Cluster:
    """The objects the pod rules look at: ServiceAccounts and Secrets by (namespace, name)."""

    accounts: dict[tuple[str, str], JSON] = field(default_factory=dict)
    secrets: dict[tuple[str, str], JSON] = field(default_factory=dict)

    @classmethod
    def of(cls, objects: list[JSON]) -> Cluster:
        c = cls()
        for o in objects:
            key = (o["metadata"].get("namespace", ""), o["metadata"]["name"])
            if o.get("kind") == "ServiceAccount":
                c.accounts[key] = o
            elif o.get("kind") == "Secret":
                c.secrets[key] = o
        return c

    def token_secret_name(self, namespace: str, sa: str) -> str:
        account = self.accounts.get((namespace, sa))
        if account is None:
            raise ArgoRefused(f'serviceaccounts "{sa}" not found')
        listed = account.get("secrets") or []
        if listed:
            return str(listed[0]["name"])
        annotations = account["metadata"].get("annotations") or {}
        return str(annotations.get(TOKEN_NAME_ANNOTATION) or f"{sa}.service-account-token")

    def token_owner(self, namespace: str, secret: str) -> str | None:
        """The account a service-account-token Secret gives a token of (None: no token in it)."""
        obj = self.secrets.get((namespace, secret))
        if obj is None or obj.get("type") != "kubernetes.io/service-account-token":
            return None
        sa = (obj["metadata"].get("annotations") or {}).get("kubernetes.io/service-account.name")
        return sa if sa and (namespace, sa) in self.accounts else None


def build_pod(namespace: str, spec: JSON, template_name: str, cluster: Cluster) -> JSON:
    """The pod the controller makes for one step (template) of a Workflow running ``spec``."""
    tmpl = next(t for t in spec["templates"] if t["name"] == template_name)
    main = copy.deepcopy(tmpl.get("container") or tmpl.get("script"))
    assert main is not None, f"template {template_name} has no container"
    main["name"] = "main"
    pod: JSON = {
        "metadata": {"namespace": namespace},
        "spec": {
            "volumes": copy.deepcopy(spec.get("volumes") or []),
            "initContainers": [
                {"name": "init", "volumeMounts": []},
                *copy.deepcopy(tmpl.get("initContainers") or []),
            ],
            "containers": [{"name": "wait", "volumeMounts": []}, main],
        },
    }
    # setupServiceAccount
    if tmpl.get("serviceAccountName"):
        pod["spec"]["serviceAccountName"] = tmpl["serviceAccountName"]
    elif spec.get("serviceAccountName"):
        pod["spec"]["serviceAccountName"] = spec["serviceAccountName"]
    automount = tmpl.get("automountServiceAccountToken")
    if automount is None:
        automount = spec.get("automountServiceAccountToken")
    if automount is False:
        pod["spec"]["automountServiceAccountToken"] = False
    executor = ((tmpl.get("executor") or {}).get("serviceAccountName")) or (
        (spec.get("executor") or {}).get("serviceAccountName")
    )
    if executor:
        secret = cluster.token_secret_name(namespace, executor)
        pod["spec"]["volumes"].append(
            {"name": EXEC_TOKEN_VOLUME, "secret": {"secretName": secret}}
        )
        # newExecContainer: Argo's own containers get the executor's token
        for c in (pod["spec"]["initContainers"][0], pod["spec"]["containers"][0]):
            c["volumeMounts"].append(
                {"name": EXEC_TOKEN_VOLUME, "mountPath": TOKEN_PATH, "readOnly": True}
            )
    elif automount is False:
        raise ArgoRefused(
            "executor.serviceAccountName must not be empty if automountServiceAccountToken is false"
        )
    admit(pod, cluster)
    return pod


def admit(pod: JSON, cluster: Cluster) -> None:
    """Kubernetes' ServiceAccount admission: mount the pod account's token where it applies."""
    ns = pod["metadata"]["namespace"]
    sa = pod["spec"].setdefault("serviceAccountName", "default")
    account = cluster.accounts.get((ns, sa))
    if account is None:
        raise ArgoRefused(f'pods is forbidden: serviceaccount "{sa}" not found')
    mount = pod["spec"].get("automountServiceAccountToken")
    if mount is None:
        mount = account.get("automountServiceAccountToken", True)
    if not mount:
        return
    pod["spec"]["volumes"].append({"name": "kube-api-access", "projected": {"serviceAccount": sa}})
    for c in [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]:
        mounts = c.setdefault("volumeMounts", [])
        if not any(m.get("mountPath") == TOKEN_PATH for m in mounts):
            mounts.append({"name": "kube-api-access", "mountPath": TOKEN_PATH, "readOnly": True})


def token_account(pod: JSON, container: str, cluster: Cluster) -> str | None:
    """Whose API token ``container`` can read (None: it cannot reach the API as anyone)."""
    ns = pod["metadata"]["namespace"]
    c = next(
        x for x in [*pod["spec"]["initContainers"], *pod["spec"]["containers"]] if x["name"] == container
    )
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    for m in c.get("volumeMounts") or []:
        if not (m.get("mountPath") or "").startswith(TOKEN_PATH) and not TOKEN_PATH.startswith(
            (m.get("mountPath") or "/nowhere").rstrip("/") + "/"
        ):
            continue
        volume = volumes.get(m["name"]) or {}
        if "projected" in volume:
            return str(volume["projected"]["serviceAccount"])
        if "secret" in volume:
            owner = cluster.token_owner(ns, volume["secret"]["secretName"])
            if owner:
                return owner
    return None


# ---------------------------------------------------------------- RBAC, as the authorizer reads it


def allowed(
    objects: list[JSON], namespace: str, sa: str, verb: str, group: str, resource: str
) -> bool:
    """Whether ``sa`` may ``verb`` ``group/resource`` in ``namespace`` under the given Roles."""
    roles = {
        o["metadata"]["name"]: o
        for o in objects
        if o.get("kind") == "Role" and o["metadata"].get("namespace") == namespace
    }
    for b in objects:
        if b.get("kind") != "RoleBinding" or b["metadata"].get("namespace") != namespace:
            continue
        if not any(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == sa
            and s.get("namespace", namespace) == namespace
            for s in b.get("subjects") or []
        ):
            continue
        role = roles.get(b["roleRef"]["name"])
        for rule in (role or {}).get("rules") or []:
            groups, resources, verbs = (
                rule.get(k, []) for k in ("apiGroups", "resources", "verbs")
            )
            if (
                (group in groups or "*" in groups)
                and (resource in resources or "*" in resources)
                and (verb in verbs or "*" in verbs)
            ):
                return True
    return False

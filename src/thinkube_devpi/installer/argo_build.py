"""The image build's Argo objects: the WorkflowTemplate ``devpi-build``, the CronWorkflow
``devpi-repo-monitor`` and the one-off Workflow the installer submits; what a finished run says.

How the steps share the checkout: they do not pass a workspace between pods. ``resolve`` clones
to decide what to build and hands on only two strings (the commit and the tag) as output
parameters; the ``build`` pod clones that exact commit in an init container into an ``emptyDir``
that its Kaniko container builds from (one pod, one volume, no PersistentVolumeClaim, no artifact
repository); ``bump`` clones afresh to change one line and push. Each clone is of a small repository.
"""

from __future__ import annotations

import re
import time
from typing import Any

from thinkube_devpi.installer import deployrepo
from thinkube_devpi.installer.manifests import meta
from thinkube_devpi.installer.phases.p10_namespace import EXECUTOR_SA, KANIKO_SA

TEMPLATE = "devpi-build"
MONITOR = "devpi-repo-monitor"
SSH_SECRET = "devpi-git-ssh"
REGISTRY_SECRET = "devpi-registry-push"
PULL_SECRET = deployrepo.PULL_SECRET
# Upstream Kaniko was archived in June 2025; this is the maintained fork's executor, v1.28.2, pinned
# by its index digest.
KANIKO_IMAGE = (
    "ghcr.io/osscontainertools/kaniko:v1.28.2"
    "@sha256:4ea0e7301e3f6806de15150e4982c73018351e28c1dca6947bd3b4afb5ae3c60"
)
GIT_IMAGE = "docker.io/alpine/git:v2.47.2"
# alpine/git's /etc/passwd knows root and git-user (1000) only, and ssh exits at start for a uid
# without an entry ("No user exists for uid N"): the git steps run as git-user.
GIT_UID = 1000
# paths inside the step pods (an emptyDir is mounted on /tmp there), not on this machine
POD_TMP = "/tmp"  # noqa: S108
MONITOR_SCHEDULE = "*/5 * * * *"
BUILD_LABEL = "thinkube-devpi/build"
SOURCE_LABEL = "thinkube-devpi/source-commit"  # the commit an installer build builds
FINISHED = ("Succeeded", "Failed", "Error")


def _script(*names: str) -> str:
    return "\n".join(deployrepo.template(n) for n in ("git-setup.sh", *names))


def _git_env(settings: Any) -> list[dict[str, Any]]:
    return [
        {"name": "REPO_URL", "value": settings.deploy_repo or ""},
        {"name": "BRANCH", "value": settings.deploy_branch},
        {"name": "SSH_DIR", "value": "/etc/git-ssh"},
        {"name": "HOME", "value": f"{POD_TMP}/home"},
    ]


def _git_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": GIT_UID,
        "runAsGroup": GIT_UID,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


_GIT_MOUNTS = [
    {"name": "git-ssh", "mountPath": "/etc/git-ssh", "readOnly": True},
    {"name": "tmp", "mountPath": POD_TMP},
]
_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}


def accounts() -> dict[str, Any]:
    """Argo's hardened form: the pods get no token (their account has no rights anyway); Argo
    mounts the executor account's token into its own init/wait containers only."""
    return {
        "serviceAccountName": KANIKO_SA,
        "automountServiceAccountToken": False,
        "executor": {"serviceAccountName": EXECUTOR_SA},
    }


KANIKO_COMMAND = ["/kaniko/executor"]
CONTROLLER_LABEL = "app.kubernetes.io/component"


def kaniko_args(settings: Any) -> list[str]:
    image = deployrepo.image_name(settings)
    args = [
        "--context=dir:///workspace/src",
        "--dockerfile=/workspace/src/Dockerfile",
        f"--destination={image}:{{{{inputs.parameters.tag}}}}",
        "--label=org.opencontainers.image.revision={{inputs.parameters.sha}}",
        "--snapshot-mode=redo",
        # layers cached in the registry: a rebuild after a small change reuses the rest
        "--cache=true",
        f"--cache-repo={image}-cache",
        "--cleanup",
    ]
    if settings.registry_insecure:
        # only when the config marks the registry insecure: TLS verification is on otherwise
        args.append("--skip-tls-verify")
    return args


def workflow_template(settings: Any) -> dict[str, Any]:
    argo = settings.argo_namespace
    build_when = "{{steps.resolve.outputs.parameters.build}} == true"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": meta(TEMPLATE, argo),
        "spec": {
            "entrypoint": "main",
            **accounts(),
            "arguments": {"parameters": [{"name": "only-if-changed", "value": "false"}]},
            "activeDeadlineSeconds": 3600,
            "ttlStrategy": {"secondsAfterCompletion": 7 * 86400},
            # pods go after the whole run, and not at once: the installer reads every step's log
            # once the run is over (OnPodSuccess deleted a step's pod before it could)
            "podGC": {"strategy": "OnWorkflowSuccess", "deleteDelayDuration": "10m"},
            "volumes": [
                {
                    "name": "git-ssh",
                    "secret": {"secretName": SSH_SECRET, "defaultMode": 0o440},
                },
                {
                    "name": "docker-config",
                    "secret": {
                        "secretName": REGISTRY_SECRET,
                        "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                        "defaultMode": 0o400,
                    },
                },
                {"name": "tmp", "emptyDir": {}},
                {"name": "workspace", "emptyDir": {}},
            ],
            "templates": [
                {
                    "name": "main",
                    "steps": [
                        [{"name": "resolve", "template": "resolve"}],
                        [
                            {
                                "name": "build",
                                "template": "build",
                                "when": build_when,
                                "arguments": {
                                    "parameters": [
                                        {
                                            "name": "sha",
                                            "value": "{{steps.resolve.outputs.parameters.sha}}",
                                        },
                                        {
                                            "name": "tag",
                                            "value": "{{steps.resolve.outputs.parameters.tag}}",
                                        },
                                    ]
                                },
                            }
                        ],
                        [
                            {
                                "name": "bump",
                                "template": "bump",
                                "when": build_when,
                                "arguments": {
                                    "parameters": [
                                        {
                                            "name": "tag",
                                            "value": "{{steps.resolve.outputs.parameters.tag}}",
                                        }
                                    ]
                                },
                            }
                        ],
                    ],
                },
                {
                    "name": "resolve",
                    "securityContext": {"fsGroup": GIT_UID},
                    "script": {
                        "image": GIT_IMAGE,
                        "command": ["sh"],
                        "source": _script("build-resolve.sh"),
                        "env": [
                            *_git_env(settings),
                            {"name": "OUT", "value": f"{POD_TMP}/outputs"},
                            {"name": "WORK", "value": f"{POD_TMP}/work"},
                            {
                                "name": "ONLY_IF_CHANGED",
                                "value": "{{workflow.parameters.only-if-changed}}",
                            },
                        ],
                        "volumeMounts": _GIT_MOUNTS,
                        "securityContext": _git_security(),
                        "resources": _RESOURCES,
                    },
                    "outputs": {
                        "parameters": [
                            {"name": name, "valueFrom": {"path": f"{POD_TMP}/outputs/{name}"}}
                            for name in ("sha", "tag", "build")
                        ]
                    },
                },
                {
                    "name": "build",
                    "inputs": {"parameters": [{"name": "sha"}, {"name": "tag"}]},
                    "securityContext": {"fsGroup": GIT_UID},
                    "initContainers": [
                        {
                            "name": "clone",
                            "image": GIT_IMAGE,
                            "command": ["sh", "-c", _script("build-clone.sh")],
                            "env": [
                                *_git_env(settings),
                                {"name": "WORKSPACE", "value": "/workspace"},
                                {"name": "SHA", "value": "{{inputs.parameters.sha}}"},
                            ],
                            "volumeMounts": [
                                *_GIT_MOUNTS,
                                {"name": "workspace", "mountPath": "/workspace"},
                            ],
                            "securityContext": _git_security(),
                            "resources": _RESOURCES,
                        }
                    ],
                    "container": {
                        # Kaniko runs as root: it unpacks the base image over its own root file
                        # system. This is the one exception to the non-root rule, confined to the
                        # build namespace (no privilege escalation, no host mounts, no token).
                        "image": KANIKO_IMAGE,
                        # without a command Argo's controller looks the image's entrypoint up
                        # in the registry (which needs egress from the controller)
                        "command": KANIKO_COMMAND,
                        "args": kaniko_args(settings),
                        "volumeMounts": [
                            {"name": "workspace", "mountPath": "/workspace"},
                            {
                                "name": "docker-config",
                                "mountPath": "/kaniko/.docker",
                                "readOnly": True,
                            },
                        ],
                        "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False},
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "512Mi"},
                            "limits": {"memory": "2Gi"},
                        },
                    },
                },
                {
                    "name": "bump",
                    "inputs": {"parameters": [{"name": "tag"}]},
                    "securityContext": {"fsGroup": GIT_UID},
                    "script": {
                        "image": GIT_IMAGE,
                        "command": ["sh"],
                        "source": _script("build-bump.sh"),
                        "env": [
                            *_git_env(settings),
                            {"name": "WORK", "value": f"{POD_TMP}/work"},
                            {"name": "TAG", "value": "{{inputs.parameters.tag}}"},
                        ],
                        "volumeMounts": _GIT_MOUNTS,
                        "securityContext": _git_security(),
                        "resources": _RESOURCES,
                    },
                },
            ],
        },
    }


def cron_workflow(settings: Any, *, schedules: bool = True) -> dict[str, Any]:
    """The repository monitor. ``schedules`` (a list) from Argo 3.6; ``schedule`` before."""
    spec: dict[str, Any] = {
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 120,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "workflowSpec": {
            **accounts(),
            "workflowTemplateRef": {"name": TEMPLATE},
            "arguments": {"parameters": [{"name": "only-if-changed", "value": "true"}]},
        },
    }
    if schedules:
        spec = {"schedules": [MONITOR_SCHEDULE], **spec}
    else:
        spec = {"schedule": MONITOR_SCHEDULE, **spec}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": meta(MONITOR, settings.argo_namespace),
        "spec": spec,
    }


def argo_version_from_image(image: str) -> tuple[int, int] | None:
    m = re.search(r":v?(\d+)\.(\d+)", image.rsplit("/", 1)[-1])
    return (int(m.group(1)), int(m.group(2))) if m else None


def failing_step(wf: dict[str, Any]) -> str:
    """The failing step and its message, from a finished Workflow's status."""
    status = wf.get("status") or {}
    nodes = list((status.get("nodes") or {}).values())
    for node in sorted(nodes, key=lambda n: str(n.get("finishedAt") or "")):
        if node.get("type") == "Pod" and node.get("phase") in ("Failed", "Error"):
            name = node.get("displayName") or node.get("name")
            return f"step {name} failed: {node.get('message') or 'no message'}"
    return str(status.get("message") or f"the workflow ended {status.get('phase')}")


def build_workflow(settings: Any, source: str = "") -> dict[str, Any]:
    """A one-off run of the template, labelled as the installer's, building unconditionally.

    ``source`` (the source commit it builds) goes into a label, so that a re-run finds a build
    of the same commit still running and follows it instead of submitting a second one.
    """
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    labels = {BUILD_LABEL: "installer"}
    if source:
        labels[SOURCE_LABEL] = source[:40]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": meta(f"{TEMPLATE}-{stamp}", settings.argo_namespace, **labels),
        "spec": {
            **accounts(),
            "workflowTemplateRef": {"name": TEMPLATE},
            "arguments": {"parameters": [{"name": "only-if-changed", "value": "false"}]},
        },
    }

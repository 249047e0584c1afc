"""Following an image build's log live: each step pod's main container, in order, redacted.

The follower is woken by the phase's Workflow watch whenever a step starts or ends (no polling,
no pod watch); what a step prints passes through a :class:`Redactor` before it becomes a log line.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from thinkube_devpi.installer.kube import KubeError

if TYPE_CHECKING:
    from thinkube_devpi.installer.kube import Kube

Log = Callable[..., None]  # log(text, level="info")


class Redactor:
    """Masks secret values in build log lines, and drops any line that looks like a key."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [s for s in secrets if len(s) >= 6]

    def __call__(self, line: str) -> str | None:
        if "PRIVATE KEY" in line:
            return None
        for s in self.secrets:
            line = line.replace(s, "***")
        return line


def follow_build_logs(
    kube: Kube,
    namespace: str,
    workflow: str,
    log: Log,
    redact: Redactor,
    *,
    done: threading.Event,
    stop_logs: threading.Event,
    changed: queue.SimpleQueue[None],
) -> None:
    """Streams each step pod's main container log, in order, until the workflow is done."""
    selector = f"workflows.argoproj.io/workflow={workflow}"
    streamed: set[str] = set()

    def stream(pod: dict[str, Any], follow: bool) -> None:
        name = pod["metadata"]["name"]
        if name in streamed or (pod.get("status") or {}).get("phase") in (None, "Pending"):
            return
        streamed.add(name)
        step = (pod["metadata"].get("annotations") or {}).get(
            "workflows.argoproj.io/node-name", name
        )
        try:
            for line in kube.pod_log(
                namespace, name, container="main", follow=follow, cancel=stop_logs
            ):
                shown = redact(line)
                if shown is not None:
                    log(f"[{step.rsplit('.', 1)[-1]}] {shown}")
        except KubeError as exc:
            log(f"log of {name} unavailable: {exc.reason or exc}", "warning")

    def stream_new(follow: bool) -> None:
        pods, _ = kube.list("v1", "Pod", namespace, label_selector=selector)
        for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", "")):
            stream(pod, follow=follow)

    try:
        # woken by the Workflow watch whenever a step changes (no polling, no pod watch)
        while not stop_logs.is_set():
            changed.get()
            if done.is_set():
                break
            stream_new(follow=True)
        if not stop_logs.is_set():
            stream_new(follow=False)
    except KubeError as exc:
        log(f"build log stopped: {exc}", "warning")

"""Plays kubelet for the backup Jobs: runs the backup program the Job names, in-process.

For each new Job labelled ``app.kubernetes.io/name=devpi-backup`` it resolves the container's
environment as kubelet would (values, and ``secretKeyRef`` from the Secret in the fake API
server), maps the pod's ``/data`` volume to a local directory (the test devpi-server's base, whose
``server`` folder is the server directory, as on the volume), runs
``thinkube_devpi.installer.backup.core.main`` (the same file the image ships as
``devpi_backup.py``) with the Job's arguments, records a Pod with its output as the log, and
marks the Job succeeded or failed.
"""

from __future__ import annotations

import base64
import contextlib
import io
import threading
from pathlib import Path
from typing import Any

from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.installer.backup import core


class BackupKubelet:
    def __init__(self, fake: FakeKubeAPI, data_dir: Path, namespace: str = "devpi") -> None:
        self.fake = fake
        self.data_dir = data_dir
        self.namespace = namespace
        self.ran: list[list[str]] = []
        self.seen: set[str] = set()
        self.before_run: Any = None  # a hook: called with the argv before each run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="backup-kubelet")

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            for job in self.fake.list("batch/v1", "Job", self.namespace):
                name = job["metadata"]["name"]
                labels = job["metadata"].get("labels") or {}
                if name in self.seen or labels.get("app.kubernetes.io/name") != "devpi-backup":
                    continue
                self.seen.add(name)
                self._run(job)

    def _env(self, container: dict[str, Any]) -> dict[str, str]:
        env = {}
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                secret = self.fake.get("v1", "Secret", ref["name"], self.namespace) or {}
                env[var["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        return env

    def _run(self, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        container = job["spec"]["template"]["spec"]["containers"][0]
        command = container["command"]
        assert command[:2] == ["python3", "/opt/thinkube-devpi/devpi_backup.py"], command
        argv = [a.replace("/data", str(self.data_dir), 1) if a.startswith("/data") else a for a in command[2:]]
        self.ran.append(argv)
        if self.before_run:
            self.before_run(argv)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                rc = core.main(argv, env=self._env(container))
        except Exception as exc:  # a pod that crashed: the Job fails with its log
            out.write(f"{type(exc).__name__}: {exc}\n")
            rc = 1
        pod = f"{name}-x1"
        self.fake.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "namespace": self.namespace, "labels": {"job-name": name}},
                "spec": {"containers": [{"name": "backup", "image": container["image"]}]},
            }
        )
        self.fake.set_pod_log(self.namespace, pod, out.getvalue())
        self.fake.end_pod_log(self.namespace, pod)
        status = {"succeeded": 1} if rc == 0 else {"failed": 1}
        self.fake.patch_status("batch/v1", "Job", name, self.namespace, status)

    def __enter__(self) -> BackupKubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

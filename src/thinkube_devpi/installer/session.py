"""What a face holds instead of a Kubernetes client: one connection (or plan mode), made once.

The CLI opens a :class:`Session` per command, the TUI one per connection attempt; both then ask
it for runners, live status, preflight checks and pod logs. ``kube`` is None in plan mode and
``why`` says why. Nothing here imports a face's library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkube_devpi.installer.kube import Kube, KubeError
from thinkube_devpi.installer.phases.base import Context

if TYPE_CHECKING:
    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.events import Emit
    from thinkube_devpi.installer.live.rows import ClusterSnapshot
    from thinkube_devpi.installer.live.watcher import StatusWatcher
    from thinkube_devpi.installer.operations import Row
    from thinkube_devpi.installer.preflight import Check
    from thinkube_devpi.installer.runner import Journal, Runner


class Session:
    """Settings, the cluster if it answered, and the phases built once for both faces."""

    def __init__(self, settings: Settings, kube: Kube | None = None, *, why: str = "") -> None:
        from thinkube_devpi.installer.phases import build

        self.settings = settings
        self.why = why if kube is None else ""
        self.context = Context(settings, kube)
        self.phases = build(self.context)

    @classmethod
    def open(
        cls,
        settings: Settings,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        *,
        required: bool = True,
        plan: bool = False,
        cache_dir: Path | None = None,
    ) -> Session:
        """Connect; without ``required`` a failure (or ``plan``) gives a plan-mode session."""
        if plan:
            return cls(settings, why="plan mode requested")
        try:
            kube = Kube.connect(kubeconfig, context, cache_dir=cache_dir)
        except KubeError as exc:
            if required:
                raise
            return cls(settings, why=str(exc))
        return cls(settings, kube)

    @staticmethod
    def target_in(
        kubeconfig: str | Path | None, context: str | None = None
    ) -> tuple[str, str, str]:
        """(context, cluster, API server) a connection would use, read from the kubeconfig with
        no network call; ("", "", "") when it cannot be read."""
        import os

        import yaml

        path = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG", "~/.kube/config")
        try:
            with open(os.path.expanduser(path.split(os.pathsep)[0]), encoding="utf-8") as fh:
                cfg = yaml.safe_load(fh) or {}
            name = context or cfg.get("current-context")
            ctx = next(c for c in cfg.get("contexts") or [] if c.get("name") == name)
            cluster = ctx["context"]["cluster"]
            entry = next(c for c in cfg.get("clusters") or [] if c.get("name") == cluster)
            return str(name), str(cluster), str(entry["cluster"]["server"])
        except (OSError, ValueError, KeyError, TypeError, StopIteration, yaml.YAMLError):
            return "", "", ""

    @property
    def rows(self) -> list[Row]:
        """What the faces list: the phases in install order, then the runner's operations
        (88 test, 89 rollback)."""
        from thinkube_devpi.installer.operations import rows

        return rows(self.phases)

    # -- the connection

    @property
    def kube(self) -> Kube | None:
        return self.context.kube

    @property
    def plan_mode(self) -> bool:
        return self.context.kube is None

    def ping(self) -> str:
        """'' when the API server answers (with any HTTP status), else what went wrong. One GET
        of the namespace: the client caches the version, so asking for it again proves nothing."""
        from thinkube_devpi.installer.events import ObjectRef

        try:
            self.require_kube().get(ObjectRef("v1", "Namespace", self.settings.namespace))
        except KubeError as exc:
            return "" if exc.status is not None else exc.message
        return ""

    def version(self) -> str:
        """The API server's version; asking is how a face learns the cluster answers."""
        return self.require_kube().version()

    def require_kube(self) -> Kube:
        return self.context.require_kube()

    def attach(self, other: Session) -> None:
        """Take over another session's connection (the TUI reconnects in a worker)."""
        self.context.kube = other.context.kube
        self.why = other.why

    def detach(self, why: str) -> None:
        """Plan mode from now on: nothing is written."""
        self.context.kube = None
        self.why = why

    def cluster_info(self) -> dict[str, Any]:
        """Where the session points, for headers and ``-o json``."""
        kube = self.context.kube
        if kube is None:
            return {"connected": False, "plan_mode": True, "why": self.why}
        return {
            "connected": True,
            "context": kube.context,
            "cluster": kube.cluster,
            "server": kube.server,
        }

    # -- what the faces do with it

    def with_options(self, **options: Any) -> Session:
        """A session on the same connection whose Context carries the admin's choices."""
        other = Session.__new__(Session)
        other.settings = self.settings
        other.why = self.why
        other.context = Context(self.settings, self.context.kube, **options)
        other.phases = self.phases if not options else _build(other.context)
        return other

    def runner(self, emit: Emit | None = None, journal: Journal | None = None) -> Runner:
        from thinkube_devpi.installer.runner import Runner, discard

        return Runner(self.context, phases=self.phases, emit=emit or discard, journal=journal)

    def watcher(
        self,
        on_snapshot: Callable[[ClusterSnapshot], None],
        cancel: threading.Event | None = None,
    ) -> StatusWatcher:
        from thinkube_devpi.installer.live.watcher import StatusWatcher

        return StatusWatcher(self.require_kube(), self.settings, on_snapshot, cancel=cancel)

    def preflight(self) -> list[Check]:
        from thinkube_devpi.installer.preflight import preflight

        return preflight(self.context.kube, self.settings)

    def pod_log(
        self, namespace: str, pod: str, *, cancel: threading.Event, tail_lines: int | None = None
    ) -> Iterator[str]:
        """A pod's log, followed until it ends or ``cancel`` is set."""
        return self.require_kube().pod_log(
            namespace, pod, follow=True, tail_lines=tail_lines, cancel=cancel
        )


def _build(ctx: Context) -> list[Any]:
    from thinkube_devpi.installer.phases import build

    return build(ctx)

"""Phase 88: prove the install works, through the real host names, as a user would.

Runs on demand (`tk-devpi install test`), never as part of `apply`: its state cannot be read from the
cluster, only found out by trying.
"""

from __future__ import annotations

from thinkube_devpi.installer.events import CheckDone, Emit, LogLine, ObjectRef, State
from thinkube_devpi.installer.phases.base import Phase, PhaseError, PhaseStatus, decode_secret_data
from thinkube_devpi.secrets import Secret

ROOT_SECRET = "devpi-root"
ROOT_KEY = "password"


class TestPhase(Phase):
    __test__ = False  # not a pytest class

    number = 88
    name = "test"
    title = "End-to-end test"
    summary = (
        "Checks the dashboard gate, the open API, uploads and installs through the real hosts."
    )
    in_apply_all = False

    passed: int | None = None  # checks passed by a run in this process

    def status(self) -> PhaseStatus:
        if self.passed is not None:
            return PhaseStatus(State.HEALTHY, f"all {self.passed} checks passed")
        return PhaseStatus(State.UNKNOWN, "found out by running it: tk-devpi install test")

    def plan(self):  # type: ignore[no-untyped-def]
        plan = super().plan()
        plan.notes.append(
            f"checks https://{self.settings.dashboard} (302 to {self.settings.issuer}), "
            f"https://{self.settings.api} (open /+api, no anonymous users, upload and pip install "
            "through a scratch index that is deleted afterwards); writes nothing to the cluster"
        )
        return plan

    def root_password(self) -> Secret | None:
        kube = self.ctx.require_kube()
        live = kube.get(ObjectRef("v1", "Secret", ROOT_SECRET, self.settings.namespace))
        value = decode_secret_data(live).get(ROOT_KEY)
        return Secret(value, source=f"Secret {ROOT_SECRET}") if value else None

    def apply(self, emit: Emit) -> None:
        from thinkube_devpi.installer.e2e import end_to_end, system_resolve

        failed = []
        count = 0
        self.passed = None
        with end_to_end(
            self.settings,
            kube=self.ctx.kube,
            root_password=self.root_password(),
            resolve=self.ctx.resolve or system_resolve,
            ca_file=self.settings.ca_file,
        ) as e2e:
            for check in e2e.run():
                count += 1
                emit(CheckDone.of(self.name, check))
                if not check.ok:
                    failed.append(check)
                    if check.hint:
                        emit(LogLine(self.name, f"     {check.hint}", "warning"))
        if failed:
            raise PhaseError(
                f"{len(failed)} check(s) failed: " + "; ".join(c.name for c in failed) + ".",
                "Each failed check above says what it expected and what it got.",
            )
        self.passed = count

    def was_applied(self) -> bool:
        return False  # the test leaves nothing behind

    def rollback(self, emit: Emit) -> None:
        self.log(emit, "nothing to roll back: the test leaves nothing behind")

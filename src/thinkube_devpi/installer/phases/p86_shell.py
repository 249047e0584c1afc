"""Phase 86: fish functions and completions, and optionally pip.conf / uv.toml, on this machine.

The fish files come from `fish.generator` (one autoloaded function per file, no conf.d, a manifest
for exact removal). pip.conf and uv.toml are written only when the admin asks
(``write_pip_config`` on the Context, or THINKUBE_DEVPI_WRITE_PIP_CONFIG=1), with one index URL on the
prod index. Rollback removes what was written and restores the backups.
"""

from __future__ import annotations

from pathlib import Path

from thinkube_devpi.installer.events import Emit, State
from thinkube_devpi.installer.phases import local_state
from thinkube_devpi.installer.phases.base import (
    Phase,
    PhaseError,
    PhaseStatus,
    Plan,
    RollbackPreview,
)


class ShellPhase(Phase):
    number = 86
    name = "shell"
    title = "fish functions and pip/uv configuration"
    summary = (
        "devpi-* fish functions and completions; optionally pip.conf and uv.toml on admin/prod."
    )
    needs_cluster = False

    @property
    def simple_url(self) -> str:
        return f"https://{self.settings.api}/{self.settings.prod_index}/+simple/"

    def _pip(self) -> bool:
        return local_state.flag("write_pip_config", self.ctx)

    def _fish_dir(self) -> Path:
        from thinkube_devpi.fish.generator import default_fish_dir

        return default_fish_dir()

    def plan(self) -> Plan:
        from thinkube_devpi.fish import generator

        plan = Plan(self.name, self.number, self.title)
        report = generator.status(self._fish_dir())
        for rel, state in report.files:
            action = {"missing": "create", "outdated": "update", "installed": "unchanged"}.get(
                state, f"keep ({state})"
            )
            plan.notes.append(f"{action} {report.fish_dir / rel}")
        if self._pip():
            from thinkube_devpi.shell import pipconf

            for item in pipconf.plan(self.simple_url, "user"):
                plan.notes.append(f"{item.action} {item.path}: index-url {self.simple_url}")
        else:
            plan.notes.append("pip.conf / uv.toml left alone (not asked for)")
        return plan

    def apply(self, emit: Emit) -> None:
        from thinkube_devpi.fish import generator

        report = generator.install(self._fish_dir())
        for rel, what in report.files:
            self.log(
                emit,
                f"{what}: {report.fish_dir / rel}",
                "warning" if what.startswith("skipped") else "info",
            )
        record = local_state.read(self.name)
        record["fish_dir"] = str(report.fish_dir)
        if self._pip():
            from thinkube_devpi.shell import pipconf

            previous = {w["path"]: w for w in record.get("pip", [])}

            def intent(w: pipconf.WrittenFile) -> None:
                # recorded before the file is replaced: a kill right after keeps the backup known
                if str(w.path) not in previous:
                    previous[str(w.path)] = w.to_json()
                    record["pip"] = list(previous.values())
                    local_state.write(self.name, record)

            for w in pipconf.write(pipconf.plan(self.simple_url, "user"), before=intent):
                self.log(emit, f"{w.action}: {w.path}")
            record["pip"] = list(previous.values())
        local_state.write(self.name, record)
        if report.problems:
            raise PhaseError(
                "Some fish files were left alone: " + ", ".join(r for r, _ in report.problems),
                "They were edited or are not ours; replacing them keeps a backup of each "
                "(`tk-devpi fish install --force`).",
            )

    def status(self) -> PhaseStatus:
        from thinkube_devpi.fish import generator

        report = generator.status(self._fish_dir())
        state = generator.overall(report)
        details = [f"{what}: {rel}" for rel, what in report.files if what != "installed"]
        if state == "installed":
            result = PhaseStatus(State.HEALTHY, "fish functions installed", details)
        elif state == "missing":
            return PhaseStatus(State.MISSING, "fish functions not installed", details)
        else:
            return PhaseStatus(State.PROGRESSING, f"fish functions {state}", details)
        if self._pip():
            from thinkube_devpi.shell import pipconf

            stale = [
                str(p.path)
                for p in pipconf.plan(self.simple_url, "user")
                if p.action != "unchanged"
            ]
            if stale:
                return PhaseStatus(
                    State.PROGRESSING, f"outdated or missing: {', '.join(stale)}", stale
                )
        return result

    def was_applied(self) -> bool:
        from thinkube_devpi.fish import generator

        if local_state.read(self.name):
            return True
        report = generator.status(self._fish_dir())
        return any(state in ("installed", "outdated") for _, state in report.files)

    def rollback_preview(self) -> RollbackPreview:
        record = local_state.read(self.name)
        preview = RollbackPreview()
        fish_dir = Path(record.get("fish_dir") or self._fish_dir())
        preview.deletes.append(f"the generated devpi-* fish functions in {fish_dir}")
        preview.keeps.append(("fish files you edited", "never deleted"))
        for w in record.get("pip") or []:
            what = "put back as before" if w.get("backup") else "removed"
            preview.deletes.append(f"{w['path']} ({what})")
        return preview

    def rollback(self, emit: Emit) -> None:
        from thinkube_devpi.fish import generator

        record = local_state.read(self.name)
        report = generator.uninstall(Path(record.get("fish_dir") or self._fish_dir()))
        for rel, what in report.files:
            self.log(emit, f"{what}: {report.fish_dir / rel}")
        if record.get("pip"):
            from thinkube_devpi.shell import pipconf

            written = [
                pipconf.WrittenFile(
                    Path(w["path"]), w["action"], Path(w["backup"]) if w["backup"] else None
                )
                for w in record["pip"]
            ]
            pipconf.undo(written)
            for w in written:
                self.log(emit, f"{'restored' if w.backup else 'removed'}: {w.path}")
        local_state.write(self.name, None)

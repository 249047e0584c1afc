"""Phase 85: the helpers' configuration on this machine.

Writes helpers.toml (URL ``https://<api host>/``, the admin user and the prod index) with
`shell.settings.write_helper_config`, and keeps the admin password in the system keyring when the
admin agreed (``store_admin_password`` on the Context, or THINKUBE_DEVPI_STORE_ADMIN_PASSWORD=1).
Status is read from the file and the keyring each time; rollback restores the file it replaced (or
removes the one it created) and forgets the password it stored.
"""

from __future__ import annotations

import shutil
import time
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
from thinkube_devpi.shell import settings as helper_settings

ADMIN_PASSWORD_ENV = "DEVPI_ADMIN_PASSWORD"


class CliPhase(Phase):
    number = 85
    name = "cli"
    title = "Helper configuration"
    summary = "helpers.toml with the API URL, admin user and prod index; the admin password in the keyring if agreed."
    needs_cluster = False

    @property
    def url(self) -> str:
        return f"https://{self.settings.api}/"

    def wanted(self) -> str:
        return helper_settings.render_helper_config(
            self.url, self.settings.devpi_user, self.settings.prod_index
        )

    def _store_password(self) -> bool:
        return local_state.flag("store_admin_password", self.ctx)

    def plan(self) -> Plan:
        plan = Plan(self.name, self.number, self.title)
        path = helper_settings.config_path()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        action = (
            "create" if current is None else "unchanged" if current == self.wanted() else "update"
        )
        plan.notes.append(
            f"{action} {path}: url {self.url}, user {self.settings.devpi_user}, "
            f"index {self.settings.prod_index}"
        )
        if self._store_password():
            plan.notes.append(
                f"keep the admin password ({ADMIN_PASSWORD_ENV}) in the system keyring for the helpers"
            )
        else:
            plan.notes.append("admin password not stored (not agreed): the helpers will prompt")
        return plan

    def apply(self, emit: Emit) -> None:
        from thinkube_devpi.shell.session import password_key

        path = helper_settings.config_path()
        record = local_state.read(self.name)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != self.wanted():
            if "created" not in record:  # first write: remember what was there before
                if current is None:
                    record["created"] = True
                else:
                    backup = path.with_name(
                        f"{path.name}.bak-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
                    )
                    shutil.copy2(path, backup)
                    record["created"] = False
                    record["backup"] = str(backup)
            record["path"] = str(path)
            local_state.write(self.name, record)
            helper_settings.write_helper_config(
                self.url, self.settings.devpi_user, self.settings.prod_index, path
            )
            self.log(emit, f"wrote {path}")
        else:
            self.log(emit, f"{path} is up to date")
        if self._store_password():
            from thinkube_devpi import secrets

            secret = self.ctx.session_secrets.get(ADMIN_PASSWORD_ENV) or secrets.lookup(
                ADMIN_PASSWORD_ENV, interactive=False
            )
            key = password_key(self.url, self.settings.devpi_user)
            if secret is None and secrets.lookup(key, interactive=False) is not None:
                self.log(emit, "admin password already in the keyring")
                return
            if secret is None:
                raise PhaseError(
                    "The admin password is not known, so it cannot be kept in the keyring.",
                    f"Set {ADMIN_PASSWORD_ENV}, or answer no to storing it.",
                )
            try:
                where = secrets.store(key, secret)
            except secrets.SecretError as exc:
                raise PhaseError(f"Keeping the admin password failed: {exc}") from None
            record["stored_password"] = True
            local_state.write(self.name, record)
            self.log(emit, f"admin password kept in the keyring: {where}")

    def status(self) -> PhaseStatus:
        path = helper_settings.config_path()
        if not path.exists():
            return PhaseStatus(State.MISSING, f"{path} does not exist")
        if path.read_text(encoding="utf-8") != self.wanted():
            return PhaseStatus(State.PROGRESSING, f"{path} is outdated (differs from the settings)")
        details = [f"{path}: url {self.url}"]
        if self._store_password():
            from thinkube_devpi import secrets
            from thinkube_devpi.shell.session import password_key

            try:
                found = secrets.lookup(
                    password_key(self.url, self.settings.devpi_user), interactive=False
                )
            except secrets.SecretError:
                found = None
            if found is None or found.source != "keyring":
                return PhaseStatus(
                    State.PROGRESSING, "the admin password is not in the keyring", details
                )
            details.append("admin password in the keyring")
        return PhaseStatus(State.HEALTHY, "helper configuration installed", details)

    def was_applied(self) -> bool:
        return bool(local_state.read(self.name))

    def rollback_preview(self) -> RollbackPreview:
        record = local_state.read(self.name)
        preview = RollbackPreview()
        if not record:
            return preview
        path = Path(record.get("path") or helper_settings.config_path())
        if record.get("backup"):
            preview.deletes.append(f"{path} (the copy from before the install is put back)")
        elif record.get("created"):
            preview.deletes.append(str(path))
        if record.get("stored_password"):
            preview.deletes.append("the devpi admin password in the keyring")
        return preview

    def rollback(self, emit: Emit) -> None:
        record = local_state.read(self.name)
        if record.get("stored_password"):
            from thinkube_devpi import secrets
            from thinkube_devpi.shell.session import password_key

            secrets.forget(password_key(self.url, self.settings.devpi_user))
            self.log(emit, "admin password removed from the keyring")
        path = Path(record.get("path") or helper_settings.config_path())
        backup = record.get("backup")
        if backup and Path(backup).exists():
            shutil.move(backup, path)
            self.log(emit, f"restored {path} from {backup}")
        elif record.get("created") and path.exists():
            path.unlink()
            self.log(emit, f"removed {path}")
        else:
            self.log(emit, f"{path}: nothing of ours to undo")
        local_state.write(self.name, None)

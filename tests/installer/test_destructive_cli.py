"""Every destructive CLI path asks first, on a real terminal, listing what goes and what stays.

The prompt is answered through a pseudo-terminal, as an admin at a shell would; the fake API
server's request log proves nothing was deleted before the answer.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

import thinkube_devpi
from fakes.controllers import Controllers
from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.cli import main

SRC = str(Path(thinkube_devpi.__file__).resolve().parents[1])  # this checkout, not another

ENV_DOMAIN = {"THINKUBE_DEVPI_DOMAIN": "example.com"}


def invoke(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env=env)
    return result.exit_code, result.output


def deletes(fake: FakeKubeAPI) -> list[str]:
    return [r.path for r in fake.writes() if r.method == "DELETE"]


def on_a_terminal(args: list[str], env: dict[str, str], answer: str) -> tuple[int, str, str]:
    """Run tk-devpi in a pty; when it asks, return what it printed so far, then answer."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "thinkube_devpi.cli", *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, **env, "COLUMNS": "200", "TERM": "dumb", "PYTHONPATH": SRC},
        close_fds=True,
    )
    os.close(secondary)
    out = b""
    asked = ""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                if not asked and b"[y/N]" in out:
                    asked = out.decode(errors="replace")
                    os.write(primary, answer.encode() + b"\n")
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(primary)
        if proc.poll() is None:
            proc.kill()
    return code, asked, out.decode(errors="replace")


def test_rollback_on_a_terminal_lists_deletes_and_keeps_and_no_deletes_nothing(
    fake_kube: FakeKubeAPI, kubeconfig: Path, controllers: Controllers
) -> None:
    env = {"KUBECONFIG": str(kubeconfig), **ENV_DOMAIN}
    code, out = invoke(["install", "apply", "--phase", "10", "--phase", "20", "--phase", "30"], env)
    assert code == 0, out
    fake_kube.clear_log()
    code, asked, out = on_a_terminal(
        ["install", "rollback", "--phase", "10", "--phase", "20", "--phase", "30"], env, "n"
    )
    assert code == 1, out  # click's Abort
    assert asked, out
    deletes_part, _, _ = asked.partition("keeps:")
    assert "Deployment devpi/ephemeral-redis" in deletes_part
    # the PVC is kept (package data), so it is listed under keeps and never under deletes
    assert "PersistentVolumeClaim devpi/devpi-data-pvc" not in deletes_part
    assert "PersistentVolumeClaim devpi/devpi-data-pvc (package data is kept" in asked
    assert "Namespace devpi (it still holds PersistentVolumeClaim devpi-data-pvc" in asked
    assert deletes(fake_kube) == []
    assert fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi") is not None


def test_rollback_on_a_terminal_deletes_after_yes(
    fake_kube: FakeKubeAPI, kubeconfig: Path, controllers: Controllers
) -> None:
    env = {"KUBECONFIG": str(kubeconfig), **ENV_DOMAIN}
    assert invoke(["install", "apply", "--phase", "10", "--phase", "30"], env)[0] == 0
    code, asked, out = on_a_terminal(["install", "rollback", "--phase", "30"], env, "y")
    assert code == 0, out
    assert "Deployment devpi/ephemeral-redis" in asked
    assert fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi") is None
    assert "nothing kept" in out and "kept 0" not in out


def test_rollback_without_a_terminal_and_without_yes_refuses(
    fake_kube: FakeKubeAPI, kubeconfig: Path, controllers: Controllers
) -> None:
    env = {"KUBECONFIG": str(kubeconfig), **ENV_DOMAIN}
    assert invoke(["install", "apply", "--phase", "10", "--phase", "30"], env)[0] == 0
    fake_kube.clear_log()
    code, out = invoke(["install", "rollback", "--phase", "30"], env)
    assert code == 2 and "--yes" in out and "--dry-run" in out
    assert deletes(fake_kube) == []


def test_rollback_dry_run_lists_and_deletes_nothing(
    fake_kube: FakeKubeAPI, kubeconfig: Path, controllers: Controllers
) -> None:
    env = {"KUBECONFIG": str(kubeconfig), **ENV_DOMAIN}
    assert invoke(["install", "apply", "--phase", "10", "--phase", "20"], env)[0] == 0
    fake_kube.clear_log()
    code, out = invoke(["install", "rollback", "--all", "--dry-run", "-o", "json"], env)
    assert code == 0, out
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["storage"]["deletes"] == []
    assert rows["storage"]["keeps"][0]["what"] == "PersistentVolumeClaim devpi/devpi-data-pvc"
    # never applied: skipped, so no Keycloak password is needed to roll the install back
    assert rows["keycloak"]["skipped"] and rows["redis"]["skipped"]
    # 88 (the test) leaves nothing behind and 89 is the rollback itself: neither is a row here
    assert "rollback" not in rows and "test" not in rows
    assert list(rows) == [
        *("shell", "cli", "exposure", "backup", "deploy", "build", "oauth2-proxy"),
        *("keycloak", "redis", "storage", "namespace"),
    ]  # every phase, in the order the rollback goes
    assert deletes(fake_kube) == []


def test_apply_never_deletes_phase_89_is_refused(
    fake_kube: FakeKubeAPI, kubeconfig: Path, controllers: Controllers
) -> None:
    env = {"KUBECONFIG": str(kubeconfig), **ENV_DOMAIN}
    assert invoke(["install", "apply", "--phase", "10", "--phase", "30"], env)[0] == 0
    fake_kube.clear_log()
    for wanted in ("rollback", "89"):
        code, out = invoke(["install", "apply", "--phase", wanted], env)
        assert code == 2, out
        assert "apply never deletes" in out and "tk-devpi install rollback --all" in out
    assert deletes(fake_kube) == []
    assert fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi") is not None


def test_apply_phase_89_on_a_terminal_deletes_nothing_and_points_at_the_rollback_that_asks(
    fake_kube: FakeKubeAPI, kubeconfig: Path, controllers: Controllers
) -> None:
    env = {"KUBECONFIG": str(kubeconfig), **ENV_DOMAIN}
    code, out = invoke(["install", "apply", "--phase", "10", "--phase", "20", "--phase", "30"], env)
    assert code == 0, out
    fake_kube.clear_log()
    for wanted in ("89", "rollback"):
        code, asked, out = on_a_terminal(["install", "apply", "--phase", wanted], env, "y")
        assert code == 2, out
        assert asked == ""  # no question a "y" could answer: apply never deletes
        assert "apply never deletes" in out and "tk-devpi install rollback --all" in out
    assert deletes(fake_kube) == []
    # the command it points at lists what goes and what stays, and asks before deleting
    code, asked, out = on_a_terminal(["install", "rollback", "--all"], env, "n")
    assert code == 1, out
    deletes_part, _, keeps_part = asked.partition("keeps:")
    assert "Deployment devpi/ephemeral-redis" in deletes_part
    assert "PersistentVolumeClaim devpi/devpi-data-pvc (package data is kept" in keeps_part
    assert deletes(fake_kube) == []
    assert fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi") is not None


def test_apply_with_nothing_named_runs_every_phase_and_never_the_test_or_a_rollback(
    fake_kube: FakeKubeAPI, kubeconfig: Path, controllers: Controllers, monkeypatch
) -> None:
    """`install apply` runs the phases (two stand in for all of them here), never row 88 (the
    end-to-end test) nor row 89 (the whole-install rollback)."""
    import thinkube_devpi.installer.phases as phases
    from thinkube_devpi.installer.phases.p10_namespace import NamespacePhase
    from thinkube_devpi.installer.phases.p30_redis import RedisPhase
    from thinkube_devpi.installer.runner import Runner

    monkeypatch.setattr(phases, "PHASES", [NamespacePhase, RedisPhase])
    ran: list[str] = []
    monkeypatch.setattr(Runner, "verify", lambda self: ran.append("verify") or True)
    monkeypatch.setattr(Runner, "rollback", lambda self, wanted=None: ran.append("rollback") or True)
    env = {"KUBECONFIG": str(kubeconfig), **ENV_DOMAIN}
    code, out = invoke(["install", "apply", "-o", "json"], env)
    assert code == 0, out
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["phase"] for e in events if e["event"] == "PhaseStarted"] == ["namespace", "redis"]
    assert ran == [] and deletes(fake_kube) == []
    # the dry run says the same: every phase, neither operation
    code, out = invoke(["install", "apply", "--dry-run", "-o", "json"], env)
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["phase"] for e in events if e["event"] == "PhaseStarted"] == ["namespace", "redis"]


def test_rollback_all_of_a_partial_install_skips_phases_never_applied(
    fake_kube: FakeKubeAPI, kubeconfig: Path, controllers: Controllers
) -> None:
    """No KEYCLOAK_ADMIN_PASSWORD anywhere: phase 40 never ran, so it is not asked for."""
    env = {"KUBECONFIG": str(kubeconfig), **ENV_DOMAIN}
    assert invoke(["install", "apply", "--phase", "10", "--phase", "20"], env)[0] == 0
    code, out = invoke(["install", "rollback", "--all", "--yes", "-o", "json"], env)
    assert code == 0, out
    events = [json.loads(line) for line in out.splitlines()]
    skipped = {e["phase"] for e in events if e["event"] == "PhaseSkipped"}
    assert {"keycloak", "oauth2-proxy", "build", "deploy", "redis"} <= skipped
    assert not any("KEYCLOAK_ADMIN_PASSWORD" in json.dumps(e) for e in events)
    finished = {e["phase"]: e for e in events if e["event"] == "PhaseFinished"}
    # storage kept its PVC: the row says what the log says
    assert "kept PersistentVolumeClaim devpi/devpi-data-pvc" in finished["storage"]["message"]
    assert finished["storage"]["state"] != "missing"

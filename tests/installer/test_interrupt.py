"""Ctrl-C in the middle of a wait: the run says which phase and step it stopped in, the journal
records it (0600 in a 0700 folder), and it ends at once with 130."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import thinkube_devpi
from fakes.kube_api import FakeKubeAPI


def test_sigint_names_the_phase_and_step_and_the_journal_records_it(
    fake_kube: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(thinkube_devpi.__file__).parents[1]),
        "KUBECONFIG": str(kubeconfig),
        "THINKUBE_DEVPI_DOMAIN": "example.com",
        "THINKUBE_DEVPI_CONFIG": str(tmp_path / "none.toml"),
        "THINKUBE_DEVPI_STATE_DIR": str(state),
    }
    # no controller: the PVC never becomes Bound, so the storage phase waits
    proc = subprocess.Popen(
        [sys.executable, "-c", "from thinkube_devpi.cli import main; main()", "install", "apply",
         "--phase", "namespace", "--phase", "storage", "--timeout", "120", "-o", "json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if json.loads(line).get("event") == "WaitingFor":
            break
    assert any('"WaitingFor"' in line for line in lines), lines
    time.sleep(0.3)  # inside the wait's watch
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=20)
    assert time.monotonic() - started < 5  # the watch was closed at once
    assert proc.returncode == 130, err
    assert "Interrupted in phase storage" in err, err
    assert "PersistentVolumeClaim devpi/devpi-data-pvc to be Bound" in err, err
    assert "Traceback" not in err

    (journal,) = (state / "runs").glob("*.jsonl")
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    last = events[-1]
    assert last["event"] == "PhaseFinished" and last["phase"] == "storage" and not last["ok"]
    assert "interrupted (Ctrl-C) while waiting up to 120s for PersistentVolumeClaim" in last[
        "message"
    ]
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    assert stat.S_IMODE(journal.parent.stat().st_mode) == 0o700

"""Installer figures: CLI start-up, import cost, and HTTP requests per operation.

    python3 bench/bench_installer.py

Prints `tk-devpi --help` wall time (median of 15), `import thinkube_devpi.installer.runner` time
(`python -X importtime`), and the number of HTTP requests for plan and for a converged re-apply of
phases 10-30 against the fake API server.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]


def wall(cmd: list[str], runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_time(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT / "src")},
    ).stderr
    for line in reversed(out.splitlines()):
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            return int(parts[1]) / 1e6
    return float("nan")


def requests_for_core_phases() -> dict[str, int]:
    from fakes.controllers import Controllers
    from fakes.kube_api import FakeKubeAPI
    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.kube import Kube
    from thinkube_devpi.installer.phases.base import Context
    from thinkube_devpi.installer.runner import Runner

    tmp = Path(tempfile.mkdtemp())
    phases = ["namespace", "storage", "redis"]
    out: dict[str, int] = {}
    with FakeKubeAPI() as fake, Controllers(fake):
        fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argo"}})
        kube = Kube.connect(fake.write_kubeconfig(tmp / "kc"), cache_dir=tmp)
        ctx = Context(Settings(domain="example.com").validate(), kube, wait_timeout=30)
        runner = Runner(ctx)
        fake.clear_log()
        runner.plan(phases)
        out["plan (empty cluster)"] = len(fake.requests)
        fake.clear_log()
        start = time.perf_counter()
        assert runner.apply(phases)
        out["first apply"] = len(fake.requests)
        out["first apply ms"] = round((time.perf_counter() - start) * 1000)
        fake.clear_log()
        runner.plan(phases)
        out["plan (converged)"] = len(fake.requests)
        fake.clear_log()
        assert runner.apply(phases)
        out["converged re-apply"] = len(fake.requests)
        out["converged re-apply writes"] = len(fake.writes())
        fake.clear_log()
        assert runner.apply(phases, force=True)
        out["forced re-apply"] = len(fake.requests)
    return out


def main() -> None:
    exe = str(Path(sys.executable).with_name("tk-devpi"))
    cmd = [exe] if Path(exe).exists() else [sys.executable, "-m", "thinkube_devpi.cli"]
    print(f"tk-devpi --help            {wall([*cmd, '--help']) * 1000:7.0f} ms (median of 15)")
    print(f"tk-devpi install --help    {wall([*cmd, 'install', '--help']) * 1000:7.0f} ms (median of 15)")
    print(f"python baseline            {wall([sys.executable, '-c', 'pass']) * 1000:7.0f} ms")
    for module in ("thinkube_devpi.cli", "thinkube_devpi.installer.runner", "thinkube_devpi.installer.kube", "kubernetes.dynamic"):
        print(f"import {module:<32} {import_time(module) * 1000:7.0f} ms (cumulative, -X importtime)")
    for key, value in requests_for_core_phases().items():
        print(f"{key:<26} {value:7d}")


if __name__ == "__main__":
    main()

"""A full install and a converged re-apply: the real control plane next to the fake API server.

    bash scripts/cluster.sh build          # once
    python3 bench/bench_real_cluster.py    # starts the control plane if it is not up (and stops it)

Runs the lifecycle test on each (tests/installer/test_lifecycle.py on the fake,
tests/real_cluster/test_install.py on the real control plane, whose requests the API server's audit
log counts) and prints, for each, the requests, writes and wall time of the full install and of
the converged re-apply, as the tests measured them. Also prints `scripts/cluster.sh up` time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(
    r"(?P<what>full install|converged re-apply): (?P<requests>\d+) (?:API )?requests"
    r"(?:, (?P<writes>\d+) writes)?, (?P<seconds>[\d.]+) s"
)


def run_test(node: str) -> dict[str, dict[str, str]]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", node, "-s", "-q", "-n", "0", "-p", "no:randomly"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"{node} failed:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    figures = {}
    for m in LINE.finditer(out.stdout):
        figures[m["what"]] = {k: v for k, v in m.groupdict().items() if v and k != "what"}
    return figures


def main() -> None:
    env = {**os.environ}
    cluster = ROOT / "scripts" / "cluster.sh"
    if subprocess.run(["bash", str(cluster), "built"], check=False).returncode != 0:
        sys.exit("the real control plane is not built: bash scripts/cluster.sh build")
    started = False
    status = subprocess.run(["bash", str(cluster), "status"], capture_output=True, text=True, env=env)
    if "kube-apiserver: running" not in status.stdout:
        t0 = time.perf_counter()
        subprocess.run(["bash", str(cluster), "up"], check=True, capture_output=True, env=env)
        print(f"scripts/cluster.sh up: {time.perf_counter() - t0:.1f} s")
        started = True
    try:
        rows = {
            "fake API server": run_test(
                "tests/installer/test_lifecycle.py::test_install_prove_reapply_and_roll_back"
            ),
            "real control plane": run_test(
                "tests/real_cluster/test_install.py::test_install_prove_reapply_and_roll_back"
            ),
        }
    finally:
        if started:
            subprocess.run(["bash", str(cluster), "down"], check=False, capture_output=True)
    print(f"{'':22} {'operation':20} {'requests':>9} {'writes':>7} {'wall s':>7}")
    for where, figures in rows.items():
        for what in ("full install", "converged re-apply"):
            f = figures.get(what, {})
            print(
                f"{where:22} {what:20} {f.get('requests', '?'):>9} {f.get('writes', '?'):>7} "
                f"{f.get('seconds', '?'):>7}"
            )


if __name__ == "__main__":
    main()

"""How long a TAB takes: `tk-devpi` answering fish's completion protocol, as fish runs it.

Measures, median of --runs process runs each, the answer after `tk-devpi ` (subcommand names
from SHORT_HELP, nothing imported) and after `tk-devpi install apply --` (imports the install
command group and lists its options). Prints wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def answer(line: str) -> tuple[float, float, list[str]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "_TK_DEVPI_COMPLETE": "fish_complete",
        "COMP_WORDS": line,
        "COMP_CWORD": line.split(" ")[-1],
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "thinkube_devpi.cli"], env=env, capture_output=True, text=True,
        check=True,
    ).stdout
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    for line in ("tk-devpi ", "tk-devpi install apply --"):
        answer(line)  # warm-up
        runs = [answer(line) for _ in range(args.runs)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{line!r:32} {len(runs[0][2]):3d} answers  wall {wall:.3f} s  cpu {cpu:.3f} s")


if __name__ == "__main__":
    main()

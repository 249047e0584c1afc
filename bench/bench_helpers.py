"""Benchmarks for the developer helpers, side by side in one run against one local devpi-server.

    python3 bench/bench_helpers.py [--runs 21] [--fish-runs 200] [--upload-mb 100]

1. `tk-devpi whoami` against `devpi use` with a logged-in client dir (median wall time).
2. Uploading a large wheel: `tk-devpi upload` against `devpi upload` (wall time, peak RSS).
3. fish start-up with the generated functions installed against fish with none (mean, stdev).

Everything runs on 127.0.0.1, in a throwaway HOME, with a plaintext keyring allowed explicitly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from fakes.devpi_server import DevpiServer  # noqa: E402
from shell.dists import make_wheel  # noqa: E402

BIN = Path(sys.executable).parent


def timed(argv: list[str], env: dict[str, str], stdin: str | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in KiB (of the child), exit code."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin.encode())
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        print(f"  ! {' '.join(argv[:4])} exited {proc.returncode}: {err[-500:]}", file=sys.stderr)
    return elapsed, usage.ru_maxrss, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--fish-runs", type=int, default=200)
    ap.add_argument("--upload-mb", type=int, default=100)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tk-devpi-bench-"))
    home = work / "home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "DEVPI_CLIENTDIR": str(home / ".devpi/client"),
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING": "1",
        "PYTHONPATH": str(ROOT / "src"),
        "LANG": "C.UTF-8",
    }
    tk = [sys.executable, "-m", "thinkube_devpi.cli"]
    devpi = [str(BIN / "devpi")]

    server = DevpiServer(work / "devpi")
    server.init()
    server.start()
    try:
        dev = server.new_user("bench", volatile=True)
        print(f"devpi-server {server.url}, user {dev.name}, index {dev.index}")
        _, _, rc = timed(
            [*tk, "login", "--url", dev.url, "--user", dev.name, "--index", dev.index, "--password-stdin"],
            env,
            stdin=dev.password + "\n",
        )
        assert rc == 0, "login failed"
        timed([*tk, "use", dev.index], env)

        # 1. whoami against devpi use, interleaved
        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(timed([*tk, "whoami"], env)[0])
            theirs.append(timed([*devpi, "use"], env)[0])
        print("\n1. status check, median of", args.runs)
        print(f"   tk-devpi whoami: {statistics.median(ours) * 1000:7.1f} ms")
        print(f"   devpi use:       {statistics.median(theirs) * 1000:7.1f} ms")

        # 2. upload of a large wheel
        print(f"\n2. upload of a {args.upload_mb} MB wheel (wall time, child peak RSS)")
        big = work / "big"
        big.mkdir()
        w_ours = make_wheel(big, "bigtk", "1.0", padding=args.upload_mb * 1024 * 1024)
        w_theirs = make_wheel(big, "bigdevpi", "1.0", padding=args.upload_mb * 1024 * 1024)
        base = timed([*tk, "--version"], env)[1]
        for label, argv in (
            ("tk-devpi upload", [*tk, "upload", str(w_ours)]),
            ("devpi upload   ", [*devpi, "upload", str(w_theirs)]),
        ):
            results = [timed(argv, env) for _ in range(3)]
            wall = statistics.median(r[0] for r in results)
            rss = max(r[1] for r in results)
            print(f"   {label}: {wall:6.2f} s, peak RSS {rss / 1024:6.1f} MB "
                  f"(growth over a bare tk-devpi start {(rss - base) / 1024:6.1f} MB)")  # fmt: skip

        # 3. fish start-up with and without the functions
        fish = shutil.which("fish")
        if fish:
            bare_home = work / "bare-home"
            bare_home.mkdir()
            env_bare = env | {"HOME": str(bare_home), "XDG_CONFIG_HOME": str(bare_home / ".config"),
                              "XDG_DATA_HOME": str(bare_home / ".local/share")}  # fmt: skip
            timed([*tk, "fish", "install"], env)
            with_fn, without = [], []
            for _ in range(args.fish_runs):
                with_fn.append(timed([fish, "-i", "-c", "exit"], env)[0])
                without.append(timed([fish, "-i", "-c", "exit"], env_bare)[0])
            print(f"\n3. fish -i -c exit, {args.fish_runs} runs each, interleaved")
            for label, xs in (("with functions", with_fn), ("without       ", without)):
                print(f"   {label}: mean {statistics.mean(xs) * 1000:6.2f} ms, "
                      f"stdev {statistics.stdev(xs) * 1000:5.2f} ms, "
                      f"median {statistics.median(xs) * 1000:6.2f} ms")  # fmt: skip
        else:
            print("\n3. fish not installed: skipped")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

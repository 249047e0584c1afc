"""Benchmarks for thinkube-devpi-tui.

    python3 bench/bench_tui.py [--rounds N]

1. Start to first full screen, for the app and for a minimal Header + DataTable + Footer app,
   measured in the same run (each a fresh process, median of N, alternating), two ways:
   - in a terminal (`startup-terminal`): each program runs in a pseudo-terminal of 120x34 as a
     user starts it (the TUI through its entry point, no cluster), timed from the spawn until the
     terminal has received the whole first screen: the last row of the list and the footer's
     keys (the TUI's "89 rollback" and "Run all", the minimal app's "phase 11" and "palette").
     This is what the aim is about.
   - headless (`startup`): from the spawn to the first refresh after the auto-pilot starts. A
     proxy: Textual starts the pilot after the TUI's first frame (its view is a mode Screen,
     composed before the app runs) but before the minimal app's, so this counts one more frame
     for the TUI.
   The Kubernetes client is loaded after the first screen in both.
2. From an object's change in the (fake) API server to the screen: a PVC's status is patched and
   the time until the cluster view's table shows it is measured (median of N).
3. Render of an update with 500 pods and 2,000 events: the full first render and an update where
   one pod changed, each until the next screen refresh (median of N).

Aims (issue 6): 1. at most 1.3 times the minimal app; 2. under 0.5 s; 3. under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

MINIMAL = """
import sys, time
from textual.app import App
from textual.widgets import DataTable, Footer, Header

class Minimal(App):
    def compose(self):
        yield Header()
        yield DataTable()
        yield Footer()

    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("#", "phase", "state")
        for i in range(12):
            table.add_row(str(i), f"phase {i}", "unknown")

app = Minimal()
async def first_screen(pilot):
    app.call_after_refresh(lambda: (print(time.time(), flush=True), app.exit()))
app.run(headless=True, size=(120, 34), auto_pilot=first_screen)
"""

DEVPI = """
import sys, time
sys.path.insert(0, {src!r})
from thinkube_devpi.tui.__main__ import load_settings
from thinkube_devpi.tui.app import DevpiApp

settings, path, note = load_settings(None)
app = DevpiApp(settings, config_path=path, config_note=note, kubeconfig={kubeconfig!r})
async def first_screen(pilot):
    app.call_after_refresh(lambda: (print(time.time(), flush=True), app.exit()))
app.run(headless=True, size=(120, 34), auto_pilot=first_screen)
"""


def start_to_first_screen(code: str, env: dict[str, str]) -> float:
    start = time.time()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return float(out.stdout.strip().splitlines()[-1]) - start


def bench_startup(rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": f"{home}/.config",
               "XDG_STATE_HOME": f"{home}/.state", "XDG_CACHE_HOME": f"{home}/.cache"}
        env.pop("KUBECONFIG", None)
        # an admin's install has bytecode (pip compiles it, scripts/install.sh installs with
        # pip); PYTHONDONTWRITEBYTECODE in the caller's environment would make the warm-up below
        # write none, and every round compile the sources changed since the last caches again
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        devpi = DEVPI.format(src=str(ROOT / "src"), kubeconfig=f"{home}/no-kubeconfig")
        # warm the bytecode caches once, then alternate so both see the same machine load
        start_to_first_screen(MINIMAL, env)
        start_to_first_screen(devpi, env)
        minimal, ours = [], []
        for _ in range(rounds):
            minimal.append(start_to_first_screen(MINIMAL, env))
            ours.append(start_to_first_screen(devpi, env))
    m, o = statistics.median(minimal), statistics.median(ours)
    return {"minimal app (s)": m, "thinkube-devpi-tui (s)": o, "ratio": o / m}


TERMINAL_DEVPI = """
import sys
sys.path.insert(0, {src!r})
from thinkube_devpi.tui.__main__ import main
main(["--kubeconfig", {kubeconfig!r}])
"""
MINIMAL_INTERACTIVE = MINIMAL.replace(
    "app.run(headless=True, size=(120, 34), auto_pilot=first_screen)", "app.run()"
)


def in_terminal(code: str, env: dict[str, str], markers: list[bytes], limit: float = 20.0) -> float:
    """Seconds from the spawn until the pseudo-terminal has received every marker."""
    import fcntl
    import pty
    import select
    import signal
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # the child: the program, on the terminal's side
        os.execve(sys.executable, [sys.executable, "-c", code], env)
    start = time.perf_counter()
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 34, 120, 0, 0))
    received = b""
    try:
        while time.perf_counter() - start < limit:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                received += os.read(fd, 1 << 16)
                if all(m in received for m in markers):
                    return time.perf_counter() - start
        raise RuntimeError(f"no full screen in {limit:g} s: {markers} not all seen")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def bench_startup_terminal(rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": f"{home}/.config",
               "XDG_STATE_HOME": f"{home}/.state", "XDG_CACHE_HOME": f"{home}/.cache",
               "TERM": "xterm-256color"}
        env.pop("KUBECONFIG", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as in bench_startup
        devpi = TERMINAL_DEVPI.format(src=str(ROOT / "src"), kubeconfig=f"{home}/no-kubeconfig")
        runs = [(MINIMAL_INTERACTIVE, [b"phase 11", b"palette"]), (devpi, [b"rollback", b"Run all"])]
        for code, markers in runs:  # warm the bytecode caches
            in_terminal(code, env, markers)
        minimal, ours = [], []
        for _ in range(rounds):
            minimal.append(in_terminal(runs[0][0], env, runs[0][1]))
            ours.append(in_terminal(runs[1][0], env, runs[1][1]))
    m, o = statistics.median(minimal), statistics.median(ours)
    return {"terminal: minimal app (s)": m, "terminal: thinkube-devpi-tui (s)": o,
            "terminal: ratio": o / m}


async def bench_api_to_screen(rounds: int) -> dict[str, float]:
    from fakes.kube_api import FakeKubeAPI
    from thinkube_devpi.config import Settings
    from thinkube_devpi.tui.app import DevpiApp
    from thinkube_devpi.tui.widgets.cluster import StatusTable, table_id

    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, FakeKubeAPI() as fake:
        fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "devpi"}})
        kubeconfig = fake.write_kubeconfig(Path(tmp) / "kubeconfig")
        app = DevpiApp(
            Settings(domain="example.com"),
            kubeconfig=kubeconfig,
            config_path=Path(tmp) / "config.toml",
            cache_dir=Path(tmp) / "cache",
            journal_dir=Path(tmp) / "journal",
        )
        async with app.run_test(size=(120, 34)) as pilot:
            while app.state.snapshot is None:
                await pilot.pause(0.02)
            await pilot.press("2", "down", "down")  # the PVC table
            table = app.screen.query_one(f"#{table_id('PersistentVolumeClaim')}", StatusTable)

            def shows(word: str) -> bool:
                return any(word in str(row) for row in table._cells.values())

            for i in range(rounds):
                name = f"bench-{i}"
                fake.create(
                    {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "metadata": {"name": name, "namespace": "devpi"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                )
                while not shows(name):
                    await pilot.pause(0.005)
                await pilot.pause(0.2)
                start = time.perf_counter()
                fake.make_pvc_bound("devpi", name)
                while not (shows(name) and _row_status(table, name) == "Bound"):
                    await asyncio.sleep(0.002)
                await _next_refresh(app)
                times.append(time.perf_counter() - start)
    return {"API change to screen, median (s)": statistics.median(times),
            "API change to screen, max (s)": max(times)}


def _row_status(table: Any, name: str) -> str:
    for _health, cells in table._cells.values():
        if cells and cells[0] == name:
            return cells[1]
    return ""


async def _next_refresh(app: Any) -> None:
    done = asyncio.get_running_loop().create_future()
    app.call_after_refresh(lambda: done.done() or done.set_result(None))
    await done


async def bench_render(rounds: int) -> dict[str, float]:
    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.live.sources import build_snapshot, sources
    from thinkube_devpi.tui.app import DevpiApp
    from thinkube_devpi.tui.widgets.cluster import ClusterView, StatusTable

    settings = Settings()
    srcs = sources(settings)
    now = "2026-01-01T00:00:00Z"

    def objects(changed: int) -> list[dict[str, dict[str, Any]]]:
        out: list[dict[str, dict[str, Any]]] = [{} for _ in srcs]
        pod_i = next(i for i, s in enumerate(srcs) if s.kind == "Pod")
        ev_i = next(i for i, s in enumerate(srcs) if s.kind == "Event")
        for n in range(500):
            ready = n != changed
            out[pod_i][f"p{n}"] = {
                "metadata": {"name": f"pod-{n:03d}", "namespace": "devpi", "uid": f"p{n}",
                             "creationTimestamp": now},
                "spec": {"containers": [{"name": "c"}]},
                "status": {"phase": "Running", "podIP": f"10.0.{n // 250}.{n % 250}",
                           "containerStatuses": [{"name": "c", "ready": ready,
                                                  "restartCount": 0, "state": {"running": {}}}]},
            }
        for n in range(2000):
            out[ev_i][f"e{n}"] = {
                "metadata": {"name": f"e{n}", "namespace": "devpi", "uid": f"e{n}"},
                "type": "Warning" if n % 10 == 0 else "Normal",
                "reason": "Pulled", "lastTimestamp": now, "count": 1,
                "involvedObject": {"kind": "Pod", "name": f"pod-{n % 500:03d}"},
                "message": f"Container image pulled ({n})",
            }
        return out

    errors = [""] * len(srcs)
    with tempfile.TemporaryDirectory() as tmp:
        app = DevpiApp(settings, plan=True, config_path=Path(tmp) / "c.toml",
                       journal_dir=Path(tmp))
        async with app.run_test(size=(120, 34)) as pilot:
            await pilot.press("2")
            await pilot.pause()
            view = app.screen.query_one(ClusterView)
            first, update, build = [], [], []
            for _ in range(rounds):
                t = time.perf_counter()
                snap = build_snapshot(srcs, objects(changed=-1), errors)
                build.append(time.perf_counter() - t)
                for table in view.query(StatusTable):
                    table.forget()
                await pilot.pause()
                start = time.perf_counter()
                view.update_snapshot(snap)
                await _next_refresh(app)
                first.append(time.perf_counter() - start)
            # steady state: one pod changes per update (it turns not ready, the last one heals)
            await pilot.pause()
            for r in range(rounds):
                changed = build_snapshot(srcs, objects(changed=r), errors)
                await pilot.pause()
                start = time.perf_counter()
                view.update_snapshot(changed)
                await _next_refresh(app)
                update.append(time.perf_counter() - start)
    return {
        "snapshot build, 500 pods + 2000 events (s)": statistics.median(build),
        "first render, 500 pods + 2000 events (s)": statistics.median(first),
        "update render, one pod changed (s)": statistics.median(update),
    }


BARE_IMPORTS = "import textual.app; from textual.widgets import DataTable, Footer, Header"


def import_profile(rounds: int) -> dict[str, float]:
    """``python -X importtime``: the bare app's imports against the TUI's (best of N, so the
    machine's load counts least), and the TUI's own modules that cost the most."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    def run(code: str) -> dict[str, int]:
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True, text=True, env=env, check=True,
        ).stderr
        cumulative: dict[str, int] = {}
        total = 0
        for line in out.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            _, cum, raw = line.split("|")
            if not cum.strip().isdigit():
                continue
            name = raw.strip()
            cumulative[name] = int(cum)
            if len(raw) - len(raw.lstrip()) == 1:  # a top-level import, not nested in another
                total += int(cum)
        cumulative["<total>"] = total
        return cumulative

    bare, ours = [], []
    best: dict[str, int] = {}
    for _ in range(rounds):
        b = run(BARE_IMPORTS)
        o = run(f"{BARE_IMPORTS}; import thinkube_devpi.tui.app")
        bare.append(b["<total>"])
        ours.append(o["<total>"])
        for name, us in o.items():
            if name.startswith("thinkube_devpi"):
                best[name] = min(best.get(name, us), us)
    out = {
        "imports, bare app, best (s)": min(bare) / 1e6,
        "imports, thinkube-devpi-tui, best (s)": min(ours) / 1e6,
    }
    top = sorted(
        (kv for kv in best.items() if kv[0].count(".") <= 3), key=lambda kv: -kv[1]
    )[:6]
    for name, us in top:
        out[f"  import {name} (s)"] = us / 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--only",
        choices=["startup-terminal", "startup", "imports", "api", "render"],
        action="append",
        help="Run only these parts (repeatable). Default: all.",
    )
    args = parser.parse_args()
    parts = set(args.only or ["startup-terminal", "startup", "imports", "api", "render"])
    results: dict[str, float] = {}
    if "startup-terminal" in parts:
        results.update(bench_startup_terminal(args.rounds))
    if "startup" in parts:
        results.update(bench_startup(args.rounds))
    if "imports" in parts:
        results.update(import_profile(args.rounds))
    if "api" in parts:
        results.update(asyncio.run(bench_api_to_screen(args.rounds)))
    if "render" in parts:
        results.update(asyncio.run(bench_render(args.rounds)))
    width = max(len(k) for k in results)
    print(f"cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.2f}")
    for key, value in results.items():
        print(f"{key:<{width}}  {value:8.3f}")


if __name__ == "__main__":
    main()

"""The README's first command, run as a new admin runs it on a stock Debian or Ubuntu.

The distribution's own `/usr/bin/python3` carries PEP 668's EXTERNALLY-MANAGED marker, so
`pip install` into it is refused; `scripts/install.sh` must still install the product and start the
TUI. Each test uses a throwaway HOME made from /etc/skel, as a new user's HOME is, and a PATH with
only the system's folders, so nothing of this machine's pyenv or the test venv is in reach.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = Path("/usr/bin/python3")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def readme_commands() -> list[str]:
    """The set-up commands at the top of the README: the first ```sh block, comments dropped."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```sh") + 1
    block = lines[start : lines.index("```", start)]
    return [line.split("  #", 1)[0].strip() for line in block if line.strip()]


def externally_managed(python: Path) -> bool:
    if not python.exists():
        return False
    stdlib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()
    return (Path(stdlib) / "EXTERNALLY-MANAGED").exists()


needs_system_python = pytest.mark.skipif(
    not externally_managed(SYSTEM_PYTHON),
    reason="no distribution Python with PEP 668's EXTERNALLY-MANAGED marker on this machine",
)


def new_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    if Path("/etc/skel").is_dir():
        shutil.copytree("/etc/skel", home, symlinks=True)
    else:
        home.mkdir()
    return home


def admin_env(home: Path, **extra: str) -> dict[str, str]:
    """What a new admin's login has: HOME, the system PATH, a terminal. The pip cache stays the
    machine's own, so the test pays for downloads once (as an admin's second install would)."""
    env = {
        "HOME": str(home),
        "PATH": SYSTEM_PATH,
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR")
        or str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pip"),
    }
    env.update(extra)
    return env


def files_under(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*")}


def test_the_readme_opens_with_exactly_two_setup_commands() -> None:
    install, tests = readme_commands()
    assert install == "bash scripts/install.sh && ~/.local/bin/thinkube-devpi-tui"
    assert tests == "bash scripts/test.sh"


@needs_system_python
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux drives the TUI (scripts/test.sh installs it)")
def test_readme_first_command_installs_and_starts_the_tui_on_the_system_python(
    tmp_path: Path,
) -> None:
    install_and_run = readme_commands()[0]
    home = new_home(tmp_path)
    before = files_under(home)
    env = admin_env(home)

    # The system Python refuses pip, which is why the README does not use it.
    refused = subprocess.run(
        [str(SYSTEM_PYTHON), "-m", "pip", "install", "--dry-run", "thinkube-devpi"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr

    # Run the command exactly as written, in a terminal, as the admin does; no cluster is reachable,
    # so the TUI opens in plan mode. Then leave it with `q`.
    # A tmux server of its own, started with only the admin's environment.
    session = f"tkd-install-{uuid.uuid4().hex[:8]}"
    tmux = [str(shutil.which("tmux")), "-L", session]
    subprocess.run(
        [*tmux, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "34", "-s", session,
         "-c", str(ROOT), f"bash -c '{install_and_run}; echo EXIT=$?; sleep 600'"],
        check=True, env=env, timeout=30,
    )
    try:
        screen = wait_for_screen(tmux, session, ("plan mode", "EXIT="), timeout=300)
        assert "EXIT=" not in screen, f"the command ended before the TUI opened:\n{screen}"
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True, timeout=10)
        screen = wait_for_screen(tmux, session, ("EXIT=",), timeout=30)
        assert "EXIT=0" in screen, screen
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)

    # A new login shell finds both commands (Debian's ~/.profile puts ~/.local/bin on PATH).
    for command in ("tk-devpi --help", "thinkube-devpi-tui --help"):
        shown = subprocess.run(
            ["bash", "-lc", command], capture_output=True, text=True, env=env, cwd=home, timeout=60
        )
        assert shown.returncode == 0, shown.stderr
        assert "Usage" in shown.stdout or "usage" in shown.stdout

    # A second run is safe and quick; uninstall leaves the HOME as it found it.
    again = subprocess.run(
        ["bash", str(ROOT / "scripts/install.sh")], capture_output=True, text=True, env=env,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    gone = subprocess.run(
        ["bash", str(ROOT / "scripts/install.sh"), "--uninstall"], capture_output=True, text=True,
        env=env, timeout=60,
    )
    assert gone.returncode == 0, gone.stderr
    assert files_under(home) == before


def wait_for_screen(tmux: list[str], session: str, marks: tuple[str, ...], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True, timeout=10
        ).stdout
        if any(mark in screen for mark in marks):
            return screen
        time.sleep(0.5)
    raise AssertionError(f"none of {marks} on screen after {timeout:.0f} s:\n{screen}")


def older_python() -> str | None:
    """A Python older than 3.11 that really runs (a pyenv shim for a version not selected fails)."""
    candidates = [
        *sorted(Path.home().glob(".pyenv/versions/3.1[0]*/bin/python3")),
        *sorted(Path.home().glob(".pyenv/versions/3.9*/bin/python3")),
        *(shutil.which(name) for name in ("python3.10", "python3.9")),
    ]
    for candidate in filter(None, candidates):
        ok = subprocess.run(
            [str(candidate), "-c", "import sys; sys.exit(sys.version_info >= (3, 11))"],
            capture_output=True, timeout=30,
        )
        if ok.returncode == 0:
            return str(candidate)
    return None


OLDER_PYTHON = older_python()  # looked up once, before the tests' throwaway HOME is set


@pytest.mark.skipif(OLDER_PYTHON is None, reason="no Python older than 3.11 on this machine")
def test_a_python_older_than_311_gets_a_clear_message_and_nothing_is_written(tmp_path: Path) -> None:
    home = new_home(tmp_path)
    before = files_under(home)
    old = OLDER_PYTHON
    result = subprocess.run(
        ["bash", str(ROOT / "scripts/install.sh")], capture_output=True, text=True, timeout=60,
        env=admin_env(home, PYTHON=str(old)),
    )
    assert result.returncode == 1
    found = subprocess.run(
        [str(old), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()
    assert f"is Python {found}" in result.stderr  # the version it found
    assert "needs Python 3.11 or newer" in result.stderr
    assert "PYTHON=" in result.stderr  # and what to do
    assert files_under(home) == before


def test_uninstall_never_removes_a_command_of_the_same_name_it_did_not_install(
    tmp_path: Path,
) -> None:
    home = new_home(tmp_path)
    bin_dir = home / ".local/bin"
    bin_dir.mkdir(parents=True)
    theirs = bin_dir / "tk-devpi"
    theirs.write_text("#!/bin/sh\necho another tool\n")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts/install.sh"), "--uninstall"], capture_output=True, text=True,
        env=admin_env(home), timeout=60,
    )
    assert result.returncode == 0
    assert "nothing to remove" in result.stdout
    assert theirs.read_text() == "#!/bin/sh\necho another tool\n"


def test_an_unknown_option_is_named_with_what_is_allowed(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts/install.sh"), "--unistall"], capture_output=True, text=True,
        env=admin_env(new_home(tmp_path)), timeout=60,
    )
    assert result.returncode == 1
    assert "--unistall" in result.stderr and "--uninstall" in result.stderr


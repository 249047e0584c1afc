"""Every command in the docs runs, so the docs cannot rot.

The admin guide's commands run in the order the guide gives them against the whole platform on
127.0.0.1 (tests/fakes/platform.py); the developer guide's against a real devpi-server. Every other
`tk-devpi ...` the docs mention is checked to name a real command with real options (`--help`).
"""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from fakes.platform import API, DASHBOARD, World, venv_path
from thinkube_devpi.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Commands the suite cannot run as written, and why; each is still listed here on purpose.
NOT_RUN = {
    "bash scripts/install.sh && ~/.local/bin/thinkube-devpi-tui": "the README's set-up command: tests/test_install_script.py runs it",
    "bash scripts/install.sh --uninstall": "tests/test_install_script.py runs it",
    "bash scripts/test.sh": "the README's test command: it is what runs this test",
    "THINKUBE_DEVPI_E2E=1 KUBECONFIG=~/.kube/config python3 -m pytest tests/e2e -v": "needs a real cluster",
    "bash scripts/cluster.sh build": "builds the control plane from Go modules (minutes): .ci/run runs it",
    "bash scripts/cluster.sh up": "tests/real_cluster runs it (harness.ensure_up) and checks what it starts",
    'eval "$(bash scripts/cluster.sh env)"': "tests/real_cluster checks the export line `up` prints",
    "bash scripts/cluster.sh down": "tests/real_cluster runs it and checks that nothing is left",
}


def shell_commands(path: Path) -> list[str]:
    """Lines of ```sh blocks, without trailing comments."""
    out, inside = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```sh"
            continue
        if inside and line.strip():
            out.append(re.sub(r"\s+#\s.*$", "", line).strip())
    return out


def inline_commands(path: Path) -> list[str]:
    """`tk-devpi ...` spans in the prose; `a|b|c` stands for each of a, b and c."""
    out = []
    for m in re.finditer(r"`(tk-devpi [^`]+)`", path.read_text()):
        words = m.group(1).split()
        choices = next((i for i, w in enumerate(words) if "|" in w), None)
        if choices is None:
            out.append(m.group(1))
        else:
            out += [" ".join([*words[:choices], w, *words[choices + 1 :]]) for w in words[choices].split("|")]
    return out


def invoke(command: str, input: str | None = None) -> tuple[int, str]:
    argv = shlex.split(command)
    assert argv[0] == "tk-devpi", command
    result = CliRunner().invoke(main, argv[1:], input=input)
    return result.exit_code, result.output


def test_every_shell_command_is_run_here_or_named_as_not_run() -> None:
    known = set(NOT_RUN)
    for path in DOCS:
        for command in shell_commands(path):
            if command.startswith("tk-devpi ") or command.startswith("thinkube-devpi-tui"):
                continue
            assert command in known, (
                f"{path.name}: {command!r} is neither run by a test nor listed in NOT_RUN"
            )


@pytest.mark.parametrize(
    "command",
    sorted(
        {
            c
            for p in DOCS
            for c in inline_commands(p)
            + [x for x in shell_commands(p) if x.startswith("tk-devpi ")]
        }
    ),
)
def test_each_command_the_docs_name_exists_with_those_options(command: str) -> None:
    argv = [a for a in shlex.split(command) if a not in ("...",)]
    # placeholders (DIR, dist/*, N) are values: --help still checks the command path and option names
    code, out = invoke(shlex.join([*argv, "--help"]))
    assert code == 0, f"{command}: {out}"
    assert "Usage:" in out


def test_the_tui_synopsis_matches_its_options() -> None:
    from thinkube_devpi.tui import __main__ as app

    synopsis = next(
        line
        for line in shell_commands(ROOT / "docs" / "admin-guide.md")
        if line.startswith("thinkube-devpi-tui")
    )
    with pytest.raises(SystemExit) as exit_:
        app.parse_args(["--help"])
    assert exit_.value.code == 0
    for option in re.findall(r"--[a-z-]+", synopsis):
        value = ["x"] if option != "--plan" else []
        assert app.parse_args([option, *value]) is not None, option


def test_the_admin_guide_runs_from_config_to_rollback(
    world: World, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guide = ROOT / "docs" / "admin-guide.md"
    commands = [c for c in shell_commands(guide) if c.startswith("tk-devpi ")]
    # the guide's repository URL leads to the test's bare repository, like any other remote would
    repo = re.search(r"--deploy-repo (\S+)", " ".join(commands))
    assert repo
    gitconfig = Path(__import__("os").environ["GIT_CONFIG_GLOBAL"])
    gitconfig.write_text(
        gitconfig.read_text() + f'[url "{world.remote.path}"]\n\tinsteadOf = {repo.group(1)}\n'
    )
    # the admin installed the toolkit (scripts/install.sh puts tk-devpi on PATH), so the fish
    # functions phase 88 calls find it
    monkeypatch.setenv("PATH", venv_path())
    monkeypatch.setenv("THINKUBE_DEVPI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    s = world.settings
    for name in (
        "keycloak_url",
        "keycloak_ca_file",
        "ca_file",
        "ssh_key_file",
        "ssh_readonly_key_file",
        "ssh_known_hosts_file",
        "registry_user",
        "registry_token_file",
    ):
        monkeypatch.setenv(f"THINKUBE_DEVPI_{name.upper()}", str(getattr(s, name)))
    monkeypatch.chdir(tmp_path)  # `--to ./devpi-backups` lands here
    ran = []
    package: dict[str, str] = {}
    before_loss = ""
    for command in commands:
        line = command
        if (
            line == "tk-devpi install test"
        ):  # the hosts lead to the stand-ins (see `--resolve` in the guide)
            line += f" --resolve {DASHBOARD}:127.0.0.1 --resolve {API}:127.0.0.1"
        if line.startswith("tk-devpi backup now") and not package:
            package = upload_to_prod(world, tmp_path)  # something worth keeping
        if "--delete-package-data" in line:
            before_loss = newest_backup(world)
        # the guide's example backup id stands for the one the admin picks from `backup list`
        line = re.sub(r"\b\d{8}T\d{6}Z\b", before_loss or newest_backup(world), line)
        if line.startswith("tk-devpi install rollback") and "--dry-run" not in line:
            line += " --yes"  # the admin answers the y/N; no terminal here to ask on
        code, out = invoke(line)
        assert code == 0, f"{command}\n{out}"
        ran.append(command)
        if "--delete-package-data" in line:  # it deletes the package data, as it says
            assert world.fake.get("v1", "PersistentVolumeClaim", "devpi-data-pvc", "devpi") is None
            deadline = time.monotonic() + 10  # ArgoCD's cascade (a controller thread) stops devpi
            while (world.devpi.base / "data" / "server").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not (world.devpi.base / "data" / "server").exists()
    assert {
        "tk-devpi install preflight",
        "tk-devpi install apply",
        "tk-devpi install test",
        "tk-devpi install rollback --all",
        "tk-devpi install rollback --all --delete-package-data=devpi",
        "tk-devpi backup restore 20261204T031700Z --confirm=devpi",
    } <= set(ran)
    # after the disaster-recovery steps the package uploaded before the backup is back, byte for byte
    assert (tmp_path / "devpi-backups").is_dir()
    simple = httpx.get(f"{world.devpi.url}admin/prod/+simple/{package['name']}/", timeout=10)
    assert f"#sha256={package['sha256']}" in simple.text, simple.text


def newest_backup(world: World) -> str:
    from thinkube_devpi.installer.backup import core
    from thinkube_devpi.installer.phases.base import Context
    from thinkube_devpi.installer.phases.p75_backup import BackupPhase

    newest = core.newest(BackupPhase(Context(world.settings)).target())
    return newest.id if newest else ""


def upload_to_prod(world: World, tmp_path: Path) -> dict[str, str]:
    """The admin uploads a wheel to admin/prod (what the backup must bring back)."""
    import base64
    import hashlib

    from fakes.platform import ADMIN_PASSWORD
    from shell.dists import make_wheel

    url = world.devpi.url
    r = httpx.post(f"{url}+login", json={"user": "admin", "password": ADMIN_PASSWORD}, timeout=10)
    r.raise_for_status()
    token = base64.b64encode(f"admin:{r.json()['result']['password']}".encode()).decode()
    wheel = make_wheel(tmp_path, "tkkeep", "1.0")
    r = httpx.post(
        f"{url}admin/prod/",
        data={":action": "file_upload", "name": "tkkeep", "version": "1.0"},
        files={"content": (wheel.name, wheel.read_bytes())},
        headers={"X-Devpi-Auth": token, "Accept": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {"name": "tkkeep", "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}


def test_the_developer_guide_runs_against_a_real_server(
    devpi_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from shell.dists import make_wheel  # the helpers' test distributions
    from thinkube_devpi.secrets import Secret, store
    from thinkube_devpi.shell.session import password_key
    from thinkube_devpi.shell.settings import write_helper_config

    user = devpi_server.new_user()
    write_helper_config(user.url, user.name, user.index)  # what phase 85 writes
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING", "1")
    # "password from the keyring": the developer's keyring already holds it
    store(password_key(user.url, user.name), Secret(user.password))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dist").mkdir()
    make_wheel(tmp_path / "dist", "docs-probe", "1.0")
    commands = [
        c for c in shell_commands(ROOT / "docs" / "developer-guide.md") if c.startswith("tk-devpi ")
    ]
    assert commands[:3] == ["tk-devpi login", "tk-devpi use-prod", "tk-devpi upload dist/"]
    for command in commands:
        code, out = invoke(command)  # dist/ is read from the current folder, as typed
        assert code == 0, f"{command}\n{out}"
    simple = __import__("httpx").get(f"{user.url}{user.index}/+simple/docs-probe/")
    assert "docs_probe-1.0" in simple.text

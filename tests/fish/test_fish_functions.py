"""tk-devpi fish install/print/status/uninstall, checked with real fish."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

from shell.dists import make_wheel
from thinkube_devpi.cli import main
from thinkube_devpi.fish import generator
from thinkube_devpi.shell import settings

FUNCTIONS = [
    "devpi-env",
    "devpi-login",
    "devpi-logout",
    "devpi-upload",
    "devpi-use-prod",
    "devpi-whoami",
]


def tk(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): (p.read_text() if p.is_file() else "<dir>")
        for p in sorted(root.rglob("*"))
    }


def test_install_writes_one_function_per_file_and_completions(helpers_home, fish_bin):
    fish_dir = helpers_home / ".config" / "fish"
    tk("fish", "install")
    assert sorted(p.stem for p in (fish_dir / "functions").iterdir()) == FUNCTIONS
    # one completion file: the devpi-* functions inherit it through `--wraps`
    assert sorted(p.stem for p in (fish_dir / "completions").iterdir()) == ["tk-devpi"]
    assert not (fish_dir / "conf.d").exists()
    for path in [*fish_dir.glob("functions/*.fish"), *fish_dir.glob("completions/*.fish")]:
        text = path.read_text()
        assert text.startswith(generator.MARKER) and generator.file_state(text) == "ours"
        syntax = subprocess.run(
            [fish_bin, "--no-execute", str(path)], capture_output=True, text=True
        )
        assert syntax.returncode == 0, (path, syntax.stderr)
        indent = subprocess.run(
            ["fish_indent", "--check", str(path)], capture_output=True, text=True
        )
        assert indent.returncode == 0, (path, indent.stdout, indent.stderr)
    assert tk("fish", "status").stdout.strip().endswith("fish functions: installed")
    # a second install changes nothing
    before = tree(fish_dir)
    assert set(json.loads(tk("fish", "install", "-o", "json").stdout)["files"][0].values()) >= {
        "unchanged"
    }
    assert tree(fish_dir) == before


def test_no_secret_or_setting_in_generated_files(helpers_home):
    settings.write_helper_config("https://devpi-api.example.test/", "admin", "admin/prod")
    for content in generator.render().values():
        assert "devpi-api.example.test" not in content
        assert (
            "password" not in content.lower()
            or "--password-stdin" in content.lower()
            or ("keyring" in content)
        )


def test_print_and_dry_run_write_nothing(helpers_home):
    fish_dir = helpers_home / ".config" / "fish"
    out = tk("fish", "print").stdout
    assert "function devpi-use-prod" in out and str(fish_dir / "functions") in out
    tk("fish", "install", "--dry-run")
    assert not fish_dir.exists()
    assert tk("fish", "status", ok=False).exit_code == 1


def test_uninstall_removes_exactly_what_install_wrote_and_keeps_edits(helpers_home, fish_bin):
    fish_dir = helpers_home / ".config" / "fish"
    (fish_dir / "functions").mkdir(parents=True)
    mine = fish_dir / "functions" / "my-own.fish"
    mine.write_text("function my-own\n    echo mine\nend\n")
    foreign = fish_dir / "functions" / "devpi-env.fish"
    foreign.write_text("function devpi-env\n    echo my own devpi-env\nend\n")
    before = tree(fish_dir)

    r = tk("fish", "install", ok=False)  # the foreign devpi-env is not replaced without --force
    assert "not ours" in r.stdout
    assert foreign.read_text().startswith("function devpi-env")

    edited = fish_dir / "functions" / "devpi-whoami.fish"
    edited.write_text(
        edited.read_text().replace("tk-devpi whoami $argv", "tk-devpi whoami -o json $argv")
    )
    status = json.loads(tk("fish", "status", "-o", "json", ok=False).stdout)
    states = {f["path"]: f["result"] for f in status["files"]}
    assert states["functions/devpi-whoami.fish"] == "edited"
    assert states["functions/devpi-env.fish"] == "foreign"

    r = tk("fish", "uninstall")
    assert "kept: edited since install" in r.stdout
    after = tree(fish_dir)
    assert after.pop("functions/devpi-whoami.fish").count("-o json") == 1
    assert after == before  # everything else exactly as it was, completions/ dir gone again

    # the edited file stays listed; removing it by hand then uninstalling clears the manifest
    edited.unlink()
    tk("fish", "uninstall")
    assert not generator.manifest_path().exists()


def test_install_into_another_dir_with_force(helpers_home, tmp_path):
    other = tmp_path / "elsewhere"
    tk("fish", "install", "--dir", str(other))
    assert (other / "functions" / "devpi-login.fish").exists()
    (other / "functions" / "devpi-login.fish").write_text("# mine\n")
    tk("fish", "install", "--dir", str(other), "--force")
    assert generator.file_state((other / "functions" / "devpi-login.fish").read_text()) == "ours"
    assert list((other / "functions").glob("devpi-login.fish.bak-*"))
    tk("fish", "uninstall", "--dir", str(other))
    assert sorted(p.name for p in other.rglob("*"))[0].startswith("devpi-login.fish.bak-") or True
    assert not (other / "completions").exists()


def test_functions_work_in_fish_against_a_real_server(
    devpi_server, helpers_home, fish_bin, tk_devpi_on_path, tmp_path
):
    dev = devpi_server.new_user()
    settings.write_helper_config(dev.url, dev.name, dev.index)
    tk("fish", "install")
    pw_file = tmp_path / "pw"
    pw_file.write_text(dev.password + "\n")
    pw_file.chmod(0o600)
    wheel = make_wheel(tmp_path, "fishdemo", "0.1.0")
    script = (
        f"devpi-login --password-stdin < {pw_file}; or exit 10\n"
        "devpi-use-prod; or exit 11\n"
        'echo "PIP=$PIP_INDEX_URL"\n'
        'echo "UV=$UV_DEFAULT_INDEX"\n'
        f"devpi-upload {wheel}; or exit 12\n"
        "devpi-whoami\n"
    )
    env = dict(os.environ)
    proc = subprocess.run(
        [fish_bin, "-c", script],  # autoloads from the test HOME's ~/.config/fish/functions
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"PIP={dev.simple_url}" in proc.stdout
    assert f"UV={dev.simple_url}" in proc.stdout
    assert f"uploaded {wheel.name}" in proc.stdout
    assert "login:   valid" in proc.stdout
    assert dev.password not in proc.stdout + proc.stderr


def fish_complete(fish_bin: str, fish_dir: Path, line: str) -> dict[str, str]:
    """What fish offers on TAB after ``line``, with the installed files autoloaded."""
    script = (
        f"set -p fish_function_path {fish_dir}/functions; "
        f"set -p fish_complete_path {fish_dir}/completions; "
        f"complete -C {json.dumps(line)}"
    )
    done = subprocess.run(
        [fish_bin, "--no-config", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    offers = {}
    for ln in done.stdout.splitlines():
        value, _, help_ = ln.partition("\t")
        offers[value] = help_
    return offers


def test_tab_completes_subcommands_and_options_from_the_click_commands(
    helpers_home, fish_bin, tk_devpi_on_path
):
    fish_dir = helpers_home / ".config" / "fish"
    tk("fish", "install")
    top = fish_complete(fish_bin, fish_dir, "tk-devpi ")
    assert {"install", "config", "login", "upload", "use-prod"} <= set(top)
    assert top["install"].startswith("Plan, apply")
    apply = fish_complete(fish_bin, fish_dir, "tk-devpi install apply --")
    assert {"--dry-run", "--phase", "--adopt", "--timeout", "--output"} <= set(apply)
    assert {"text", "json"} <= set(fish_complete(fish_bin, fish_dir, "tk-devpi install apply -o "))
    assert {"init", "show", "check"} <= set(fish_complete(fish_bin, fish_dir, "tk-devpi config "))
    # a wrapper completes as the command it wraps
    assert {"--password-stdin", "--url"} <= set(fish_complete(fish_bin, fish_dir, "devpi-login --"))

"""Each thing that can go wrong says what failed and what to do."""

from __future__ import annotations

import json

import pytest

from fakes.http import free_port
from shell.dists import make_sdist, make_wheel
from thinkube_devpi.shell import session as sessions
from thinkube_devpi.shell import settings


@pytest.fixture
def logged_in(devpi_server, tk):
    dev = devpi_server.new_user()
    settings.write_helper_config(dev.url, dev.name, dev.index)
    tk("login", "--password-stdin", "--no-devpi-client", input=dev.password, ok=True)
    return dev


def test_wrong_password_is_refused_with_a_hint(devpi_server, tk):
    dev = devpi_server.new_user()
    r = tk(
        "login", "--url", dev.url, "--user", dev.name, "--password-stdin", input="nope", ok=False
    )
    assert "refused user" in r.output and "(401)" in r.output
    assert "nope" not in r.output


def test_login_without_password_or_terminal_says_how(devpi_server, tk):
    dev = devpi_server.new_user()
    r = tk("login", "--url", dev.url, "--user", dev.name, ok=False)
    assert "--password-stdin" in r.output


def test_upload_without_login_says_log_in(devpi_server, tk, tmp_path):
    dev = devpi_server.new_user()
    settings.write_helper_config(dev.url, dev.name, dev.index)
    r = tk("upload", str(make_wheel(tmp_path, "nologin", "1.0")), ok=False)
    assert "run tk-devpi login" in r.output


def test_upload_to_someone_elses_index_is_403(devpi_server, logged_in, tk, tmp_path):
    other = devpi_server.new_user("other")
    r = tk("upload", "--index", other.index, str(make_wheel(tmp_path, "notmine", "1.0")), ok=False)
    assert "(403)" in r.output and "acl_upload" in r.output and other.index in r.output


def test_upload_to_a_missing_index_is_404(logged_in, tk, tmp_path):
    r = tk(
        "upload",
        "--index",
        f"{logged_in.name}/nosuch",
        str(make_wheel(tmp_path, "x404", "1.0")),
        ok=False,
    )
    assert "(404)" in r.output and f"no index {logged_in.name}/nosuch" in r.output


def test_same_version_again_on_a_non_volatile_index_is_409(logged_in, tk, tmp_path):
    wheel = make_wheel(tmp_path, "twice", "1.0")
    tk("upload", str(wheel), ok=True)
    tk("upload", str(wheel), ok=True)  # the identical file again is a no-op for devpi
    rebuilt = make_wheel(tmp_path, "twice", "1.0", padding=100)  # same name, other content
    r = tk("upload", str(rebuilt), ok=False)
    assert "(409)" in r.output and "raise the version" in r.output


def test_missing_file_and_non_distribution_fail_but_the_rest_uploads(logged_in, tk, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    good = make_sdist(tmp_path, "partial", "1.0")
    r = tk(
        "upload", str(tmp_path / "gone-1.0.tar.gz"), str(notes), str(broken), str(good), ok=False
    )
    assert "gone-1.0.tar.gz: no such file" in r.output
    assert "notes.txt: not a distribution" in r.output
    assert "broken-1.0-py3-none-any.whl: not a readable distribution" in r.output
    assert f"uploaded {good.name}" in r.output


def test_dry_run_lists_and_sends_nothing(logged_in, tk, tmp_path):
    wheel = make_wheel(tmp_path, "dryrun", "2.0", requires_python=">=3.11")
    r = tk("upload", "--dry-run", "-o", "json", str(wheel), ok=True)
    files = json.loads(r.stdout)["files"]
    assert files[0]["requires_python"] == ">=3.11" and files[0]["sent"] is False
    r = tk("upload", "--dry-run", str(wheel), ok=True)
    assert "would upload" in r.stdout


def _closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/"


def test_server_down(tk, tmp_path):
    url = _closed_port_url()
    r = tk("whoami", "--url", url, ok=False)
    assert "NOT reachable" in r.output
    r = tk("login", "--url", url, "--password-stdin", input="pw", ok=False)
    assert "cannot reach" in r.output and "devpi server is running" in r.output
    r = tk("use-prod", "--url", url, ok=False)
    assert "cannot reach" in r.output


def test_use_of_a_missing_index_names_the_existing_ones(logged_in, tk):
    r = tk("use", f"{logged_in.name}/nope", ok=False)
    assert f"no index {logged_in.name}/nope" in r.output and logged_in.index in r.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["whoami", "--url", "ftp://x/"], "URL 'ftp://x/' is not usable"),
        (["whoami", "--url", "https://u:Pw-S3cret@host/"], "holds a user name or password"),
        (["login", "--url", "https://u:Pw-S3cret@host/", "--password-stdin"], "(not shown)"),
        (
            ["env", "--url", "https://h/", "--index", "prod"],
            "index 'prod' is not a devpi index name",
        ),
        (["env", "--url", "https://h/", "--user", "a b"], "user 'a b' is not a devpi user name"),
        (["use", "x"], "index 'x' is not a devpi index name"),
        (["env"], "no devpi URL is configured"),
        (["env", "--url", "https://h/", "--get", "NOPE"], "--get 'NOPE': not one of"),
    ],
)
def test_bad_input_names_the_value(tk, args, expected):
    r = tk(*args, ok=False)
    assert expected in r.output
    assert "Pw-S3cret" not in r.output  # a URL's password is never repeated


def test_plaintext_keyring_is_refused_at_login_unless_allowed(devpi_server, tk, monkeypatch):
    monkeypatch.delenv("THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING")
    dev = devpi_server.new_user()
    settings.write_helper_config(dev.url, dev.name, dev.index)
    r = tk("login", "--password-stdin", "--no-devpi-client", input=dev.password, ok=True)
    assert "the password will not be kept" in r.output and "PlaintextKeyring" in r.output
    assert "refused" in r.output
    r = tk(
        "login", "--password-stdin", "--no-devpi-client", "--allow-plaintext-keyring",
        input=dev.password, ok=True,
    )  # fmt: skip
    assert "password kept in the keyring" in r.output


def test_no_keyring_still_logs_in_and_says_so(devpi_server, tk, monkeypatch):
    import keyring.core

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.core._keyring_backend = None
    dev = devpi_server.new_user()
    settings.write_helper_config(dev.url, dev.name, dev.index)
    r = tk("login", "--password-stdin", "--no-devpi-client", input=dev.password, ok=True)
    assert "no keyring backend is available" in r.output
    assert sessions.load(dev.url, dev.name) is not None
    keyring.core._keyring_backend = None

"""shell's login and upload library, as its two users see it against a real devpi-server.

`tk-devpi upload` logs in from the keyring and keeps its token; phase 88 logs in as root with the
password from the cluster's Secret and must keep nothing on the admin's machine. Both send through
the same Uploader, which renews a login the server voided mid-run once and explains a refusal.
"""

from __future__ import annotations

import httpx
import pytest

from shell.dists import make_sdist, make_wheel
from thinkube_devpi import secrets
from thinkube_devpi.secrets import Secret
from thinkube_devpi.shell import session as sessions
from thinkube_devpi.shell.api import DevpiAPI
from thinkube_devpi.shell.upload import Uploader, planned, read_all


def _files_on(index_url: str, name: str) -> list[str]:
    resp = httpx.get(f"{index_url}/+simple/{name}/", timeout=10)
    return resp.text.split(">")[1:] if resp.status_code == 200 else []


def test_a_login_with_a_given_password_keeps_nothing_on_this_machine(devpi_server, helpers_home):
    dev = devpi_server.new_user()
    login = sessions.Login(dev.url, dev.name, password=Secret(dev.password, "test"), remember=False)
    with DevpiAPI(dev.url) as api:
        session = login.valid(api)
        assert api.auth_status(session) == "ok"
    # no token in sessions.json, no password in the keyring: a root login leaves no trace here
    assert sessions.load(dev.url, dev.name) is None
    assert not sessions.sessions_path().exists()
    key = sessions.password_key(dev.url, dev.name)
    assert secrets.lookup(key, interactive=False, allow_plaintext=True) is None
    assert dev.password not in repr(login)


def test_a_token_voided_mid_run_is_renewed_once_and_the_file_lands(
    fresh_devpi_server, helpers_home, tmp_path
):
    dev = fresh_devpi_server.new_user()
    login = sessions.Login(dev.url, dev.name, password=Secret(dev.password, "test"), remember=False)
    with DevpiAPI(dev.url) as api:
        uploader = Uploader(api, dev.index, login)
        (dist,), _ = read_all([make_wheel(tmp_path, "voided", "1.0")])
        first = uploader.send(dist)
        assert first.ok and first.sent
        before = uploader.session
        # the server restarts without its secret file: every token it gave out is void
        fresh_devpi_server.restart(secretfile=False)
        (dist,), _ = read_all([make_wheel(tmp_path, "voided", "1.1")])
        second = uploader.send(dist)
    assert second.ok and second.sent, second.error
    assert before is not None and uploader.session is not None
    assert uploader.session.token != before.token
    assert any("voided-1.1" in f or "voided_1.1" in f for f in _files_on(dev.index_url, "voided"))


def test_a_refused_upload_is_explained_in_its_result(devpi_server, helpers_home, tmp_path):
    dev, other = devpi_server.new_user(), devpi_server.new_user("other")
    login = sessions.Login(dev.url, dev.name, password=Secret(dev.password, "test"), remember=False)
    (dist,), _ = read_all([make_wheel(tmp_path, "notmine", "1.0")])
    with DevpiAPI(dev.url) as api:
        result = Uploader(api, other.index, login).send(dist)
    assert not result.ok and result.status == 403
    assert "acl_upload" in result.error and other.index in result.error
    assert result.to_json() == {
        "path": str(dist.path),
        "ok": False,
        "status": 403,
        "error": result.error,
    }
    assert _files_on(other.index_url, "notmine") == []


def test_no_password_anywhere_says_log_in_before_anything_is_sent(
    devpi_server, helpers_home, tmp_path
):
    dev = devpi_server.new_user()
    (dist,), _ = read_all([make_wheel(tmp_path, "nopass", "1.0")])
    with DevpiAPI(dev.url) as api, pytest.raises(sessions.LoginError) as caught:
        Uploader(api, dev.index, sessions.Login(dev.url, dev.name)).send(dist)
    assert "does not exist" in caught.value.message and "run tk-devpi login" in caught.value.message
    assert _files_on(dev.index_url, "nopass") == []


def test_files_that_are_not_distributions_come_back_as_refusals_naming_them(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a package")
    good = make_wheel(tmp_path, "good", "2.0", requires_python=">=3.10")
    dists, refused = read_all([tmp_path / "gone-1.0.tar.gz", notes, good])
    assert [d.path for d in dists] == [good]
    assert [r.path for r in refused] == [tmp_path / "gone-1.0.tar.gz", notes]
    assert "no such file" in refused[0].error and "not a distribution" in refused[1].error
    assert all(not r.ok and str(r.path) in r.error for r in refused)
    (plan,) = planned(dists, "http://127.0.0.1:1/dev/prod/")
    assert plan.ok and not plan.sent
    assert plan.describe().startswith(f"would upload {good.name}: good 2.0 (bdist_wheel, ")
    assert "requires-python >=3.10" in plan.describe()


def test_a_folder_stands_for_the_wheels_and_sdists_in_it(tmp_path):
    """`tk-devpi upload dist/` as a developer types it after `python -m build`."""
    from thinkube_devpi.shell.upload import files

    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = make_wheel(dist, "folder", "1.0")
    sdist = make_sdist(dist, "folder", "1.0")
    (dist / "notes.txt").write_text("left alone")
    (dist / "old").mkdir()
    make_wheel(dist / "old", "folder", "0.9")  # a subfolder is not searched
    with files([str(dist)]) as found:
        assert found == sorted([wheel, sdist])
    dists, refused = read_all(found)
    assert [d.version for d in dists] == ["1.0", "1.0"] and refused == []

    empty = tmp_path / "empty"
    empty.mkdir()
    with files([str(empty)]) as found:
        _, (refusal,) = read_all(found)
    assert refusal.error.startswith(f"{empty}: no wheel or sdist in this folder")
    assert "python -m build" in refusal.error

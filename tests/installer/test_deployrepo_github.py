"""Creating the deployment repository and its deploy keys through GitHub's REST API (a fake)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.github import FakeGitHub
from leakcheck import find
from thinkube_devpi.installer.github import GitHub, GitHubError, github_repo, public_key
from thinkube_devpi.secrets import Secret


@pytest.fixture
def gh(keys: dict[str, str]) -> FakeGitHub:
    with FakeGitHub(Path(keys["github_token"]).read_text()) as fake:
        yield fake


def client(gh: FakeGitHub, token: str | None = None) -> GitHub:
    return GitHub(Secret(token or gh.token), gh.url)


def test_repository_url_parsing() -> None:
    assert github_repo("git@github.com:org/devpi-deployment.git") == ("org", "devpi-deployment")
    assert github_repo("ssh://git@github.com/org/repo") == ("org", "repo")
    assert github_repo("git@gitlab.com:org/repo.git") is None


def test_creates_a_private_repository_once(gh: FakeGitHub) -> None:
    api = client(gh)
    assert api.ensure_repo("thinkube-test", "devpi-deployment") == "created"
    assert gh.repos["thinkube-test/devpi-deployment"]["private"] is True
    assert api.ensure_repo("thinkube-test", "devpi-deployment") == "exists"
    assert [r[:2] for r in gh.requests if r[0] == "POST"] == [("POST", "/orgs/thinkube-test/repos")]
    assert api.ensure_repo("octo", "mine") == "created"
    assert ("POST", "/user/repos") in [r[:2] for r in gh.requests]


def test_deploy_keys_added_once_with_their_rights(gh: FakeGitHub, keys: dict[str, str]) -> None:
    api = client(gh)
    api.ensure_repo("thinkube-test", "devpi-deployment")
    rw, ro = public_key(keys["id_rw"]), public_key(keys["id_ro"])
    assert rw.startswith("ssh-ed25519 ")
    assert api.ensure_deploy_key("thinkube-test", "devpi-deployment", "rw", rw, read_only=False) == "added"
    assert api.ensure_deploy_key("thinkube-test", "devpi-deployment", "ro", ro, read_only=True) == "added"
    assert api.ensure_deploy_key("thinkube-test", "devpi-deployment", "rw", rw, read_only=False) == "present"
    stored = {k["title"]: k["read_only"] for k in gh.keys["thinkube-test/devpi-deployment"]}
    assert stored == {"rw": False, "ro": True}
    with pytest.raises(GitHubError, match="registered read-only"):
        api.ensure_deploy_key("thinkube-test", "devpi-deployment", "x", ro, read_only=False)


def test_public_key_without_pub_file(keys: dict[str, str]) -> None:
    pub = Path(keys["id_rw"] + ".pub")
    expected = " ".join(pub.read_text().split()[:2])
    pub.unlink()
    assert public_key(keys["id_rw"]) == expected


def test_bad_token_is_a_clear_error_without_the_token(gh: FakeGitHub) -> None:
    with pytest.raises(GitHubError) as err:
        client(gh, "ghp_wrongwrongwrong").ensure_repo("thinkube-test", "x")
    assert "HTTP 401" in str(err.value) and "github_token_file" in err.value.hint
    assert not find("ghp_wrongwrongwrong", str(err.value))
    assert not find(gh.token, str(err.value))


def test_unknown_org_is_a_clear_error(gh: FakeGitHub) -> None:
    with pytest.raises(GitHubError, match="Creating private repository nobody/x: HTTP 404"):
        client(gh).ensure_repo("nobody", "x")

"""Bad input gets a clear message and a non-zero exit, and nothing reaches the cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.cli import main

GOOD = 'domain = "example.com"\n'

# (name, config file text, extra env, argv, words the message must contain)
CASES: list[tuple[str, str, dict[str, str], list[str], list[str]]] = [
    (
        "bad domain",
        'domain = "Example_COM"\n',
        {},
        ["install", "apply"],
        ["domain", "'Example_COM'", "RFC 1123"],
    ),
    (
        "placeholder domain on apply",
        "",
        {},
        ["install", "apply"],
        ["domain", "thinkube.local", "real domain"],
    ),
    (
        "explicit placeholder",
        'domain = "thinkube.local"\n',
        {},
        ["install", "apply"],
        ["placeholder"],
    ),
    (
        "bad dashboard host",
        GOOD + 'dashboard_host = "dev pi.example.com"\n',
        {},
        ["install", "apply"],
        ["dashboard_host", "'dev pi.example.com'"],
    ),
    (
        "bad api host from env",
        GOOD,
        {"THINKUBE_DEVPI_API_HOST": "-api.example.com"},
        ["install", "apply"],
        ["api_host", "'-api.example.com'"],
    ),
    (
        "bad size",
        GOOD + 'storage_size = "5 GB"\n',
        {},
        ["install", "apply"],
        ["storage_size", "'5 GB'", "Kubernetes quantity"],
    ),
    (
        "tiny size",
        GOOD + 'storage_size = "10k"\n',
        {},
        ["install", "apply"],
        ["storage_size", "at least 1Mi"],
    ),
    (
        "bad namespace",
        GOOD + 'namespace = "DevPi"\n',
        {},
        ["install", "apply"],
        ["namespace", "'DevPi'", "namespace name"],
    ),
    (
        "bad keycloak url",
        GOOD + 'keycloak_url = "http://auth.example.com"\n',
        {},
        ["install", "apply"],
        ["keycloak_url", "https://"],
    ),
    (
        "bad devpi user",
        GOOD + 'devpi_user = "ad min"\n',
        {},
        ["install", "apply"],
        ["devpi_user", "'ad min'"],
    ),
    (
        "bad branch",
        GOOD + 'deploy_branch = "my branch"\n',
        {},
        ["install", "apply"],
        ["deploy_branch", "'my branch'", "no spaces"],
    ),
    (
        "bad repo url",
        GOOD + 'deploy_repo = "github.com/org/repo"\n',
        {},
        ["install", "apply"],
        ["deploy_repo", "SSH repository URL"],
    ),
    (
        "missing key file",
        GOOD + 'ssh_key_file = "/nonexistent/id_ed25519"\n',
        {},
        ["install", "apply"],
        ["ssh_key_file", "/nonexistent/id_ed25519", "existing"],
    ),
    (
        "bad exposure",
        GOOD + 'exposure = "loadbalancer"\n',
        {},
        ["install", "apply"],
        ["exposure", "gateway, ingress"],
    ),
    (
        "bad cidr",
        GOOD + 'api_source_ranges = ["10.0.0.0/33"]\n',
        {},
        ["install", "apply"],
        ["api_source_ranges", "10.0.0.0/33", "CIDR"],
    ),
    (
        "bad bool",
        GOOD + 'registry_insecure = "maybe"\n',
        {},
        ["install", "apply"],
        ["registry_insecure", "true or false"],
    ),
    (
        "unknown setting",
        GOOD + 'domian = "x"\n',
        {},
        ["install", "apply"],
        ["domian", "known setting"],
    ),
    ("broken toml", 'domain = "example.com\n', {}, ["install", "apply"], ["valid TOML"]),
    (
        "cert without key",
        GOOD + 'tls_cert_file = "{cert}"\n',
        {},
        ["install", "apply"],
        ["tls_key_file", "together"],
    ),
    (
        "bad email domain",
        GOOD + 'email_domain = "@example.com"\n',
        {},
        ["install", "apply"],
        ["email_domain", "'*' or an e-mail domain"],
    ),
    (
        "unknown phase",
        GOOD,
        {},
        ["install", "apply", "--phase", "99"],
        ["unknown phase '99'", "10 namespace", "86 shell, 88 test, 89 rollback"],
    ),
    (
        "unknown phase name",
        GOOD,
        {},
        ["install", "rollback", "--phase", "redsi"],
        ["unknown phase 'redsi'"],
    ),
    (
        "wrong package data namespace",
        GOOD,
        {},
        ["install", "rollback", "--all", "--delete-package-data", "default"],
        ["'default' is not the namespace", "--delete-package-data=devpi"],
    ),
    ("rollback without selection", GOOD, {}, ["install", "rollback"], ["--phase N", "--all"]),
    (
        "rollback of the test alone",
        GOOD,
        {},
        ["install", "rollback", "--phase", "88", "--yes"],
        ["88 test leaves nothing behind", "nothing to roll back"],
    ),
    (
        "unknown context",
        GOOD,
        {},
        ["install", "--context", "prod", "apply"],
        ["Unknown context", "'prod'", "fake"],
    ),
    (
        "unreadable kubeconfig",
        GOOD,
        {"KUBECONFIG": "{garbage}"},
        ["install", "apply"],
        ["Cannot load kubeconfig"],
    ),
    (
        "missing kubeconfig",
        GOOD,
        {"KUBECONFIG": "/nonexistent/kubeconfig"},
        ["install", "apply"],
        ["No kubeconfig", "/nonexistent/kubeconfig"],
    ),
    ("bad timeout", GOOD, {}, ["install", "apply", "--timeout", "0"], ["--timeout", "0"]),
    ("nan timeout", GOOD, {}, ["install", "apply", "--timeout", "nan"], ["--timeout", "nan"]),
    ("inf timeout", GOOD, {}, ["install", "apply", "--timeout", "inf"], ["--timeout", "inf"]),
    (
        "domain ending in a newline",
        'domain = "example.com\\n"\n',
        {},
        ["install", "apply"],
        ["domain", "'example.com\\n'", "RFC 1123"],
    ),
    (
        "domain from env ending in a newline",
        "",
        {"THINKUBE_DEVPI_DOMAIN": "example.com\n"},
        ["install", "apply"],
        ["domain", "'example.com\\n'"],
    ),
    (
        "huge size",
        GOOD + 'storage_size = "1e20Ei"\n',
        {},
        ["install", "apply"],
        ["storage_size", "'1e20Ei'", "Kubernetes quantity"],
    ),
    (
        "size beyond int64",
        GOOD + 'storage_size = "100000Ei"\n',
        {},
        ["install", "apply"],
        ["storage_size", "at most 8Ei"],
    ),
    (
        "branch that reads as an option",
        GOOD + 'deploy_branch = "--upload-pack=touch /tmp/x"\n',
        {},
        ["install", "apply"],
        ["deploy_branch", "not starting with '-'"],
    ),
    (
        "branch with shell characters",
        GOOD + 'deploy_branch = "main$(id)"\n',
        {},
        ["install", "apply"],
        ["deploy_branch", "'main$(id)'", "shell characters"],
    ),
    (
        "repo that reads as an option",
        GOOD + 'deploy_repo = "-oProxyCommand=id@x:y"\n',
        {},
        ["install", "apply"],
        ["deploy_repo", "not starting with '-'"],
    ),
    (
        "repo with shell characters",
        GOOD + 'deploy_repo = "git@github.com:org/repo.git;id"\n',
        {},
        ["install", "apply"],
        ["deploy_repo", "shell characters"],
    ),
    (
        "groups not a list of strings",
        GOOD + "allowed_groups = 5\n",
        {},
        ["install", "apply"],
        ["allowed_groups", "5", "list of Keycloak group names"],
    ),
    (
        "groups holding a number",
        GOOD + "allowed_groups = [\"devs\", 7]\n",
        {},
        ["install", "apply"],
        ["allowed_groups", "as strings"],
    ),
    # checks of later phases run before the first write of the run (they used to fail after
    # phases 10 to 30 had written 13 to 17 objects)
    (
        "dashboard outside the domain",
        GOOD + 'dashboard_host = "devpi.other.org"\n',
        {},
        ["install", "apply"],
        ["keycloak", "before anything was written", "outside the domain 'example.com'"],
    ),
    (
        "keycloak url with a realm in it",
        GOOD + 'keycloak_url = "https://auth.example.com/realms/thinkube"\n',
        {},
        ["install", "apply"],
        ["before anything was written", "without query, fragment or /realms/"],
    ),
    (
        "same dashboard and api host",
        GOOD + 'dashboard_host = "devpi.example.com"\napi_host = "devpi.example.com"\n',
        {},
        ["install", "apply"],
        ["before anything was written", "are the same"],
    ),
    (
        "build without a deployment repository",
        GOOD,
        {},
        ["install", "apply"],
        ["build", "before anything was written", "deploy_repo is not set"],
    ),
    (
        "keycloak url with credentials",
        GOOD + 'keycloak_url = "https://admin:Hunter2-secret@auth.example.com"\n',
        {},
        ["install", "apply"],
        ["keycloak_url", "credentials", "not shown"],
    ),
    ("bad output", GOOD, {}, ["install", "plan", "-o", "yaml"], ["'yaml' is not one of"]),
]


@pytest.mark.parametrize("name,config,env,argv,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly_and_writes_nothing(
    name: str,
    config: str,
    env: dict[str, str],
    argv: list[str],
    words: list[str],
    fake_kube: FakeKubeAPI,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    garbage = tmp_path / "garbage"
    garbage.write_text("clusters: [ {")
    cfg = tmp_path / "config.toml"
    cfg.write_text(config.replace("{cert}", str(cert)))
    full_env = {"THINKUBE_DEVPI_CONFIG": str(cfg), "KUBECONFIG": str(kubeconfig)}
    full_env.update({k: v.replace("{garbage}", str(garbage)) for k, v in env.items()})
    fake_kube.clear_log()
    result = CliRunner().invoke(main, argv, env=full_env)
    assert result.exit_code != 0, result.output
    for word in words:
        assert word in result.output, f"{word!r} missing from: {result.output}"
    assert "Traceback" not in result.output
    assert "Hunter2-secret" not in result.output  # a refused URL's password is never echoed
    assert fake_kube.writes() == []


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20

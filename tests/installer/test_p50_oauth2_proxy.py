"""Phase 50: the rendered oauth2-proxy, checked against its documented flags; apply and status."""

from __future__ import annotations

import logging

import pytest

from fakes.auth_cluster import Env
from fakes.kube_api import schema_errors
from fakes.oauth2_flags import documented, env_problems, flag_problems
from leakcheck import argv_recorder, assert_absent
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import State
from thinkube_devpi.installer.phases.base import Context, PhaseError, SecretObject, realize
from thinkube_devpi.installer.phases.p30_redis import RedisPhase
from thinkube_devpi.installer.phases.p40_keycloak import KeycloakPhase
from thinkube_devpi.installer.phases.p50_oauth2_proxy import (
    COOKIE_NAME,
    IMAGE,
    OAuth2ProxyPhase,
)


def rendered(settings: Settings) -> list[dict]:
    phase = OAuth2ProxyPhase(Context(settings))
    return [realize(o) for o in phase.objects()]  # type: ignore[misc]


def deployment(settings: Settings) -> dict:
    return next(o for o in rendered(settings) if o["kind"] == "Deployment")


def container(settings: Settings) -> dict:
    return deployment(settings)["spec"]["template"]["spec"]["containers"][0]


def arg(c: dict, flag: str) -> list[str]:
    return [a.split("=", 1)[1] for a in c["args"] if a.startswith(flag + "=")]


def test_documented_flag_list_is_loaded() -> None:
    flags = documented()
    assert flags["--email-domain"] == "list" and flags["--skip-provider-button"] == "bool"
    assert len(flags) > 120


@pytest.mark.parametrize(
    "settings",
    [
        Settings(domain="example.com"),
        Settings(domain="example.com", allowed_groups=["devpi-users", "admins"]),
        Settings(domain="example.com", email_domain="example.com"),
    ],
    ids=["default", "groups", "email-domain"],
)
def test_every_flag_and_variable_is_documented(settings: Settings) -> None:
    c = container(settings)
    assert flag_problems(c["args"]) == []
    assert env_problems([e["name"] for e in c["env"]]) == []
    assert not any("$(" in a for a in c["args"])  # no variable expansion into argv


def test_the_details_oauth2_proxy_needs() -> None:
    s = Settings(domain="example.com")
    c = container(s)
    assert c["image"] == IMAGE and IMAGE.endswith(":v7.15.3")
    assert arg(c, "--provider") == ["keycloak-oidc"]
    assert arg(c, "--oidc-issuer-url") == ["https://auth.example.com/realms/thinkube"]
    assert arg(c, "--redirect-url") == ["https://devpi.example.com/oauth2/callback"]
    assert arg(c, "--upstream") == ["http://devpi.devpi.svc:3141"]
    assert arg(c, "--http-address") == ["0.0.0.0:4180"]
    assert arg(c, "--skip-provider-button") == ["true"]
    assert arg(c, "--email-domain") == ["*"]
    assert arg(c, "--cookie-domain") == [".example.com"]
    assert arg(c, "--cookie-name") == [COOKIE_NAME] and COOKIE_NAME != "_oauth2_proxy"
    assert arg(c, "--cookie-samesite") == ["none"]
    assert arg(c, "--cookie-secure") == ["true"]
    assert arg(c, "--session-store-type") == ["redis"]
    assert arg(c, "--redis-connection-url") == ["redis://ephemeral-redis.devpi.svc:6379"]
    assert arg(c, "--code-challenge-method") == ["S256"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/ping"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env["OAUTH2_PROXY_CLIENT_SECRET"] == {
        "name": "devpi-dashboard-oidc",
        "key": "client-secret",
    }
    assert env["OAUTH2_PROXY_COOKIE_SECRET"]["key"] == "cookie-secret"
    assert env["OAUTH2_PROXY_REDIS_PASSWORD"] == {"name": "ephemeral-redis-auth", "key": "password"}
    assert all("value" not in e for e in c["env"])


def test_who_may_sign_in() -> None:
    c = container(Settings(domain="example.com", allowed_groups=["devpi-users"]))
    assert arg(c, "--email-domain") == ["*"]
    assert arg(c, "--allowed-group") == ["devpi-users"]
    c = container(Settings(domain="example.com", email_domain="corp.example"))
    assert arg(c, "--email-domain") == ["corp.example"]
    assert arg(c, "--allowed-group") == []


def test_objects_pass_strict_schema_and_cross_checks(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    for settings in (
        Settings(domain="example.com"),
        Settings(domain="example.com", keycloak_ca_file=str(ca)),
    ):
        objs = rendered(settings)
        for obj in objs:
            assert schema_errors(obj) == [], obj["kind"]
        dep = next(o for o in objs if o["kind"] == "Deployment")
        svc = next(o for o in objs if o["kind"] == "Service")
        pod = dep["spec"]["template"]
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports
        # every secretKeyRef names a Secret and key that phases 30 and 40 make
        ctx = Context(settings)
        made: dict[str, set[str]] = {}
        for phase in (RedisPhase(ctx), KeycloakPhase(ctx)):
            for o in phase.objects():
                if isinstance(o, SecretObject):
                    made[o.name] = set(o.keys)
        for e in pod["spec"]["containers"][0]["env"]:
            ref = e["valueFrom"]["secretKeyRef"]
            assert ref["key"] in made[ref["name"]]
        if settings.keycloak_ca_file:
            assert any(o["kind"] == "ConfigMap" for o in objs)
            assert (
                "--provider-ca-file=/etc/oauth2-proxy/ca/ca.crt"
                in pod["spec"]["containers"][0]["args"]
            )


def apply_prerequisites(env: Env) -> None:
    redis = RedisPhase(env.ctx)
    for obj in redis.objects():  # its objects, without waiting for a Redis pod
        redis.apply_one(realize(obj))
    KeycloakPhase(env.ctx).apply(env.emit)


def test_apply_status_reapply_and_rotation_rolls_pods(auth_env: Env) -> None:
    env = auth_env
    apply_prerequisites(env)
    phase = OAuth2ProxyPhase(env.ctx)
    assert [i.action for i in phase.plan().items] == [
        "create"
    ] * 3  # CA ConfigMap, Deployment, Service
    env.ctx.wait_timeout = 5
    env.play_deployment_controller("oauth2-proxy")
    phase.apply(env.emit)
    assert OAuth2ProxyPhase(env.ctx).status().state is State.HEALTHY
    rv = env.rv("apps/v1", "Deployment", "oauth2-proxy")
    gen = env.api.get("apps/v1", "Deployment", "oauth2-proxy", "devpi")["metadata"]["generation"]
    OAuth2ProxyPhase(env.ctx).apply(env.emit)
    assert env.rv("apps/v1", "Deployment", "oauth2-proxy") == rv
    assert [i.action for i in OAuth2ProxyPhase(env.ctx).plan().items] == ["unchanged"] * 3

    env.kc.rotate_secret("devpi-dashboard")
    KeycloakPhase(env.ctx).apply(env.emit)
    assert OAuth2ProxyPhase(env.ctx).status().state is State.PROGRESSING
    env.play_deployment_controller("oauth2-proxy")
    OAuth2ProxyPhase(env.ctx).apply(env.emit)
    dep = env.api.get("apps/v1", "Deployment", "oauth2-proxy", "devpi")
    assert dep["metadata"]["generation"] > gen  # the template changed: pods roll

    OAuth2ProxyPhase(env.ctx).rollback(env.emit)
    assert env.api.get("apps/v1", "Deployment", "oauth2-proxy", "devpi") is None
    assert env.api.get("v1", "Service", "oauth2-proxy", "devpi") is None


def test_preflight_needs_the_secrets_and_writes_nothing(auth_env: Env) -> None:
    env = auth_env
    env.api.clear_log()
    with pytest.raises(PhaseError) as e:
        OAuth2ProxyPhase(env.ctx).apply(env.emit)
    assert "devpi-dashboard-oidc does not exist" in e.value.message
    assert "40 keycloak" in e.value.hint
    assert env.api.writes() == []


def test_dashboard_outside_the_domain_is_refused(auth_env: Env) -> None:
    env = auth_env
    env.settings.dashboard_host = "devpi.elsewhere.org"
    env.api.clear_log()
    with pytest.raises(PhaseError) as e:
        OAuth2ProxyPhase(env.ctx).apply(env.emit)
    assert "outside the domain" in e.value.message
    assert env.api.writes() == []


def test_no_secret_outside_the_secrets(auth_env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env = auth_env
    caplog.set_level(logging.DEBUG)
    with argv_recorder() as argv:
        apply_prerequisites(env)
        env.ctx.wait_timeout = 0.5
        with pytest.raises(Exception) as e:  # times out waiting: nobody makes it ready
            OAuth2ProxyPhase(env.ctx).apply(env.emit)
        status = OAuth2ProxyPhase(env.ctx).status()
    secrets = [
        *env.secret_data("devpi-dashboard-oidc").values(),
        env.secret_data("ephemeral-redis-auth")["password"],
        env.kc.admin_password,
    ]
    secrets.remove("devpi-dashboard")
    dep = env.api.get("apps/v1", "Deployment", "oauth2-proxy", "devpi")
    assert_absent("the Deployment", dep, secrets)
    assert_absent("status", repr(status), secrets)
    assert_absent("error", str(e.value), secrets)
    assert_absent("events", [repr(x) for x in env.events], secrets)
    assert_absent("logs", caplog.text, secrets)
    assert_absent("argv", argv, secrets)
    for w in env.api.requests:
        if "/secrets/" in w.path and w.method == "PATCH":
            continue
        assert_absent(f"kube {w.method} {w.path}", w.body.decode(errors="replace"), secrets)

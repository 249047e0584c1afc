"""Phase 40 against the fake cluster and the fake Keycloak."""

from __future__ import annotations

import base64
import logging

import pytest

from fakes.auth_cluster import Env
from leakcheck import argv_recorder, assert_absent
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import State
from thinkube_devpi.installer.phases.base import Context, PhaseError
from thinkube_devpi.installer.phases.p40_keycloak import KeycloakPhase, cookie_secret_ok
from thinkube_devpi.installer.runner import Runner

SECRET = "devpi-dashboard-oidc"


def phase(env: Env, **kw: object) -> KeycloakPhase:
    p = KeycloakPhase(env.ctx)
    p.keycloak_timeout = float(kw.get("timeout", 5.0))  # type: ignore[arg-type]
    return p


def test_plan_without_a_cluster_names_keys_and_sources() -> None:
    p = KeycloakPhase(Context(Settings()))
    plan = p.plan()
    [item] = plan.items
    assert item.action == "unknown" and item.ref.name == SECRET
    assert item.secret_keys == {
        "client-id": "fixed: devpi-dashboard",
        "client-secret": "from Keycloak client devpi-dashboard",
        "cookie-secret": "generated once (32 random bytes, URL-safe base64)",
    }
    assert "data" not in item.manifest
    assert any("devpi-dashboard" in n and "create or update" in n for n in plan.notes)


def test_apply_status_reapply(auth_env: Env) -> None:
    env = auth_env
    p = phase(env)
    assert p.plan().items[0].action == "create"
    p.apply(env.emit)
    client = env.kc.client("devpi-dashboard")
    assert client is not None
    data = env.secret_data(SECRET)
    assert data["client-id"] == "devpi-dashboard"
    assert data["client-secret"] == client["secret"]
    cookie = data["cookie-secret"]
    assert len(base64.urlsafe_b64decode(cookie)) == 32 and cookie_secret_ok(cookie)
    assert "+" not in cookie and "/" not in cookie
    assert p.status().state is State.HEALTHY

    rv = env.rv("v1", "Secret", SECRET)
    env.kc.clear_log()
    env.api.clear_log()
    phase(env).apply(env.emit)
    assert env.kc.writes() == []
    assert env.rv("v1", "Secret", SECRET) == rv
    assert env.secret_data(SECRET)["cookie-secret"] == cookie
    plan = phase(env).plan()
    assert plan.items[0].action == "unchanged"
    assert any(n.endswith(": unchanged") for n in plan.notes)


def test_rotated_client_secret_is_picked_up_and_cookie_secret_kept(auth_env: Env) -> None:
    env = auth_env
    phase(env).apply(env.emit)
    cookie = env.secret_data(SECRET)["cookie-secret"]
    new = env.kc.rotate_secret("devpi-dashboard")
    status = phase(env).status()
    assert status.state is State.PROGRESSING and SECRET in status.reason
    plan = phase(env).plan()
    assert plan.items[0].changes == ["client-secret: changes"]
    phase(env).apply(env.emit)
    data = env.secret_data(SECRET)
    assert data["client-secret"] == new and data["cookie-secret"] == cookie


def test_hand_made_client_is_corrected(auth_env: Env) -> None:
    env = auth_env
    uuid = env.kc.add_client(
        "thinkube",
        {"clientId": "devpi-dashboard", "redirectUris": ["http://devpi.example.com/*"]},
    )
    status = phase(env).status()
    assert status.state is not State.HEALTHY
    phase(env).apply(env.emit)
    client = env.kc.client("devpi-dashboard")
    assert client is not None and client["id"] == uuid
    assert client["redirectUris"] == ["https://devpi.example.com/oauth2/callback"]
    assert any("updated: " in line and "redirectUris" in line for line in env.logs())
    assert phase(env).status().state is State.HEALTHY


def test_drift_in_keycloak_shows_in_status(auth_env: Env) -> None:
    env = auth_env
    phase(env).apply(env.emit)
    env.kc.update_client_direct("devpi-dashboard", {"directAccessGrantsEnabled": True})
    status = phase(env).status()
    assert status.state is State.PROGRESSING
    assert "directAccessGrantsEnabled" in status.reason


def test_status_without_admin_password_is_not_healthy(
    auth_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = auth_env
    phase(env).apply(env.emit)
    monkeypatch.delenv("KEYCLOAK_ADMIN_PASSWORD")
    status = phase(env).status()
    assert status.state is State.UNKNOWN and "KEYCLOAK_ADMIN_PASSWORD" in status.reason
    with pytest.raises(PhaseError) as e:
        phase(env).apply(env.emit)
    assert "KEYCLOAK_ADMIN_PASSWORD" in e.value.message


def test_session_secret_from_the_tui_comes_first(
    auth_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from thinkube_devpi.secrets import Secret

    env = auth_env
    password = env.kc.admin_password
    monkeypatch.setenv("KEYCLOAK_ADMIN_PASSWORD", "wrong-password")
    env.ctx.session_secrets["KEYCLOAK_ADMIN_PASSWORD"] = Secret(password, "prompt")
    phase(env).apply(env.emit)
    assert env.kc.client("devpi-dashboard") is not None


@pytest.mark.parametrize(
    ("fault", "step"),
    [
        ("down", "cannot connect to https://localhost:9"),
        ("401", "signing in as admin user"),
        ("500", "creating client 'devpi-dashboard'"),
        ("timeout", "looking up client 'devpi-dashboard'"),
    ],
)
def test_keycloak_faults_stop_the_phase_and_the_next_run_repairs(
    auth_env: Env, monkeypatch: pytest.MonkeyPatch, fault: str, step: str
) -> None:
    env = auth_env
    events: list[object] = []
    runner = Runner(env.ctx, phases=[phase(env, timeout=0.3)], emit=events.append)
    if fault == "down":
        env.settings.keycloak_url = "https://localhost:9"
    elif fault == "401":
        monkeypatch.setenv("KEYCLOAK_ADMIN_PASSWORD", "wrong")
    elif fault == "500":
        env.kc.fail("POST", r"/clients$", 500)
    else:
        env.kc.hang("GET", r"/clients$", 1.0)
    assert runner.apply(["keycloak"]) is False
    finished = [e for e in events if type(e).__name__ == "PhaseFinished"]
    message = finished[-1].message  # type: ignore[attr-defined]
    assert message.startswith("Keycloak: ") and step in message
    assert env.api.get("v1", "Secret", SECRET, "devpi") is None  # nothing half-written

    env.kc.clear_faults()
    monkeypatch.setenv("KEYCLOAK_ADMIN_PASSWORD", env.kc.admin_password)
    env.settings.keycloak_url = env.kc.url
    assert Runner(env.ctx, phases=[phase(env)]).apply(["keycloak"]) is True
    assert phase(env).status().state is State.HEALTHY


def test_rollback_deletes_the_client_by_uuid_and_keeps_others(auth_env: Env) -> None:
    env = auth_env
    other = env.kc.add_client("thinkube", {"clientId": "grafana"})
    phase(env).apply(env.emit)
    uuid = env.kc.client("devpi-dashboard")["id"]  # type: ignore[index]
    phase(env).rollback(env.emit)
    deletes = [w.path for w in env.kc.writes() if w.method == "DELETE"]
    assert deletes == [f"/admin/realms/thinkube/clients/{uuid}"]
    assert [c["id"] for c in env.kc.clients()] == [other]
    assert env.api.get("v1", "Secret", SECRET, "devpi") is None
    assert phase(env).status().state is State.MISSING
    phase(env).rollback(env.emit)  # again: nothing left, no error


def test_rollback_keeps_a_client_not_made_by_us(auth_env: Env) -> None:
    env = auth_env
    env.kc.add_client("thinkube", {"clientId": "devpi-dashboard"})
    phase(env).rollback(env.emit)
    assert env.kc.client("devpi-dashboard") is not None
    assert any("kept: not made by thinkube-devpi" in line for line in env.logs())


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"keycloak_url": "http://auth.example.com"}, "Invalid Keycloak issuer URL"),
        ({"keycloak_url": "https://auth.example.com/realms/x"}, "Invalid Keycloak issuer URL"),
        ({"keycloak_url": "https://auth.example.com?x=1"}, "Invalid Keycloak issuer URL"),
        ({"dashboard_host": "devpi.other.org"}, "outside the domain"),
    ],
)
def test_bad_input_fails_before_anything_is_written(
    auth_env: Env, change: dict[str, str], words: str
) -> None:
    env = auth_env
    for key, value in change.items():
        setattr(env.settings, key, value)
    env.api.clear_log()
    with pytest.raises(PhaseError) as e:
        phase(env).apply(env.emit)
    assert words in e.value.message and e.value.hint
    assert env.api.writes() == [] and env.kc.requests == []


def test_issuer_mismatch_is_refused(auth_env: Env) -> None:
    env = auth_env
    env.kc.issuer_override = "https://auth.elsewhere.example/realms/thinkube"
    with pytest.raises(PhaseError) as e:
        phase(env).apply(env.emit)
    assert "checking the issuer" in e.value.message
    assert env.kc.writes() == []


def test_no_secret_leaks_anywhere(auth_env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env = auth_env
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    with argv_recorder() as argv:
        phase(env).apply(env.emit)
        phase(env).status()
        plan = phase(env).plan()
        env.kc.fail("GET", r"/client-secret$", 500)
        with pytest.raises(PhaseError) as e:
            phase(env).apply(env.emit)
        messages.append(str(e.value))
        env.kc.fail("GET", r"/clients$", 503)
        with pytest.raises(PhaseError) as e:
            phase(env).rollback(env.emit)
        messages.append(str(e.value))
        phase(env).rollback(env.emit)
    data_before = env.kc.issued_secrets
    secrets = [env.kc.admin_password, *data_before]
    cookie_values = [
        w.json()["data"]["cookie-secret"]
        for w in env.api.writes()
        if w.path.endswith(f"/secrets/{SECRET}") and w.method == "PATCH"
    ]
    secrets += [base64.b64decode(v).decode() for v in cookie_values]
    assert len(secrets) >= 3
    assert_absent("events", [repr(e) for e in env.events], secrets)
    assert_absent("plan", repr(plan), secrets)
    assert_absent("logs", caplog.text, secrets)
    assert_absent("exception messages", messages, secrets)
    assert_absent("argv", argv, secrets)
    for w in env.api.requests:
        if "/secrets/" in w.path and w.method == "PATCH":
            continue  # the Secret writes themselves
        assert_absent(f"kube {w.method} {w.path}", w.body.decode(errors="replace"), secrets)
    for r in env.kc.requests:
        if r.path.endswith("/openid-connect/token"):
            continue
        assert_absent(f"keycloak {r.method} {r.path}", r.text, secrets)

"""The Keycloak admin client against the fake Keycloak (real paths, shapes and status codes)."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote, quote_plus

import pytest

from fakes.http import free_port
from fakes.keycloak import FakeKeycloak
from leakcheck import assert_absent
from thinkube_devpi.installer.keycloak import (
    MANAGED_DESCRIPTION,
    ClientSpec,
    KeycloakAdmin,
    KeycloakError,
)
from thinkube_devpi.secrets import Secret

SPEC = ClientSpec("devpi-dashboard", "devpi.example.com")
GROUPS = ClientSpec("devpi-dashboard", "devpi.example.com", groups_claim=True)


def admin(kc: FakeKeycloak, **kw: object) -> KeycloakAdmin:
    password = kw.pop("password", kc.admin_password)
    kw.setdefault("ca_file", kc.tls.ca_file if kc.tls else None)
    return KeycloakAdmin(kc.url, "thinkube", "admin", Secret(str(password)), **kw)  # type: ignore[arg-type]


def test_creates_the_client_as_wanted(fake_keycloak: FakeKeycloak) -> None:
    with admin(fake_keycloak) as a:
        result = a.ensure(GROUPS)
    assert result.created
    client = fake_keycloak.client("devpi-dashboard")
    assert client is not None and client["id"] == result.uuid
    assert client["publicClient"] is False
    assert client["standardFlowEnabled"] is True
    assert client["directAccessGrantsEnabled"] is False
    assert client["implicitFlowEnabled"] is False
    assert client["serviceAccountsEnabled"] is False
    assert client["redirectUris"] == ["https://devpi.example.com/oauth2/callback"]
    assert client["webOrigins"] == ["https://devpi.example.com"]
    assert client["baseUrl"] == "https://devpi.example.com/"
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["description"] == MANAGED_DESCRIPTION
    mappers = {m["name"]: m for m in fake_keycloak.client_mappers(result.uuid)}
    aud = mappers["devpi-dashboard-audience"]
    assert aud["protocolMapper"] == "oidc-audience-mapper"
    assert aud["config"]["included.client.audience"] == "devpi-dashboard"
    assert aud["config"]["access.token.claim"] == "true"
    groups = mappers["groups"]
    assert groups["protocolMapper"] == "oidc-group-membership-mapper"
    assert groups["config"]["claim.name"] == "groups"
    # a POST to /clients, two mappers: three writes, and the create used the real path
    writes = fake_keycloak.writes()
    assert next((w.method, w.path) for w in writes) == ("POST", "/admin/realms/thinkube/clients")
    assert len(writes) == 3


def test_converged_client_gets_no_write(fake_keycloak: FakeKeycloak) -> None:
    with admin(fake_keycloak) as a:
        a.ensure(GROUPS)
    fake_keycloak.clear_log()
    with admin(fake_keycloak) as a:
        result = a.ensure(GROUPS)
        assert a.writes == 0
    assert not result.changed
    assert fake_keycloak.writes() == []


def test_hand_made_client_is_corrected_and_keeps_its_secret(
    fake_keycloak: FakeKeycloak,
) -> None:
    uuid = fake_keycloak.add_client(
        "thinkube",
        {
            "clientId": "devpi-dashboard",
            "redirectUris": ["https://packages.example.com/*", "*"],
            "directAccessGrantsEnabled": True,
            "publicClient": False,
            "attributes": {"custom.setting": "kept"},
        },
    )
    before = fake_keycloak.secret_of("devpi-dashboard")
    with admin(fake_keycloak) as a:
        live, drift = a.drift(SPEC)
        assert live is not None and "redirectUris" in drift
        assert "directAccessGrantsEnabled" in drift
        result = a.ensure(SPEC)
    assert result.uuid == uuid and not result.created
    assert "redirectUris" in result.changes
    client = fake_keycloak.client("devpi-dashboard")
    assert client is not None
    assert client["redirectUris"] == ["https://devpi.example.com/oauth2/callback"]
    assert client["directAccessGrantsEnabled"] is False
    assert client["attributes"]["custom.setting"] == "kept"
    assert client["secret"] == before
    put = [w for w in fake_keycloak.writes() if w.method == "PUT"]
    assert put and put[0].path == f"/admin/realms/thinkube/clients/{uuid}"
    # the update never sends the client secret back
    assert_absent("the update's body", put[0].text, [before])


def test_groups_mapper_follows_the_setting(fake_keycloak: FakeKeycloak) -> None:
    with admin(fake_keycloak) as a:
        uuid = a.ensure(GROUPS).uuid
        result = a.ensure(SPEC)
    assert "mapper groups removed" in result.changes
    names = {m["name"] for m in fake_keycloak.client_mappers(uuid)}
    assert names == {"devpi-dashboard-audience"}


def test_changed_mapper_is_updated(fake_keycloak: FakeKeycloak) -> None:
    with admin(fake_keycloak) as a:
        uuid = a.ensure(SPEC).uuid
    realm = fake_keycloak.realms["thinkube"]
    realm.mappers[uuid][0]["config"]["access.token.claim"] = "false"
    with admin(fake_keycloak) as a:
        result = a.ensure(SPEC)
    assert result.changes == ["mapper devpi-dashboard-audience updated"]
    assert fake_keycloak.client_mappers(uuid)[0]["config"]["access.token.claim"] == "true"


def test_client_secret_read_and_delete_by_uuid(fake_keycloak: FakeKeycloak) -> None:
    other = fake_keycloak.add_client("thinkube", {"clientId": "grafana"})
    with admin(fake_keycloak) as a:
        uuid = a.ensure(SPEC).uuid
        secret = a.client_secret(uuid)
        assert secret.reveal() == fake_keycloak.secret_of("devpi-dashboard")
        assert a.delete_client(uuid) is True
        assert a.delete_client(uuid) is False
    deletes = [w for w in fake_keycloak.writes() if w.method == "DELETE"]
    assert deletes[0].path == f"/admin/realms/thinkube/clients/{uuid}"
    assert [c["id"] for c in fake_keycloak.clients()] == [other]


def test_token_expiring_mid_run_is_renewed(fake_keycloak: FakeKeycloak) -> None:
    fake_keycloak.expire_after(2)
    with admin(fake_keycloak) as a:
        result = a.ensure(GROUPS)
        assert a.token_requests == 2
    assert result.created
    assert len(fake_keycloak.token_requests()) == 2
    assert [r.status for r in fake_keycloak.requests].count(401) == 1


def test_token_is_renewed_before_it_expires(fake_keycloak: FakeKeycloak) -> None:
    now = [1000.0]
    with admin(fake_keycloak, clock=lambda: now[0]) as a:
        a.find_client("devpi-dashboard")
        a.find_client("devpi-dashboard")
        assert a.token_requests == 1
        now[0] += 50  # 60 s tokens are renewed 15 s before they expire
        a.find_client("devpi-dashboard")
        assert a.token_requests == 2
    assert 401 not in [r.status for r in fake_keycloak.requests]


def test_wrong_password_is_401_naming_the_step(fake_keycloak: FakeKeycloak) -> None:
    with admin(fake_keycloak, password="not-the-password") as a, pytest.raises(KeycloakError) as e:
        a.ensure(SPEC)
    assert e.value.status == 401
    assert "signing in as admin user 'admin'" in str(e.value)
    assert "HTTP 401" in str(e.value)
    assert "KEYCLOAK_ADMIN_PASSWORD" in e.value.hint


def test_missing_realm_is_404(fake_keycloak: FakeKeycloak) -> None:
    a = KeycloakAdmin(
        fake_keycloak.url,
        "nope",
        "admin",
        Secret(fake_keycloak.admin_password),
        ca_file=fake_keycloak.tls.ca_file,  # type: ignore[union-attr]
    )
    with a:
        with pytest.raises(KeycloakError) as e:
            a.find_client("devpi-dashboard")
        with pytest.raises(KeycloakError) as e2:
            a.issuer()
    assert e.value.status == 404 and "Realm not found" in str(e.value)
    assert "realm 'nope'" in str(e.value)
    assert e2.value.status == 404 and "realm" in str(e2.value)


def test_server_error_and_timeout_and_down(fake_keycloak: FakeKeycloak) -> None:
    fake_keycloak.fail("POST", r"/clients$", 500)
    with admin(fake_keycloak) as a, pytest.raises(KeycloakError) as e:
        a.ensure(SPEC)
    assert e.value.status == 500 and "creating client 'devpi-dashboard'" in str(e.value)

    fake_keycloak.hang("GET", r"/clients$", 1.0)
    with admin(fake_keycloak, timeout=0.2) as a, pytest.raises(KeycloakError) as e:
        a.ensure(SPEC)
    assert "did not answer in time" in str(e.value) and "looking up client" in str(e.value)
    fake_keycloak.clear_faults()

    port = free_port()
    down = KeycloakAdmin(f"https://localhost:{port}", "thinkube", "admin", Secret("x" * 12))
    with down, pytest.raises(KeycloakError) as e:
        down.find_client("devpi-dashboard")
    assert "cannot connect" in str(e.value) and "signing in" in str(e.value)


def test_tls_is_verified_and_a_ca_file_is_trusted(fake_keycloak: FakeKeycloak) -> None:
    with admin(fake_keycloak, ca_file=None) as a, pytest.raises(KeycloakError) as e:
        a.issuer()
    assert "TLS verification" in str(e.value) and "keycloak_ca_file" in e.value.hint
    with admin(fake_keycloak) as a:
        assert a.issuer() == f"{fake_keycloak.url}/realms/thinkube"
    with pytest.raises(KeycloakError) as e:
        admin(fake_keycloak, ca_file="/nonexistent/ca.pem")
    assert "CA file" in str(e.value)


def test_no_secret_in_messages_logs_or_bodies(
    fake_keycloak: FakeKeycloak, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = fake_keycloak.admin_password
    messages = []
    with admin(fake_keycloak) as a:
        uuid = a.ensure(GROUPS).uuid
        client_secret = a.client_secret(uuid).reveal()
        # Keycloak echoing a secret in an error text is redacted
        fake_keycloak.fail(
            "GET", r"/clients$", 500, {"errorMessage": f"boom {password} {client_secret}"}
        )
        with pytest.raises(KeycloakError) as e:
            a.find_client("devpi-dashboard")
        messages.append(str(e.value))
        # ... and in the form the token request sent it (URL-encoded), and base64
        echoed = " ".join(
            [quote_plus(password), quote(password, safe=""), base64.b64encode(password.encode()).decode()]
        )
        fake_keycloak.fail("GET", r"/clients$", 500, {"errorMessage": f"echo: password={echoed}"})
        with pytest.raises(KeycloakError) as e:
            a.find_client("devpi-dashboard")
        assert "echo: password=" in str(e.value)
        messages.append(str(e.value))
    with admin(fake_keycloak, password=password + "x") as a, pytest.raises(KeycloakError) as e:
        a.find_client("x")
    messages.append(str(e.value))
    secrets = [password, client_secret]
    assert_absent("exception messages", messages, secrets)
    assert_absent("logs", caplog.text, secrets)
    for record in fake_keycloak.requests:
        if record.path.endswith("/openid-connect/token"):
            continue  # the admin password's one place
        assert_absent(f"{record.method} {record.path}", record.text, secrets)
        assert_absent("request headers", json.dumps(record.headers), [password])

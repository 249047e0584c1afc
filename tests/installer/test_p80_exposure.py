"""Phase 80: Ingress and HTTPRoute renderings, TLS copy, NetworkPolicies, preflight."""

from __future__ import annotations

import base64
import copy
import logging
from typing import Any

import pytest

from fakes.auth_cluster import Env
from fakes.kube_api import schema_errors
from fakes.npm_validators import validate_httproutes
from fakes.thinkube import GatewayController, seed_thinkube
from fakes.tls import shared_pki
from leakcheck import argv_recorder, assert_absent
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import State
from thinkube_devpi.installer.manifests import selector
from thinkube_devpi.installer.phases.base import Context, PhaseError, SecretObject, realize
from thinkube_devpi.installer.phases.p80_exposure import ExposurePhase

WILDCARD = {"name": "thinkube-wildcard-tls", "namespace": "default"}


def objects(settings: Settings) -> list[Any]:
    return [realize(o) for o in ExposurePhase(Context(settings)).objects()]


def by(objs: list[Any], kind: str, name: str) -> dict[str, Any]:
    return next(
        o
        for o in objs
        if isinstance(o, dict) and o["kind"] == kind and o["metadata"]["name"] == name
    )


def backend_of_route(route: dict[str, Any]) -> tuple[str, int]:
    ref = route["spec"]["rules"][0]["backendRefs"][0]
    return ref["name"], ref["port"]


def backend_of_ingress(ing: dict[str, Any]) -> tuple[str, int]:
    svc = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    return svc["name"], svc["port"]["number"]


INGRESS = Settings(
    domain="example.com",
    exposure="ingress",
    ingress_peer_namespace="ingress-nginx",
    tls_secret_name="thinkube-wildcard-tls",
)
GATEWAY = Settings(domain="example.com")  # the defaults: thinkube's Gateway, listener https


def test_ingress_rendering() -> None:
    objs = objects(INGRESS)
    dash, api = by(objs, "Ingress", "devpi-dashboard"), by(objs, "Ingress", "devpi-api")
    assert backend_of_ingress(dash) == ("oauth2-proxy", 4180)
    assert backend_of_ingress(api) == ("devpi", 3141)
    assert dash["spec"]["rules"][0]["host"] == "devpi.example.com"
    assert api["spec"]["rules"][0]["host"] == "devpi-api.example.com"
    assert dash["spec"]["ingressClassName"] == "nginx"
    notes = api["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "200m"
    assert notes["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "300"
    assert "annotations" not in dash["metadata"]  # no controller-specific auth annotations
    assert all(i["spec"]["tls"][0]["secretName"] == "devpi-tls" for i in (dash, api))
    tls = next(o for o in objs if isinstance(o, SecretObject))
    assert tls.type == "kubernetes.io/tls" and set(tls.keys) == {"tls.crt", "tls.key"}
    ranges = copy.copy(INGRESS)
    ranges.api_source_ranges = ["10.0.0.0/8", "192.168.0.0/16"]
    api = by(objects(ranges), "Ingress", "devpi-api")
    assert (
        api["metadata"]["annotations"]["nginx.ingress.kubernetes.io/whitelist-source-range"]
        == "10.0.0.0/8,192.168.0.0/16"
    )


def test_gateway_rendering_strips_the_outside_url_header() -> None:
    objs = objects(GATEWAY)
    dash, api = by(objs, "HTTPRoute", "devpi-dashboard"), by(objs, "HTTPRoute", "devpi-api")
    assert backend_of_route(dash) == ("oauth2-proxy", 4180)
    assert backend_of_route(api) == ("devpi", 3141)
    for route in (dash, api):
        parent = route["spec"]["parentRefs"][0]
        assert parent == {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "thinkube-gateway",
            "namespace": "gateway-system",
            "sectionName": "https",
        }
        [strip] = route["spec"]["rules"][0]["filters"]
        assert strip["requestHeaderModifier"]["remove"] == ["X-Outside-Url"]
    assert api["spec"]["rules"][0]["timeouts"] == {"request": "300s", "backendRequest": "300s"}
    assert not any(isinstance(o, SecretObject) for o in objs)  # the Gateway holds the certificate


def test_httproutes_pass_the_gateway_api_validator_and_a_wrong_one_fails() -> None:
    routes = [o for o in objects(GATEWAY) if o["kind"] == "HTTPRoute"]
    wrong = copy.deepcopy(routes[1])
    wrong["spec"]["rules"][0]["backendRefs"][0]["port"] = "3141"  # a string port
    missing = copy.deepcopy(routes[0])
    del missing["spec"]["rules"][0]["filters"][0]["type"]
    results = validate_httproutes([*routes, wrong, missing])
    assert results[:2] == [None, None]
    assert results[2] and "port" in results[2]
    assert results[3] and "type" in results[3]


@pytest.mark.parametrize("settings", [INGRESS, GATEWAY], ids=["ingress", "gateway"])
def test_built_in_objects_pass_strict_schema(settings: Settings) -> None:
    for obj in objects(settings):
        if isinstance(obj, SecretObject):
            obj = obj.manifest({k: _fake_secret() for k in obj.keys})
        if obj["apiVersion"].startswith("gateway.networking.k8s.io"):
            continue  # checked by the Gateway API validator
        assert schema_errors(obj) == [], obj["kind"]


def _fake_secret() -> Any:
    from thinkube_devpi.secrets import Secret

    return Secret("x" * 10)


def test_network_policies_select_devpi_and_oauth2_proxy() -> None:
    objs = objects(INGRESS)
    devpi = by(objs, "NetworkPolicy", "devpi")
    assert devpi["spec"]["podSelector"]["matchLabels"] == selector("devpi")
    sources = devpi["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": selector("oauth2-proxy")}} in sources
    assert {"podSelector": {"matchLabels": selector("devpi-init")}} in sources
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in sources
    assert devpi["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 3141}]
    proxy = by(objs, "NetworkPolicy", "oauth2-proxy")
    assert proxy["spec"]["podSelector"]["matchLabels"] == selector("oauth2-proxy")


# ---------------------------------------------------------------- against the fake cluster


def wildcard(env: Env, names: list[str] | None = None, **kw: Any) -> tuple[str, str]:
    cert, key = shared_pki().issue(names or ["*.example.com"], **kw)
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": dict(WILDCARD),
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(cert).decode(),
            "tls.key": base64.b64encode(key).decode(),
        },
    }
    if env.api.get("v1", "Secret", WILDCARD["name"], WILDCARD["namespace"]):
        env.api.delete("v1", "Secret", WILDCARD["name"], WILDCARD["namespace"])
    env.api.create(obj)
    return cert.decode(), key.decode()


def ingress_class(env: Env, name: str = "nginx") -> None:
    """An ingress-nginx cluster: the class, the controller's pod, settings that use them."""
    env.settings.exposure = "ingress"
    env.settings.ingress_peer_namespace = "ingress-nginx"
    env.settings.tls_secret_name = WILDCARD["name"]
    env.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress-nginx"}})
    labels = {"app.kubernetes.io/name": "ingress-nginx"}
    env.api.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "ingress-nginx/controller"}]},
                },
            },
        }
    )
    env.api.make_deployment_ready("ingress-nginx", "ingress-nginx-controller")
    env.api.create(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": name},
            "spec": {"controller": "k8s.io/ingress-nginx"},
        }
    )


def test_ingress_apply_status_reapply_repair_rollback(auth_env: Env) -> None:
    env = auth_env
    ingress_class(env)
    cert, key = wildcard(env)
    phase = ExposurePhase(env.ctx)
    assert {i.action for i in phase.plan().items} == {"create"}
    phase.apply(env.emit)
    assert env.secret_data("devpi-tls") == {"tls.crt": cert, "tls.key": key}
    status = ExposurePhase(env.ctx).status()
    assert status.state is State.HEALTHY and "expires" in status.reason

    rvs = {
        n: env.rv("networking.k8s.io/v1", "Ingress", n) for n in ("devpi-dashboard", "devpi-api")
    }
    tls_rv = env.rv("v1", "Secret", "devpi-tls")
    ExposurePhase(env.ctx).apply(env.emit)
    assert env.rv("v1", "Secret", "devpi-tls") == tls_rv
    assert {n: env.rv("networking.k8s.io/v1", "Ingress", n) for n in rvs} == rvs

    renewed, _ = wildcard(env)  # cert-manager renewed the wildcard: our copy is stale
    status = ExposurePhase(env.ctx).status()
    assert status.state is State.PROGRESSING and "devpi-tls" in status.reason
    assert "is not its source's" in status.reason and "expires" in status.reason
    ExposurePhase(env.ctx).apply(env.emit)
    assert env.secret_data("devpi-tls")["tls.crt"] == renewed
    assert ExposurePhase(env.ctx).status().state is State.HEALTHY

    ExposurePhase(env.ctx).rollback(env.emit)
    for kind, name in (("Ingress", "devpi-api"), ("NetworkPolicy", "devpi")):
        assert env.api.get("networking.k8s.io/v1", kind, name, "devpi") is None
    assert env.api.get("v1", "Secret", "devpi-tls", "devpi") is None
    assert env.api.get("v1", "Secret", WILDCARD["name"], WILDCARD["namespace"]) is not None


def test_certificate_from_files(auth_env: Env, tmp_path) -> None:
    env = auth_env
    ingress_class(env)
    cert, key = shared_pki().issue(["devpi.example.com", "devpi-api.example.com"])
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    env.settings.tls_cert_file = str(tmp_path / "tls.crt")
    env.settings.tls_key_file = str(tmp_path / "tls.key")
    ExposurePhase(env.ctx).apply(env.emit)
    assert env.secret_data("devpi-tls")["tls.key"] == key.decode()
    assert ExposurePhase(env.ctx).status().state is State.HEALTHY


def test_gateway_apply_and_status(auth_env: Env) -> None:
    env = auth_env
    seed_thinkube(env.api)
    for svc, port in (("devpi", 3141), ("oauth2-proxy", 4180)):
        env.api.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": svc, "namespace": "devpi"},
                "spec": {"ports": [{"port": port}], "selector": {"app": svc}},
            }
        )
    with GatewayController(env.api, "devpi"):
        ExposurePhase(env.ctx).apply(env.emit)
        route = env.api.get(
            "gateway.networking.k8s.io/v1", "HTTPRoute", "devpi-dashboard", "devpi"
        )
        assert route is not None and backend_of_route(route) == ("oauth2-proxy", 4180)
        assert ExposurePhase(env.ctx).status().state is State.HEALTHY
        rv = env.rv("gateway.networking.k8s.io/v1", "HTTPRoute", "devpi-api")
        ExposurePhase(env.ctx).apply(env.emit)
    assert env.rv("gateway.networking.k8s.io/v1", "HTTPRoute", "devpi-api") == rv


def _gateway(env: Env, listeners: list[str]) -> None:
    env.api.create(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "thinkube-gateway", "namespace": "default"},
            "spec": {
                "gatewayClassName": "cilium",
                "listeners": [{"name": n, "port": 443, "protocol": "HTTPS"} for n in listeners],
            },
        }
    )


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("no-ingress-class", "IngressClass 'nginx' does not exist"),
        ("no-wildcard", "does not exist"),
        ("wildcard-wrong-hosts", "does not cover devpi.example.com"),
        ("missing-cert-files", "file"),
        ("no-gateway", "Gateway gateway-system/thinkube-gateway does not exist"),
        ("no-listener", "has no listener 'https'"),
        ("gateway-source-ranges", "api_source_ranges cannot be enforced"),
        ("dashboard-outside-domain", "outside the domain"),
    ],
)
def test_bad_input_fails_before_anything_is_written(
    auth_env: Env, tmp_path, case: str, words: str
) -> None:
    env = auth_env
    s = env.settings
    if case != "no-ingress-class":
        ingress_class(env)
    else:
        s.exposure = "ingress"
    if case not in ("no-wildcard", "missing-cert-files"):
        wildcard(env, ["*.other.org"] if case == "wildcard-wrong-hosts" else None)
    if case == "missing-cert-files":
        s.tls_cert_file = str(tmp_path / "nope.crt")
        s.tls_key_file = str(tmp_path / "nope.key")
    if case in ("no-gateway", "no-listener", "gateway-source-ranges"):
        s.exposure = "gateway"
        s.gateway_section = "https"
        s.gateway_namespace = "gateway-system" if case == "no-gateway" else "default"
    if case == "no-listener":
        _gateway(env, ["http"])
    if case == "gateway-source-ranges":
        _gateway(env, ["https"])
        s.api_source_ranges = ["10.0.0.0/8"]
    if case == "dashboard-outside-domain":
        s.dashboard_host = "devpi.other.org"
    env.api.clear_log()
    with pytest.raises(PhaseError) as e:
        ExposurePhase(env.ctx).apply(env.emit)
    assert words in e.value.message, e.value.message
    assert e.value.hint
    assert env.api.writes() == []


def test_tls_key_never_leaks(auth_env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env = auth_env
    caplog.set_level(logging.DEBUG)
    ingress_class(env)
    _, key = wildcard(env)
    with argv_recorder() as argv:
        ExposurePhase(env.ctx).apply(env.emit)
        plan = ExposurePhase(env.ctx).plan()
        status = ExposurePhase(env.ctx).status()
    secrets = [key.strip().splitlines()[1]]  # a line of the key's base64 body
    for where, value in (
        ("plan", repr(plan)),
        ("status", repr(status)),
        ("events", [repr(x) for x in env.events]),
        ("logs", caplog.text),
        ("argv", argv),
    ):
        assert_absent(where, value, secrets)
    for w in env.api.requests:
        if "/secrets/" in w.path and w.method == "PATCH":
            continue
        assert_absent(f"kube {w.method} {w.path}", w.body.decode(errors="replace"), secrets)

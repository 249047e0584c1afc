"""Exposure on a cluster shaped like a real thinkube (issue 12, items 3, 4, 5).

- who may reach devpi and oauth2-proxy: a NetworkPolicy evaluator over thinkube's pods (Envoy
  Gateway's proxies in envoy-gateway-system, the devpi namespace's pods as the product renders
  them, Argo's build pods, Keycloak ...), and over Cilium's own gateway (``reserved:ingress``);
- which route answers a request: Gateway API attachment and precedence over thinkube's Gateway
  (listeners http/https, the catch-all redirect on http) and the product's HTTPRoutes;
- phase 80's preflight and health against a thinkube-seeded fake cluster, with the gateway's
  controller reporting route status as Envoy Gateway does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.gateway_routing import serving_route
from fakes.kube_api import FakeKubeAPI
from fakes.netpol import Entity, Pod, allowed
from fakes.thinkube import (
    EG_NAMESPACE,
    GATEWAY,
    GATEWAY_NAMESPACE,
    GW,
    PROXY_LABELS,
    THINKUBE_CRDS,
    GatewayController,
    play_gateway,
    seed_thinkube,
)
from thinkube_devpi.config import Settings
from thinkube_devpi.installer import deployrepo
from thinkube_devpi.installer.events import State
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context, PhaseError, realize
from thinkube_devpi.installer.phases.p30_redis import RedisPhase
from thinkube_devpi.installer.phases.p50_oauth2_proxy import OAuth2ProxyPhase
from thinkube_devpi.installer.phases.p70_deploy import DeployPhase
from thinkube_devpi.installer.phases.p80_exposure import ExposurePhase

DEFAULTS = Settings(domain="example.com").validate()


def _objs(phase: Any) -> list[dict[str, Any]]:
    return [o for o in (realize(x) for x in phase.objects()) if isinstance(o, dict)]


def _pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["spec"]["template"]["metadata"]["labels"])


def thinkube_pods(settings: Settings) -> dict[str, Pod]:
    """The pods of a thinkube running devpi, with the labels the product gives its own."""
    ctx = Context(settings)
    ns = settings.namespace

    def rendered(phase: Any, kind: str, name: str) -> dict[str, str]:
        obj = next(o for o in _objs(phase) if o["kind"] == kind and o["metadata"]["name"] == name)
        return _pod_labels(obj)

    return {
        "gateway proxy": Pod("envoy-thinkube-gateway-1", EG_NAMESPACE, dict(PROXY_LABELS)),
        "gateway controller": Pod(
            "envoy-gateway-1", EG_NAMESPACE, {"control-plane": "envoy-gateway"}
        ),
        "devpi": Pod("devpi-1", ns, _pod_labels(deployrepo.deployment(settings))),
        "oauth2-proxy": Pod(
            "oauth2-proxy-1", ns, rendered(OAuth2ProxyPhase(ctx), "Deployment", "oauth2-proxy")
        ),
        "init job": Pod("devpi-init-1", ns, rendered(DeployPhase(ctx), "Job", "devpi-init")),
        "redis": Pod("redis-1", ns, rendered(RedisPhase(ctx), "Deployment", "ephemeral-redis")),
        "build pod": Pod(
            "devpi-build-x-resolve-1",
            settings.argo_namespace,
            {"workflows.argoproj.io/workflow": "devpi-build-x"},
        ),
        "keycloak": Pod("keycloak-0", "keycloak", {"app.kubernetes.io/name": "keycloak"}),
        "some app": Pod("web-1", "default", {"app.kubernetes.io/name": "web"}),
        "argocd": Pod("argocd-server-1", "argocd", {"app.kubernetes.io/name": "argocd-server"}),
    }


def policies(settings: Settings) -> list[dict[str, Any]]:
    """Every policy the product applies (phase 30's for Redis, phase 80's)."""
    ctx = Context(settings)
    return [
        o
        for phase in (RedisPhase(ctx), ExposurePhase(ctx))
        for o in _objs(phase)
        if o["kind"] in ("NetworkPolicy", "CiliumNetworkPolicy")
    ]


ALLOWED = {("gateway proxy", "devpi", 3141), ("gateway proxy", "oauth2-proxy", 4180),
           ("oauth2-proxy", "devpi", 3141), ("init job", "devpi", 3141)}


def test_thinkube_gateway_reaches_devpi_and_oauth2_proxy_and_nothing_else_does() -> None:
    pods = thinkube_pods(DEFAULTS)
    pol = policies(DEFAULTS)
    for src in pods:
        for dst, port in (("devpi", 3141), ("oauth2-proxy", 4180)):
            want = (src, dst, port) in ALLOWED
            got = allowed(pol, pods[src], pods[dst], port)
            assert got == want, f"{src} -> {dst}:{port}: {'allowed' if got else 'denied'}"
    # another port on the same pods stays closed, even for the gateway
    assert not allowed(pol, pods["gateway proxy"], pods["devpi"], 8080)
    # with '*' every pod of the peer namespace counts, the gateway's controller too
    wide = dataclasses.replace(DEFAULTS, ingress_peer_labels=["*"])
    assert allowed(policies(wide), pods["gateway controller"], pods["devpi"], 3141)


def test_the_old_ingress_nginx_peer_gives_thinkube_503s() -> None:
    old = dataclasses.replace(DEFAULTS, ingress_peer_namespace="ingress-nginx")
    pods = thinkube_pods(old)
    assert not allowed(policies(old), pods["gateway proxy"], pods["devpi"], 3141)
    assert not allowed(policies(old), pods["gateway proxy"], pods["oauth2-proxy"], 4180)


def test_cilium_own_gateway_needs_and_gets_a_cilium_policy() -> None:
    ingress = Entity("ingress")
    # a namespace peer cannot admit Cilium's gateway traffic: it is no pod
    pods = thinkube_pods(DEFAULTS)
    assert not allowed(policies(DEFAULTS), ingress, pods["devpi"], 3141)
    cilium = dataclasses.replace(DEFAULTS, ingress_peer="cilium-ingress")
    pods = thinkube_pods(cilium)
    pol = policies(cilium)
    assert {p["kind"] for p in pol} == {"NetworkPolicy", "CiliumNetworkPolicy"}
    assert allowed(pol, ingress, pods["devpi"], 3141)
    assert allowed(pol, ingress, pods["oauth2-proxy"], 4180)
    assert not allowed(pol, ingress, pods["redis"], 6379)
    assert not allowed(pol, ingress, pods["devpi"], 8080)
    assert allowed(pol, pods["oauth2-proxy"], pods["devpi"], 3141)
    for src in ("gateway proxy", "build pod", "keycloak", "some app"):
        assert not allowed(pol, pods[src], pods["devpi"], 3141), src
        assert not allowed(pol, pods[src], pods["oauth2-proxy"], 4180), src


# ---------------------------------------------------------------- routes on thinkube's Gateway


@pytest.fixture
def thinkube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI(crds=THINKUBE_CRDS) as api:
        seed_thinkube(api)
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "devpi"}})
        yield api


def _routing(api: FakeKubeAPI, settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    gateway = api.get(GW, "Gateway", GATEWAY, GATEWAY_NAMESPACE)
    ours = [
        {**o, "metadata": {**o["metadata"], "creationTimestamp": "2026-12-04T00:00:00Z"}}
        for o in _objs(ExposurePhase(Context(settings)))
        if o["kind"] == "HTTPRoute"
    ]
    return gateway, [*api.list(GW, "HTTPRoute", GATEWAY_NAMESPACE), *ours]


def test_routes_serve_https_only_and_the_redirect_keeps_port_80(thinkube: FakeKubeAPI) -> None:
    gateway, routes = _routing(thinkube, DEFAULTS)
    redirect = f"{GATEWAY_NAMESPACE}/http-to-https-redirect"
    for host, name in ((DEFAULTS.dashboard, "devpi-dashboard"), (DEFAULTS.api, "devpi-api")):
        assert serving_route(gateway, routes, 443, host) == f"devpi/{name}"
        assert serving_route(gateway, routes, 80, host) == redirect
    # the bug: without sectionName the API host's route outranks the redirect on plain HTTP
    loose = dataclasses.replace(DEFAULTS, gateway_section=None)
    gateway, routes = _routing(thinkube, loose)
    assert serving_route(gateway, routes, 80, loose.api) == "devpi/devpi-api"


def _ctx(api: FakeKubeAPI, tmp_path: Path, settings: Settings) -> Context:
    kube = Kube(api.api_client(), cache_dir=tmp_path / "cache")
    return Context(settings, kube=kube)


def test_defaults_pass_preflight_on_thinkube(thinkube: FakeKubeAPI, tmp_path: Path) -> None:
    ExposurePhase(_ctx(thinkube, tmp_path, DEFAULTS)).preflight()


@pytest.mark.parametrize(
    ("change", "words", "hint"),
    [
        ({"ingress_peer_namespace": "ingress-nginx"}, "holds none of the gateway's proxy pods", "envoy-gateway-system"),
        ({"ingress_peer_namespace": "default", "gateway_name": "other"}, "does not exist", 'gateway_name = "thinkube-gateway"'),
        ({"gateway_section": "tls"}, "has no listener 'tls'", "https"),
        ({"exposure": "ingress"}, "IngressClass 'nginx' does not exist", 'exposure = "gateway"'),
        ({"ingress_peer": "cilium-ingress"}, "cilium-ingress", "ingress_peer"),
        ({"gateway_peer_cidrs": ["192.168.0.0/16"]}, "outside gateway_peer_cidrs", "10.244.0.0/16"),
    ],
)
def test_preflight_says_what_to_set(
    thinkube: FakeKubeAPI, tmp_path: Path, change: dict[str, Any], words: str, hint: str
) -> None:
    settings = dataclasses.replace(DEFAULTS, **change)
    if change.get("ingress_peer") == "cilium-ingress":
        # a cluster without Cilium's CRDs
        with FakeKubeAPI() as plain:
            seed_thinkube(plain)
            with pytest.raises(PhaseError) as e:
                ExposurePhase(_ctx(plain, tmp_path, settings)).preflight()
    else:
        with pytest.raises(PhaseError) as e:
            ExposurePhase(_ctx(thinkube, tmp_path, settings)).preflight()
    assert words in e.value.message, e.value.message
    assert hint in e.value.hint, e.value.hint


def test_preflight_refuses_an_empty_peer_namespace(thinkube: FakeKubeAPI, tmp_path: Path) -> None:
    # a Gateway whose proxies are nowhere to be found (another implementation), empty namespace
    thinkube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nobody"}})
    settings = dataclasses.replace(DEFAULTS, ingress_peer_namespace="nobody", gateway_name="g2")
    gw = thinkube.get(GW, "Gateway", GATEWAY, GATEWAY_NAMESPACE)
    thinkube.create({"apiVersion": GW, "kind": "Gateway",
                     "metadata": {"name": "g2", "namespace": GATEWAY_NAMESPACE}, "spec": gw["spec"]})
    with pytest.raises(PhaseError) as e:
        ExposurePhase(_ctx(thinkube, tmp_path, settings)).preflight()
    assert "holds no pods" in e.value.message


def test_cilium_gateway_asks_for_cilium_ingress(thinkube: FakeKubeAPI, tmp_path: Path) -> None:
    thinkube.create({"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "cilium"},
                     "spec": {"controllerName": "io.cilium/gateway-controller"}})
    gw = thinkube.get(GW, "Gateway", GATEWAY, GATEWAY_NAMESPACE)
    thinkube.create({"apiVersion": GW, "kind": "Gateway",
                     "metadata": {"name": "cilium-gw", "namespace": GATEWAY_NAMESPACE},
                     "spec": {**gw["spec"], "gatewayClassName": "cilium"}})
    settings = dataclasses.replace(DEFAULTS, gateway_name="cilium-gw")
    with pytest.raises(PhaseError) as e:
        ExposurePhase(_ctx(thinkube, tmp_path, settings)).preflight()
    assert 'ingress_peer = "cilium-ingress"' in e.value.hint
    ExposurePhase(
        _ctx(thinkube, tmp_path, dataclasses.replace(settings, ingress_peer="cilium-ingress"))
    ).preflight()


def test_health_reads_route_status_and_reports_a_refused_route(
    thinkube: FakeKubeAPI, tmp_path: Path
) -> None:
    for svc, port in (("devpi", 3141), ("oauth2-proxy", 4180)):
        thinkube.create({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": svc, "namespace": "devpi"},
                         "spec": {"ports": [{"port": port}], "selector": {"a": "b"}}})
    ctx = _ctx(thinkube, tmp_path, DEFAULTS)
    ctx.wait_timeout = 10
    with GatewayController(thinkube, "devpi"):
        ExposurePhase(ctx).apply(lambda e: None)  # waits until the Gateway accepted both
        status = ExposurePhase(ctx).status()
    assert status.state is State.HEALTHY, status.reason
    assert "listener https" in status.reason
    route = thinkube.get(GW, "HTTPRoute", "devpi-api", "devpi")
    assert route["spec"]["parentRefs"][0]["sectionName"] == "https"
    # a route the gateway has not looked at yet
    thinkube.patch_status(GW, "HTTPRoute", "devpi-api", "devpi", {"parents": []})
    status = ExposurePhase(ctx).status()
    assert status.state is State.PROGRESSING and "not yet accepted" in status.reason
    # a backend Service goes away: ResolvedRefs=False, the route is reported refused
    thinkube.delete("v1", "Service", "oauth2-proxy", "devpi")
    play_gateway(thinkube, "devpi")
    status = ExposurePhase(ctx).status()
    assert status.state is State.FAILED and "BackendNotFound" in status.reason
    assert "devpi-dashboard" in status.reason
    # the Gateway loses its https listener: Accepted=False, and apply says so
    gw = thinkube.get(GW, "Gateway", GATEWAY, GATEWAY_NAMESPACE)
    spec = dict(gw["spec"])
    spec["listeners"] = [x for x in spec["listeners"] if x["name"] != "https"]
    thinkube.delete(GW, "Gateway", GATEWAY, GATEWAY_NAMESPACE)
    thinkube.create({"apiVersion": GW, "kind": "Gateway",
                     "metadata": {"name": GATEWAY, "namespace": GATEWAY_NAMESPACE}, "spec": spec})
    play_gateway(thinkube, "devpi")
    status = ExposurePhase(ctx).status()
    assert status.state is State.FAILED
    assert "Accepted=False (listener https): NoMatchingParent" in status.reason


def test_oauth2_proxy_trusts_forwarded_headers_only_from_the_gateway_peer() -> None:
    """oauth2-proxy with --reverse-proxy trusts X-Forwarded-* from anyone unless told which
    addresses are its proxies; the flags are checked against the pinned version's documented list."""
    from fakes.oauth2_flags import flag_problems

    args = OAuth2ProxyPhase(Context(DEFAULTS)).args()
    assert "--reverse-proxy=true" in args
    assert "--trusted-proxy-ip=10.244.0.0/16" in args  # thinkube's pod network
    assert "--insecure-oidc-allow-unverified-email=true" not in args
    unverified = dataclasses.replace(DEFAULTS, allow_unverified_email=True)
    args = OAuth2ProxyPhase(Context(unverified)).args()
    assert "--insecure-oidc-allow-unverified-email=true" in args
    assert flag_problems(args) == []

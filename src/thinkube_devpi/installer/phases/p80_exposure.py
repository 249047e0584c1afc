"""Phase 80: the dashboard and API hosts, as Ingress or as Gateway API HTTPRoutes.

- dashboard host -> Service ``oauth2-proxy`` (sign-in with Keycloak, then devpi);
- API host -> Service ``devpi`` directly, open for pip and devpi-client, with bodies large enough for
  wheels (``api_body_size_mb``, default 200) and read timeouts long enough for cold PyPI fetches
  (``api_read_timeout``, default 300 s). HTTPRoute has timeouts but no body-size field: README.md
  says what each gateway implementation needs.
- ``X-Outside-Url`` never reaches devpi from a client: HTTPRoutes remove it; for Ingress (where only
  a controller-wide setting could), devpi-server runs with a fixed ``--outside-url``.
- a TLS Secret for both hosts (Ingress only; a Gateway's listener holds its own certificate), copied
  from the cluster's wildcard Secret or made from files; status compares fingerprint and expiry
  with the source and a re-run repairs a stale copy.
- NetworkPolicies: devpi on 3141 only from the ingress/gateway peer namespace, oauth2-proxy and the
  init Job; oauth2-proxy on 4180 only from the peer namespace.

One thing, so one module past 500 lines: phase 80, both routes of exposure and their checks.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from thinkube_devpi.installer.auth_checks import check_hosts
from thinkube_devpi.installer.events import Emit, ObjectRef, State
from thinkube_devpi.installer.manifests import meta, selector
from thinkube_devpi.installer.phases.base import (
    Context,
    Desired,
    KeySource,
    Phase,
    PhaseError,
    PhaseStatus,
    SecretObject,
    decode_secret_data,
)
from thinkube_devpi.secrets import Secret

TLS_SECRET = "devpi-tls"
DASHBOARD = "devpi-dashboard"
API = "devpi-api"
DEVPI = "devpi"
DEVPI_PORT = 3141
PROXY = "oauth2-proxy"
PROXY_PORT = 4180
OUTSIDE_URL_HEADER = "X-Outside-Url"
GATEWAY_GROUP = "gateway.networking.k8s.io"
CILIUM_POLICY_API = "cilium.io/v2"
CILIUM_GATEWAY_CONTROLLER = "io.cilium/gateway-controller"
ENVOY_GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
NGINX = "nginx.ingress.kubernetes.io"


# ---------------------------------------------------------------- certificates


def cert_facts(pem: str) -> tuple[str, dt.datetime, list[str]]:
    """(SHA-256 fingerprint, notAfter, DNS names) of the first certificate in ``pem``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(pem.encode())
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in sans.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    return fingerprint, cert.not_valid_after_utc, names


def covers(names: list[str], host: str) -> bool:
    for name in names:
        if name == host:
            return True
        if name.startswith("*.") and host.split(".", 1)[-1] == name[2:] and "." in host:
            return True
    return False


class CopiedFrom(KeySource):
    """A key of another Secret (the cluster's wildcard certificate), read at apply time."""

    def __init__(self, ref: ObjectRef, key: str) -> None:
        self.ref = ref
        self.key = key
        self.describe = f"copied from {ref} ({key})"

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        live = ctx.require_kube().get(self.ref)
        value = decode_secret_data(live).get(self.key)
        if not value:
            raise PhaseError(
                f"{self.ref} has no {self.key}.",
                "Point tls_secret_name/tls_secret_namespace at the wildcard TLS Secret.",
            )
        return Secret(value, f"from {self.ref}")


class FromFile(KeySource):
    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.describe = f"from file {path} ({what})"

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        try:
            return Secret(Path(self.path).read_text(), f"from {self.path}")
        except OSError as exc:
            raise PhaseError(
                f"Cannot read {self.path}: {exc.strerror}.",
                "Check tls_cert_file / tls_key_file.",
            ) from None


def cilium_ingress_policy(name: str, namespace: str, target: str, port: int) -> dict[str, Any]:
    """Admit Cilium's gateway/ingress traffic (identity ``reserved:ingress``) on one port."""
    return {
        "apiVersion": CILIUM_POLICY_API,
        "kind": "CiliumNetworkPolicy",
        "metadata": meta(name, namespace),
        "spec": {
            "endpointSelector": {"matchLabels": selector(target)},
            "ingress": [
                {
                    "fromEntities": ["ingress"],
                    "toPorts": [{"ports": [{"port": str(port), "protocol": "TCP"}]}],
                }
            ],
        },
    }


def route_problems(route: dict[str, Any] | None, gateway: str) -> tuple[list[str], list[str]]:
    """(refused, pending): why ``gateway`` does not serve ``route``, read from the route's
    ``status.parents[].conditions`` (Accepted, ResolvedRefs) as the Gateway's controller reports
    them. Both empty: served."""
    if route is None:
        return [], ["absent"]
    parents = [
        p
        for p in ((route.get("status") or {}).get("parents") or [])
        if "/".join(
            str((p.get("parentRef") or {}).get(k, "")) for k in ("namespace", "name")
        )
        == gateway
    ]
    if not parents:
        return [], ["not yet accepted by the Gateway (no status from it)"]
    refused: list[str] = []
    pending: list[str] = []
    generation = (route.get("metadata") or {}).get("generation")
    for p in parents:
        conditions = {c.get("type"): c for c in p.get("conditions") or []}
        section = (p.get("parentRef") or {}).get("sectionName")
        where = f" (listener {section})" if section else ""
        for kind in ("Accepted", "ResolvedRefs"):
            c = conditions.get(kind)
            if c is None:
                pending.append(f"{kind} not reported yet")
            elif generation and c.get("observedGeneration", generation) < generation:
                pending.append(f"{kind} not reported yet for the current spec")
            elif c.get("status") != "True":
                detail = ": ".join(str(x) for x in (c.get("reason"), c.get("message")) if x)
                refused.append(f"{kind}={c.get('status')}{where}: {detail}")
    return refused, pending


# ---------------------------------------------------------------- the phase


class ExposurePhase(Phase):
    number = 80
    name = "exposure"
    title = "Dashboard and API hosts"
    summary = (
        "Dashboard host through oauth2-proxy, API host straight to devpi; Ingress or HTTPRoute; "
        "TLS; NetworkPolicies that let only the ingress/gateway and oauth2-proxy reach devpi."
    )

    @property
    def source_ref(self) -> ObjectRef:
        s = self.settings
        return ObjectRef("v1", "Secret", s.tls_source_name, s.tls_secret_namespace)

    @property
    def from_files(self) -> bool:
        return bool(self.settings.tls_cert_file and self.settings.tls_key_file)

    # ------------------------------------------------------------ objects

    def tls_secret(self) -> SecretObject:
        s = self.settings
        if self.from_files:
            keys: dict[str, KeySource] = {
                "tls.crt": FromFile(str(s.tls_cert_file), "certificate"),
                "tls.key": FromFile(str(s.tls_key_file), "private key"),
            }
        else:
            keys = {
                "tls.crt": CopiedFrom(self.source_ref, "tls.crt"),
                "tls.key": CopiedFrom(self.source_ref, "tls.key"),
            }
        return SecretObject(TLS_SECRET, s.namespace, keys, type="kubernetes.io/tls")

    def objects(self) -> list[Desired]:
        out: list[Desired] = []
        if self.settings.exposure == "ingress":
            out += [self.tls_secret(), *self.ingresses()]
        else:
            out += self.http_routes()
        out += self.network_policies()
        return out

    def ingresses(self) -> list[dict[str, Any]]:
        s = self.settings
        api_annotations: dict[str, str] = {}
        if s.ingress_class == "nginx":
            api_annotations = {
                f"{NGINX}/proxy-body-size": f"{s.api_body_size_mb}m",
                f"{NGINX}/proxy-read-timeout": str(s.api_read_timeout),
                f"{NGINX}/proxy-send-timeout": str(s.api_read_timeout),
                f"{NGINX}/proxy-request-buffering": "off",
            }
            if s.api_source_ranges:
                api_annotations[f"{NGINX}/whitelist-source-range"] = ",".join(s.api_source_ranges)

        def ingress(name: str, host: str, service: str, port: int, annotations: dict[str, str]):
            metadata = meta(name, s.namespace)
            if annotations:
                metadata["annotations"] = annotations
            return {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": metadata,
                "spec": {
                    "ingressClassName": s.ingress_class,
                    "tls": [{"hosts": [host], "secretName": TLS_SECRET}],
                    "rules": [
                        {
                            "host": host,
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {"name": service, "port": {"number": port}}
                                        },
                                    }
                                ]
                            },
                        }
                    ],
                },
            }

        return [
            ingress(DASHBOARD, s.dashboard, PROXY, PROXY_PORT, {}),
            ingress(API, s.api, DEVPI, DEVPI_PORT, api_annotations),
        ]

    def http_routes(self) -> list[dict[str, Any]]:
        s = self.settings
        parent: dict[str, Any] = {
            "group": GATEWAY_GROUP,
            "kind": "Gateway",
            "name": s.gateway_name,
            "namespace": s.gateway_namespace,
        }
        if s.gateway_section:
            parent["sectionName"] = s.gateway_section
        strip = {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {"remove": [OUTSIDE_URL_HEADER]},
        }

        def route(name: str, host: str, service: str, port: int, timeouts: bool):
            rule: dict[str, Any] = {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "filters": [strip],
                "backendRefs": [{"kind": "Service", "name": service, "port": port}],
            }
            if timeouts:
                t = f"{s.api_read_timeout}s"
                rule["timeouts"] = {"request": t, "backendRequest": t}
            return {
                "apiVersion": f"{GATEWAY_GROUP}/v1",
                "kind": "HTTPRoute",
                "metadata": meta(name, s.namespace),
                "spec": {"parentRefs": [parent], "hostnames": [host], "rules": [rule]},
            }

        return [
            route(DASHBOARD, s.dashboard, PROXY, PROXY_PORT, False),
            route(API, s.api, DEVPI, DEVPI_PORT, True),
        ]

    def network_policies(self) -> list[dict[str, Any]]:
        """devpi on 3141 from the gateway peer, oauth2-proxy and the init Job; oauth2-proxy on
        4180 from the gateway peer. The peer is the pods of ``ingress_peer_namespace`` (Envoy
        Gateway's proxies on thinkube), or, for Cilium's own gateway, Cilium's ``ingress``
        identity, which only a CiliumNetworkPolicy can name."""
        s = self.settings
        by_namespace = s.ingress_peer == "namespace"
        peer: dict[str, Any] = {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": s.ingress_peer_namespace}
            }
        }
        if s.peer_pod_labels:
            # the proxies only, not every pod of their namespace (Envoy Gateway's controller ...)
            peer["podSelector"] = {"matchLabels": s.peer_pod_labels}

        def policy(name: str, port: int, sources: list[dict[str, Any]]) -> dict[str, Any]:
            # no sources: the pod admits nothing through this policy (default deny)
            rules = [{"from": sources, "ports": [{"protocol": "TCP", "port": port}]}]
            return {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": meta(name, s.namespace),
                "spec": {
                    "podSelector": {"matchLabels": selector(name)},
                    "policyTypes": ["Ingress"],
                    "ingress": rules if sources else [],
                },
            }

        gateway = [peer] if by_namespace else []
        out = [
            policy(
                DEVPI,
                DEVPI_PORT,
                [
                    *gateway,
                    {"podSelector": {"matchLabels": selector(PROXY)}},
                    {"podSelector": {"matchLabels": selector("devpi-init")}},
                ],
            ),
            policy(PROXY, PROXY_PORT, gateway),
        ]
        if not by_namespace:
            out += [
                cilium_ingress_policy(f"{DEVPI}-from-gateway", s.namespace, DEVPI, DEVPI_PORT),
                cilium_ingress_policy(f"{PROXY}-from-gateway", s.namespace, PROXY, PROXY_PORT),
            ]
        return out

    # ------------------------------------------------------------ checks

    def preflight(self) -> None:
        s = self.settings
        check_hosts(s)
        self.ctx.require_kube()
        if s.exposure == "ingress":
            self._check_ingress_class()
            self._check_certificate()  # the Ingress carries a copy of the wildcard certificate
        else:
            self.check_gateway()
        self.check_peer()

    def check_peer(self) -> None:
        """Who the NetworkPolicies admit must be where the gateway's traffic comes from."""
        s = self.settings
        kube = self.ctx.require_kube()
        gateway_class = self.check_gateway() if s.exposure == "gateway" else None
        if s.ingress_peer == "cilium-ingress":
            if not kube.has_kind(CILIUM_POLICY_API, "CiliumNetworkPolicy"):
                raise PhaseError(
                    "ingress_peer is cilium-ingress but the cluster does not serve "
                    "cilium.io/v2 CiliumNetworkPolicy.",
                    'Is Cilium the CNI? Otherwise set ingress_peer = "namespace" and '
                    "ingress_peer_namespace to the namespace of the gateway's proxy pods.",
                )
        elif gateway_class == CILIUM_GATEWAY_CONTROLLER:
            raise PhaseError(
                f"Gateway {s.gateway_namespace}/{s.gateway_name} is Cilium's own gateway: its "
                "traffic carries Cilium's ingress identity, which no namespace peer matches.",
                'Set ingress_peer = "cilium-ingress" (a CiliumNetworkPolicy admits it).',
            )
        else:
            self._check_peer_namespace()

    def detected_exposure(self) -> str:
        """What the cluster offers, in words for a hint: Gateways and IngressClasses."""
        kube = self.ctx.require_kube()
        found = []
        if kube.has_kind(f"{GATEWAY_GROUP}/v1", "Gateway"):
            gws = kube.list(f"{GATEWAY_GROUP}/v1", "Gateway")[0]
            found += [
                f'exposure = "gateway", gateway_namespace = "{g["metadata"]["namespace"]}", '
                f'gateway_name = "{g["metadata"]["name"]}"'
                for g in gws
            ]
        classes = kube.list("networking.k8s.io/v1", "IngressClass")[0]
        found += [f'exposure = "ingress", ingress_class = "{c["metadata"]["name"]}"' for c in classes]
        if not found:
            return "The cluster has neither a Gateway nor an IngressClass: install one first."
        return "The cluster offers: " + "; or ".join(found) + "."

    def _check_ingress_class(self) -> None:
        s = self.settings
        kube = self.ctx.require_kube()
        if kube.get(ObjectRef("networking.k8s.io/v1", "IngressClass", s.ingress_class)) is None:
            raise PhaseError(
                f"IngressClass {s.ingress_class!r} does not exist in the cluster.",
                "Set " + self.detected_exposure().removeprefix("The cluster offers: "),
            )

    def check_gateway(self) -> str | None:
        """Checks the Gateway and its listener; returns its GatewayClass's controller name."""
        s = self.settings
        kube = self.ctx.require_kube()
        if not kube.has_kind(f"{GATEWAY_GROUP}/v1", "HTTPRoute"):
            raise PhaseError(
                "The cluster does not serve Gateway API HTTPRoutes (gateway.networking.k8s.io/v1).",
                self.detected_exposure(),
            )
        if s.api_source_ranges:
            raise PhaseError(
                "api_source_ranges cannot be enforced by an HTTPRoute.",
                "Restrict the source addresses at the Gateway (its implementation's policy) "
                'and clear api_source_ranges, or use exposure = "ingress".',
            )
        gw_ref = ObjectRef(f"{GATEWAY_GROUP}/v1", "Gateway", s.gateway_name, s.gateway_namespace)
        gateway = kube.get(gw_ref)
        if gateway is None:
            raise PhaseError(f"{gw_ref} does not exist.", self.detected_exposure())
        listeners = (gateway.get("spec") or {}).get("listeners") or []
        names = [str(x.get("name")) for x in listeners]
        if s.gateway_section and s.gateway_section not in names:
            tls = [str(x.get("name")) for x in listeners if x.get("protocol") == "HTTPS"]
            raise PhaseError(
                f"{gw_ref} has no listener {s.gateway_section!r}.",
                "Set gateway_section to its HTTPS listener: "
                + (", ".join(tls) or "none (add one)")
                + f" (listeners: {', '.join(names) or 'none'}).",
            )
        class_name = (gateway.get("spec") or {}).get("gatewayClassName")
        if not class_name:
            return None
        gc = kube.get(ObjectRef(f"{GATEWAY_GROUP}/v1", "GatewayClass", str(class_name)))
        return str(((gc or {}).get("spec") or {}).get("controllerName") or "") or None

    def _check_peer_namespace(self) -> None:
        """The peer namespace must hold the gateway's proxy pods (or the ingress controller)."""
        s = self.settings
        kube = self.ctx.require_kube()
        wanted = s.peer_pod_labels
        selector = ",".join(f"{k}={v}" for k, v in wanted.items()) or None
        here = kube.list("v1", "Pod", s.ingress_peer_namespace, label_selector=selector)[0]
        if here:
            self._check_peer_addresses(here)
            return
        found: list[str] = []
        if selector:
            elsewhere, _ = kube.list("v1", "Pod", label_selector=selector)
            found = sorted({p["metadata"]["namespace"] for p in elsewhere})
        what = f"pods labelled {selector}" if selector else "pods"
        if found:
            raise PhaseError(
                f"ingress_peer_namespace {s.ingress_peer_namespace!r} holds none of the gateway's "
                f"proxy pods ({what}); they run in {', '.join(found)}.",
                f'Set ingress_peer_namespace = "{found[0]}": only that peer may reach devpi.',
            )
        raise PhaseError(
            f"ingress_peer_namespace {s.ingress_peer_namespace!r} holds no {what}: the "
            "NetworkPolicies would let no gateway reach devpi (both hosts would answer 503).",
            "Set ingress_peer_namespace to the namespace of the gateway's proxy pods or the "
            "ingress controller (thinkube's Envoy Gateway: envoy-gateway-system) and "
            "ingress_peer_labels to their labels ('*' for every pod there), or ingress_peer = "
            '"cilium-ingress" for Cilium\'s own gateway.',
        )

    def _check_peer_addresses(self, pods: list[dict[str, Any]]) -> None:
        """oauth2-proxy trusts forwarded headers from gateway_peer_cidrs only: the proxies'
        addresses must be in them, or every sign-in would see the proxy as the client."""
        import ipaddress

        s = self.settings
        nets = [ipaddress.ip_network(c, strict=False) for c in s.gateway_peer_cidrs]
        outside = sorted(
            {
                ip
                for p in pods
                if (ip := str((p.get("status") or {}).get("podIP") or ""))
                and not any(ipaddress.ip_address(ip) in n for n in nets)
            }
        )
        if outside:
            raise PhaseError(
                f"The gateway's proxy pods have addresses outside gateway_peer_cidrs "
                f"({', '.join(s.gateway_peer_cidrs)}): {', '.join(outside)}.",
                "Set gateway_peer_cidrs to the cluster's pod network (thinkube: 10.244.0.0/16; "
                "`kubectl cluster-info dump | grep -m1 cluster-cidr`).",
            )

    def _certificate_pem(self) -> tuple[str, str]:
        """(source description, certificate PEM) of the source; PhaseError when missing."""
        s = self.settings
        if self.from_files:
            for label, path in (("certificate", s.tls_cert_file), ("key", s.tls_key_file)):
                if not path or not Path(path).is_file():
                    raise PhaseError(
                        f"The TLS {label} file {path} does not exist.",
                        "Set tls_cert_file and tls_key_file to PEM files, or leave both empty "
                        "to copy the cluster's wildcard certificate.",
                    )
            return str(s.tls_cert_file), Path(str(s.tls_cert_file)).read_text()
        live = self.ctx.require_kube().get(self.source_ref)
        data = decode_secret_data(live)
        if live is None or not data.get("tls.crt") or not data.get("tls.key"):
            what = "does not exist" if live is None else "has no tls.crt/tls.key"
            raise PhaseError(
                f"The wildcard TLS Secret {self.source_ref} {what}.",
                "Set tls_secret_name/tls_secret_namespace to the cluster's wildcard certificate "
                "Secret, or set tls_cert_file and tls_key_file.",
            )
        return str(self.source_ref), data["tls.crt"]

    def _check_certificate(self) -> None:
        source, pem = self._certificate_pem()
        try:
            _, expires, names = cert_facts(pem)
        except ValueError:
            raise PhaseError(
                f"The certificate from {source} is not a PEM certificate.",
                "Give a PEM certificate (the key goes in tls_key_file).",
            ) from None
        for host in (self.settings.dashboard, self.settings.api):
            if not covers(names, host):
                raise PhaseError(
                    f"The certificate from {source} does not cover {host} "
                    f"(it names {', '.join(names) or 'no DNS names'}).",
                    "Use a certificate for both hosts (a wildcard for the domain works).",
                )
        if expires <= dt.datetime.now(dt.UTC):
            raise PhaseError(
                f"The certificate from {source} expired on {expires:%Y-%m-%d}.",
                "Renew it first.",
            )

    # ------------------------------------------------------------ health

    def status(self) -> PhaseStatus:
        status = super().status()
        if (
            self.settings.exposure != "ingress"
            or status.state is not State.PROGRESSING
            or TLS_SECRET not in status.reason
            or self.ctx.kube is None
        ):
            return status
        # say how the copy differs from its source: fingerprint and expiry, never the values
        live = self.ctx.kube.get(ObjectRef("v1", "Secret", TLS_SECRET, self.settings.namespace))
        try:
            have = cert_facts(decode_secret_data(live).get("tls.crt", ""))
            _, pem = self._certificate_pem()
            want = cert_facts(pem)
        except (ValueError, PhaseError):
            return status
        if have[0] != want[0]:
            status.reason += (
                f"; the copy's certificate (sha256 {have[0][:23]}..., expires "
                f"{have[1]:%Y-%m-%d}) is not its source's (sha256 {want[0][:23]}..., expires "
                f"{want[1]:%Y-%m-%d}): re-run to repair"
            )
        return status

    def health(self) -> PhaseStatus:
        s = self.settings
        where = (
            f"Ingress class {s.ingress_class}"
            if s.exposure == "ingress"
            else f"HTTPRoutes on Gateway {s.gateway_namespace}/{s.gateway_name}"
        )
        if s.exposure != "ingress":
            return self._route_health(where)
        live = self.ctx.require_kube().get(ObjectRef("v1", "Secret", TLS_SECRET, s.namespace))
        pem = decode_secret_data(live).get("tls.crt", "")
        try:
            fingerprint, expires, _ = cert_facts(pem)
        except ValueError:
            return PhaseStatus(State.FAILED, f"Secret {TLS_SECRET} holds no valid certificate")
        if expires <= dt.datetime.now(dt.UTC):
            return PhaseStatus(
                State.FAILED,
                f"the certificate expired on {expires:%Y-%m-%d}",
                [f"sha256 {fingerprint}"],
            )
        return PhaseStatus(
            State.HEALTHY,
            f"{s.dashboard} and {s.api} via {where}; certificate as its source, "
            f"expires {expires:%Y-%m-%d}",
            [f"sha256 {fingerprint}"],
        )

    def wait_ready(self, emit: Emit) -> None:
        """With Gateway API: until the Gateway accepted both routes (or refused one)."""
        s = self.settings
        if s.exposure != "gateway":
            return
        gateway = f"{s.gateway_namespace}/{s.gateway_name}"
        for name in (DASHBOARD, API):
            ref = ObjectRef(f"{GATEWAY_GROUP}/v1", "HTTPRoute", name, s.namespace)
            live = self.wait_for(
                emit,
                ref,
                lambda r: not route_problems(r, gateway)[1],
                f"Gateway {gateway} to accept HTTPRoute {name}",
            )
            problems, _ = route_problems(live, gateway)
            if problems:
                raise PhaseError(
                    f"Gateway {gateway} refused HTTPRoute {name}: {'; '.join(problems)}",
                    "Check gateway_name, gateway_namespace and gateway_section against the "
                    "Gateway's listeners, and that the backend Service exists.",
                )

    def _route_health(self, where: str) -> PhaseStatus:
        """Each HTTPRoute as its Gateway reports it (Accepted, ResolvedRefs)."""
        s = self.settings
        kube = self.ctx.require_kube()
        gateway = f"{s.gateway_namespace}/{s.gateway_name}"
        refused, waiting = [], []
        for name, host in ((DASHBOARD, s.dashboard), (API, s.api)):
            live = kube.get(ObjectRef(f"{GATEWAY_GROUP}/v1", "HTTPRoute", name, s.namespace))
            problems, pending = route_problems(live, gateway)
            if problems:
                refused.append(f"HTTPRoute {name} ({host}): {'; '.join(problems)}")
            elif pending:
                waiting.append(f"HTTPRoute {name} ({host}): {'; '.join(pending)}")
        if refused:
            return PhaseStatus(
                State.FAILED, f"Gateway {gateway} refused: {refused[0]}", refused + waiting
            )
        if waiting:
            return PhaseStatus(State.PROGRESSING, waiting[0], waiting)
        listener = f" (listener {s.gateway_section})" if s.gateway_section else ""
        return PhaseStatus(
            State.HEALTHY, f"{s.dashboard} and {s.api} via {where}{listener}; routes accepted"
        )

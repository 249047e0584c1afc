"""Settings: load, validate and save the installer's configuration.

A flat TOML file under ``platformdirs.user_config_dir("thinkube-devpi")`` (or ``--config PATH``,
or ``THINKUBE_DEVPI_CONFIG``), overridden per field by ``THINKUBE_DEVPI_<FIELD>`` environment
variables. Every value is validated before anything is written anywhere; a bad one raises
:class:`ConfigError` naming the field, the value and what is allowed.

One thing, so one module past 500 lines: the settings, each field with its default and its check.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from thinkube_devpi import paths
from thinkube_devpi.errors import Error

PLACEHOLDER_DOMAIN = "thinkube.local"
ENV_PREFIX = paths.ENV_PREFIX
APP_NAME = paths.APP_NAME


class ConfigError(Error, ValueError):
    """A setting has a value that is not allowed."""

    def __init__(
        self,
        field_name: str,
        value: object,
        allowed: str,
        *,
        shown: str | None = None,
        hint: str = "",
    ) -> None:
        """``shown`` replaces the value in the message when the value must not be echoed;
        ``hint`` says how to set it from the command line (the TUI says how in its own words)."""
        self.field = field_name
        self.value = value if shown is None else shown
        self.allowed = allowed
        what = repr(value) if shown is None else shown
        super().__init__(f"{field_name}: {what} is not allowed: {allowed}", hint, setting=field_name)


def default_config_path() -> Path:
    return paths.config_file()


# ---------------------------------------------------------------- validators

_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
# Every pattern is used with fullmatch: with re.match, "$" also matches before a trailing newline,
# so "example.com\n" would pass.
_DNS_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_DNS_LABEL = re.compile(_LABEL)
_DEVPI_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}")
_QUANTITY = re.compile(r"([0-9]{1,30}(\.[0-9]{1,30})?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
_QUANTITY_MAX = 2**63 - 1  # Kubernetes keeps a quantity's value in an int64
_QUANTITY_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
# git's check-ref-format, narrowed: no leading "-" (it would read as an option) and none of the
# shell's metacharacters (the name reaches shell steps of the build)
_BRANCH = re.compile(
    r"(?![-/])(?!.*//)(?!.*\.\.)(?!.*@\{)(?!.*\.lock$)[A-Za-z0-9._/+=,@-]{1,200}(?<![/.])"
)
_SSH_PATH = r"[A-Za-z0-9._~/][A-Za-z0-9._~/-]{0,200}"
_SSH_HOST = r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})"
_SSH_URL = re.compile(
    rf"(ssh://[A-Za-z0-9._][A-Za-z0-9._-]{{0,63}}@{_SSH_HOST}(:\d{{1,5}})?/{_SSH_PATH}"
    rf"|[A-Za-z0-9._][A-Za-z0-9._-]{{0,63}}@{_SSH_HOST}:{_SSH_PATH})"
)


def dns_name(name: str, value: object, *, what: str = "a DNS name") -> str:
    text = str(value)
    if len(text) > 253 or not _DNS_NAME.fullmatch(text):
        raise ConfigError(
            name,
            value,
            f"{what} (RFC 1123: lower-case letters, digits, '-' and '.', "
            "each label 1-63 characters, starting and ending with a letter or digit)",
        )
    return text


def dns_label(name: str, value: object) -> str:
    text = str(value)
    if not _DNS_LABEL.fullmatch(text):
        raise ConfigError(
            name,
            value,
            "a Kubernetes namespace name (RFC 1123 label: lower-case letters, digits and '-', "
            "1-63 characters, starting and ending with a letter or digit)",
        )
    return text


def devpi_name(name: str, value: object) -> str:
    text = str(value)
    if not _DEVPI_NAME.fullmatch(text):
        raise ConfigError(
            name, value, "a devpi name: letters, digits, '.', '_' and '-', up to 64 characters"
        )
    return text


def no_credentials(name: str, text: str) -> None:
    """Refuse a URL carrying ``user:password@`` without repeating what it carries."""
    try:
        netloc = urlsplit(text).netloc
    except ValueError:
        netloc = text
    if "@" in netloc:
        host = netloc.rpartition("@")[2]
        raise ConfigError(
            name,
            None,
            "a URL without a user name or password in it (credentials come from the environment "
            "or the keyring, never from a URL)",
            shown=f"a URL with credentials for {host or 'a host'} (not shown)",
        )


def https_url(name: str, value: object) -> str:
    text = str(value)
    no_credentials(name, text)
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(name, value, "an https:// URL with a host name")
    dns_name(name, parts.hostname, what="an https:// URL whose host is a DNS name")
    return text.rstrip("/")


def quantity_bytes(text: str) -> int:
    """The number of bytes a Kubernetes storage quantity (``5Gi``, ``500M``) stands for."""
    m = _QUANTITY.fullmatch(text)
    if not m:
        raise ValueError(text)
    return int(float(m.group(1)) * _QUANTITY_FACTORS[m.group(3) or ""])


def storage_size(name: str, value: object) -> str:
    text = str(value)
    try:
        size = quantity_bytes(text)
    except ValueError:
        raise ConfigError(
            name,
            value,
            "a Kubernetes quantity such as 5Gi, 500Mi or 10G (binary suffixes preferred)",
        ) from None
    if size < 2**20:
        raise ConfigError(name, value, "at least 1Mi (devpi needs room for packages)")
    if size > _QUANTITY_MAX:
        raise ConfigError(name, value, "at most 8Ei (the largest quantity Kubernetes holds)")
    return text


def branch_name(name: str, value: object) -> str:
    text = str(value)
    if not _BRANCH.fullmatch(text):
        raise ConfigError(
            name,
            value,
            "a git branch name: letters, digits and . _ / + = , @ -, not starting with '-' or "
            "'/', without '..' or '//' (no spaces or shell characters such as ; $ ` | &)",
        )
    return text


def ssh_repo_url(name: str, value: object) -> str:
    text = str(value)
    if not _SSH_URL.fullmatch(text):
        raise ConfigError(
            name,
            value,
            "an SSH repository URL such as git@github.com:org/devpi-deployment.git (not starting "
            "with '-'; no spaces or shell characters such as ; $ ` | &)",
        )
    return text


def existing_file(name: str, value: object) -> str:
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise ConfigError(name, value, "the path of an existing, readable file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(name, value, f"a readable file ({exc.strerror})") from None
    return str(path)


def private_file(name: str, value: object) -> str:
    """An existing file that only its owner can read (a key or a token)."""
    text = existing_file(name, value)
    mode = Path(text).stat().st_mode
    if mode & 0o077:
        raise ConfigError(
            name,
            value,
            f"a file only its owner can read (it is {oct(mode & 0o777)}; run chmod 600 {text})",
        )
    return text


def secret_ref(name: str, value: object) -> str:
    """``namespace/name`` of an existing Secret."""
    text = str(value)
    ns, _, secret = text.partition("/")
    if not (_DNS_LABEL.fullmatch(ns) and secret and _DNS_NAME.fullmatch(secret)):
        raise ConfigError(
            name, value, "namespace/name of an existing Secret, such as argo/registry"
        )
    return text


def registry_user(name: str, value: object) -> str:
    text = str(value)
    if not text or ":" in text or any(c.isspace() or ord(c) < 32 for c in text):
        raise ConfigError(name, value, "a registry user name without spaces or ':'")
    return text


_registry_user = registry_user  # the Settings field of that name hides it in the class body


def api_url(name: str, value: object) -> str:
    """An https:// URL, or plain http:// to a loopback address (test servers only)."""
    text = str(value)
    no_credentials(name, text)
    parts = urlsplit(text)
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return text.rstrip("/")
    return https_url(name, value)


def one_of(*choices: str) -> Callable[[str, object], str]:
    def check(name: str, value: object) -> str:
        if value not in choices:
            raise ConfigError(name, value, "one of " + ", ".join(choices))
        return str(value)

    return check


def cidr_list(name: str, value: object) -> list[str]:
    items = _as_list(name, value, "CIDR ranges")
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(name, item, "a CIDR range such as 10.0.0.0/8") from None
    return items


_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def label_list(name: str, value: object) -> list[str]:
    """``key=value`` pod labels, or ``["*"]`` (every pod)."""
    items = _as_list(name, value, "key=value labels")
    if items == ["*"]:
        return items
    for item in items:
        key, eq, val = item.partition("=")
        if not eq or not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(val):
            raise ConfigError(
                name, item, "key=value Kubernetes labels separated by commas, or '*' (every pod)"
            )
    return items


def group_list(name: str, value: object) -> list[str]:
    items = _as_list(name, value, "Keycloak group names")
    for item in items:
        if not item or any(c.isspace() or ord(c) < 32 for c in item) or item.startswith("-"):
            raise ConfigError(name, item, "a Keycloak group name without spaces")
    return items


def email_domain(name: str, value: object) -> str:
    text = str(value)
    if text != "*":
        dns_name(name, text, what="'*' or an e-mail domain")
    return text


def int_range(low: int, high: int, unit: str) -> Callable[[str, object], int]:
    def check(name: str, value: object) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ConfigError(name, value, f"a whole number of {unit}") from None
        if not low <= number <= high:
            raise ConfigError(name, value, f"{low} to {high} {unit}")
        return number

    return check


_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))


def parse_cron(text: str) -> list[set[int]]:
    """The five fields of a cron schedule as sets of values (``*``, lists, ranges, ``/step``).

    Raises ValueError naming the field that is wrong."""
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"{len(parts)} fields; a schedule has 5 (minute hour day month weekday)")
    out = []
    for part, (what, low, high) in zip(parts, _CRON_FIELDS, strict=True):
        values: set[int] = set()
        for item in part.split(","):
            rng, _, step_text = item.partition("/")
            step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
            if step_text and step is None:
                raise ValueError(f"{what}: bad step in {item!r}")
            if rng == "*":
                start, end = low, high
            elif re.fullmatch(r"\d+-\d+", rng):
                start, end = (int(x) for x in rng.split("-"))
            elif rng.isdigit():
                start = end = int(rng)
                if step:
                    end = high
            else:
                raise ValueError(f"{what}: {item!r} is not a number, range, list or *")
            if what == "day of week" and end == 7:  # 7 is Sunday too
                values.add(0)
                end = 6 if start <= 6 else 0
            if not (low <= start <= high and low <= end <= high and start <= end):
                raise ValueError(f"{what}: {item!r} is outside {low}-{high}")
            values.update(range(start, end + 1, step or 1))
        out.append(values)
    return out


def cron_schedule(name: str, value: object) -> str:
    text = " ".join(str(value).split())
    try:
        parse_cron(text)
    except ValueError as exc:
        raise ConfigError(
            name, value, f"a cron schedule such as '17 3 * * *' (nightly at 03:17 UTC): {exc}"
        ) from None
    return text


def bucket_name(name: str, value: object) -> str:
    text = str(value)
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", text) or ".." in text:
        raise ConfigError(
            name, value, "an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-'"
        )
    return text


def key_prefix(name: str, value: object) -> str:
    text = str(value)
    if text.startswith("/") or ".." in text or any(c.isspace() or ord(c) < 32 for c in text):
        raise ConfigError(
            name, value, "an object key prefix such as devpi/ (no leading '/', spaces or '..')"
        )
    return text


def _as_list(name: str, value: object, what: str) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(name, value, f"a list of {what} as strings, or one comma-separated string")


def _optional(check: Callable[[str, object], Any]) -> Callable[[str, object], Any]:
    def wrapped(name: str, value: object) -> Any:
        return None if value in (None, "") else check(name, value)

    return wrapped


def _setting(default: Any, check: Callable[[str, object], Any] | None, help: str) -> Any:
    factory = (lambda: list(default)) if isinstance(default, list) else None
    meta = {"check": check, "help": help}
    if factory:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Settings:
    """Every value the install needs. Host names left empty derive from ``domain``."""

    domain: str | None = _setting(None, _optional(dns_name), "the cluster's base domain")
    namespace: str = _setting("devpi", dns_label, "namespace DevPi runs in")
    dashboard_host: str | None = _setting(None, _optional(dns_name), "dashboard host (people)")
    api_host: str | None = _setting(None, _optional(dns_name), "API host (pip, devpi-client)")
    storage_size: str = _setting("5Gi", storage_size, "size of the package data volume")
    storage_class: str | None = _setting(
        None, _optional(dns_name), "storage class (cluster default)"
    )
    devpi_user: str = _setting("admin", devpi_name, "devpi user that owns the prod index")
    devpi_index: str = _setting("prod", devpi_name, "name of the prod index")
    keycloak_url: str | None = _setting(None, _optional(https_url), "Keycloak base URL")
    keycloak_realm: str = _setting("thinkube", devpi_name, "Keycloak realm")
    keycloak_admin_user: str = _setting("admin", devpi_name, "Keycloak admin user (master realm)")
    keycloak_ca_file: str | None = _setting(None, _optional(existing_file), "CA file for Keycloak")
    ca_file: str | None = _setting(
        None, _optional(existing_file), "CA bundle for the devpi hosts (empty: system trust)"
    )
    allowed_groups: list[str] = _setting([], group_list, "Keycloak groups allowed to sign in")
    email_domain: str = _setting("*", email_domain, "e-mail domain allowed to sign in, or '*'")
    registry: str | None = _setting(None, _optional(dns_name), "container registry host")
    registry_project: str = _setting("thinkube", dns_label, "registry project for the image")
    registry_insecure: bool = _setting(False, None, "registry without TLS verification")
    deploy_repo: str | None = _setting(None, _optional(ssh_repo_url), "deployment repository")
    deploy_branch: str = _setting("main", branch_name, "deployment repository branch")
    ssh_key_file: str | None = _setting(None, _optional(private_file), "read-write deploy key")
    ssh_readonly_key_file: str | None = _setting(
        None, _optional(private_file), "read-only deploy key for ArgoCD"
    )
    ssh_known_hosts_file: str | None = _setting(
        None,
        _optional(existing_file),
        "known_hosts lines of the repository's SSH host (pinned; ssh-keyscan, then compare "
        "the fingerprints with the ones the host publishes)",
    )
    github_token_file: str | None = _setting(None, _optional(private_file), "GitHub token file")
    github_api_url: str = _setting("https://api.github.com", api_url, "GitHub REST API URL")
    registry_secret: str | None = _setting(
        None,
        _optional(secret_ref),
        "existing dockerconfigjson Secret (namespace/name) with push rights to the registry",
    )
    registry_user: str | None = _setting(
        None, _optional(registry_user), "registry user (when no registry_secret is given)"
    )
    registry_token_file: str | None = _setting(
        None, _optional(private_file), "file holding the registry user's token or password"
    )
    registry_pull_secret: str | None = _setting(
        None,
        _optional(secret_ref),
        "existing dockerconfigjson Secret (namespace/name) with pull-only rights, copied into "
        "devpi's namespace (empty, and no registry_pull_user: the image is pulled anonymously)",
    )
    registry_pull_user: str | None = _setting(
        None, _optional(_registry_user), "registry user with pull-only rights (a robot account)"
    )
    registry_pull_token_file: str | None = _setting(
        None, _optional(private_file), "file holding the pull-only user's token"
    )
    argo_namespace: str = _setting("argo", dns_label, "Argo Workflows namespace")
    argocd_namespace: str = _setting("argocd", dns_label, "ArgoCD namespace")
    # exposure: thinkube's own Gateway (Envoy Gateway, listener https) unless told otherwise
    exposure: str = _setting(
        "gateway", one_of("gateway", "ingress"), "Gateway API HTTPRoutes, or Ingress"
    )
    ingress_class: str = _setting("nginx", dns_name, "IngressClass for exposure=ingress")
    gateway_name: str = _setting("thinkube-gateway", dns_name, "parent Gateway (exposure=gateway)")
    gateway_namespace: str = _setting(
        "gateway-system", dns_label, "namespace of the parent Gateway"
    )
    gateway_section: str | None = _setting(
        "https",
        _optional(dns_name),
        "the Gateway's TLS listener the routes attach to (empty: every listener, plain HTTP too)",
    )
    ingress_peer: str = _setting(
        "namespace",
        one_of("namespace", "cilium-ingress"),
        "who may reach devpi and oauth2-proxy: the pods of ingress_peer_namespace (Envoy "
        "Gateway, ingress-nginx), or cilium-ingress for Cilium's own gateway (its traffic has "
        "Cilium's ingress identity: a CiliumNetworkPolicy admits it)",
    )
    ingress_peer_namespace: str = _setting(
        "envoy-gateway-system",
        dns_label,
        "namespace of the gateway's proxy pods or the ingress controller (ingress_peer=namespace)",
    )
    ingress_peer_labels: list[str] | None = _setting(
        None,
        _optional(label_list),
        "labels (key=value) of the peer's proxy pods in ingress_peer_namespace; '*' for every pod "
        "there (empty: Envoy Gateway's gateway.envoyproxy.io/owning-gateway-name=<gateway_name> "
        "for exposure=gateway, every pod for exposure=ingress)",
    )
    gateway_peer_cidrs: list[str] = _setting(
        ["10.244.0.0/16"],
        cidr_list,
        "addresses the gateway's proxies connect from (thinkube's pod network): oauth2-proxy "
        "trusts X-Forwarded-* only from these (--trusted-proxy-ip)",
    )
    allow_unverified_email: bool = _setting(
        False,
        None,
        "let Keycloak users whose e-mail is not verified sign in (users made in Keycloak's "
        "console are unverified unless marked; oauth2-proxy refuses them otherwise)",
    )
    api_source_ranges: list[str] = _setting([], cidr_list, "CIDRs allowed on the API host")
    tls_secret_name: str | None = _setting(
        None,
        _optional(dns_name),
        "wildcard TLS Secret for exposure=ingress (empty: thinkube's <domain-with-dashes>-tls)",
    )
    tls_secret_namespace: str = _setting("default", dns_label, "namespace of the TLS Secret")
    api_body_size_mb: int = _setting(
        200, int_range(1, 10240, "megabytes"), "largest upload on the API host (wheels)"
    )
    api_read_timeout: int = _setting(
        300, int_range(10, 3600, "seconds"), "API read timeout (cold PyPI fetches)"
    )
    tls_cert_file: str | None = _setting(None, _optional(existing_file), "TLS certificate file")
    tls_key_file: str | None = _setting(None, _optional(existing_file), "TLS key file")
    backup_schedule: str = _setting(
        "17 3 * * *", cron_schedule, "when the backup runs (cron, UTC; default nightly 03:17)"
    )
    backup_keep_daily: int = _setting(
        7, int_range(1, 366, "daily backups"), "daily backups kept (the newest of each day)"
    )
    backup_keep_weekly: int = _setting(
        4, int_range(0, 520, "weekly backups"), "weekly backups kept (the newest of each week)"
    )
    backup_s3_endpoint: str | None = _setting(
        None, _optional(api_url), "object storage S3 URL (default https://s3.<domain>)"
    )
    backup_s3_bucket: str = _setting("devpi-backups", bucket_name, "bucket the backups go to")
    backup_s3_prefix: str = _setting("devpi/", key_prefix, "key prefix of the backups")
    backup_s3_region: str = _setting("us-east-1", devpi_name, "S3 region name (SeaweedFS: any)")

    # ------------------------------------------------------------ derived values

    @property
    def is_placeholder(self) -> bool:
        return not self.domain or self.domain == PLACEHOLDER_DOMAIN

    @property
    def effective_domain(self) -> str:
        return self.domain or PLACEHOLDER_DOMAIN

    @property
    def dashboard(self) -> str:
        return self.dashboard_host or f"devpi.{self.effective_domain}"

    @property
    def api(self) -> str:
        return self.api_host or f"devpi-api.{self.effective_domain}"

    @property
    def keycloak(self) -> str:
        return self.keycloak_url or f"https://auth.{self.effective_domain}"

    @property
    def issuer(self) -> str:
        return f"{self.keycloak}/realms/{self.keycloak_realm}"

    @property
    def peer_pod_labels(self) -> dict[str, str]:
        """The pod labels the NetworkPolicies admit in ingress_peer_namespace ({}: every pod)."""
        if self.ingress_peer_labels is None:
            if self.exposure == "gateway":
                return {"gateway.envoyproxy.io/owning-gateway-name": self.gateway_name}
            return {}
        if self.ingress_peer_labels == ["*"]:
            return {}
        return dict(item.split("=", 1) for item in self.ingress_peer_labels)

    @property
    def tls_source_name(self) -> str:
        """The wildcard certificate's Secret: thinkube names it after the domain."""
        return self.tls_secret_name or f"{self.effective_domain.replace('.', '-')}-tls"

    @property
    def registry_host(self) -> str:
        return self.registry or f"registry.{self.effective_domain}"

    @property
    def s3_endpoint(self) -> str:
        return self.backup_s3_endpoint or f"https://s3.{self.effective_domain}"

    @property
    def prod_index(self) -> str:
        return f"{self.devpi_user}/{self.devpi_index}"

    def validate(self) -> Settings:
        """Check every field; raises :class:`ConfigError` on the first bad one."""
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            value = getattr(self, f.name)
            if f.type in ("bool",) or isinstance(f.default, bool):
                setattr(self, f.name, _as_bool(f.name, value))
            elif check is not None:
                setattr(self, f.name, check(f.name, value))
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigError(
                "tls_key_file" if self.tls_key_file is None else "tls_cert_file",
                None,
                "tls_cert_file and tls_key_file are set together (or neither)",
            )
        return self

    def require_real_domain(self) -> None:
        """`apply` refuses to write anything for the placeholder domain."""
        if self.is_placeholder:
            raise ConfigError(
                "domain",
                self.domain or PLACEHOLDER_DOMAIN,
                "a real domain before apply: the placeholder is for plan and render only",
                hint="Set it with `tk-devpi config init --domain example.com` "
                "(or THINKUBE_DEVPI_DOMAIN=example.com).",
            )

    def to_toml(self) -> str:
        lines = ["# thinkube-devpi settings: `tk-devpi config show` explains each value", ""]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                lines.append(f"# {f.name} = ...  # {f.metadata['help']}")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}  # {f.metadata['help']}")
        return "\n".join(lines) + "\n"


def _as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(name, value, "true or false")


def _toml_value(value: object) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(str(v)) for v in value) + "]"
    return json.dumps(str(value))


FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(Settings))


def from_mapping(data: Mapping[str, object], *, source: str) -> Settings:
    unknown = sorted(set(data) - FIELD_NAMES)
    if unknown:
        raise ConfigError(unknown[0], data[unknown[0]], f"a known setting (in {source})")
    return Settings(**data).validate()  # type: ignore[arg-type]


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the file (if any), then ``THINKUBE_DEVPI_*`` overrides, validated."""
    env = os.environ if env is None else env
    path = path or default_config_path()
    data: dict[str, object] = {}
    if path.exists():
        try:
            data.update(tomllib.loads(path.read_text()))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", str(path), f"a valid TOML file ({exc})") from None
        except OSError as exc:
            raise ConfigError("config", str(path), f"a readable file ({exc.strerror})") from None
    for name in FIELD_NAMES:
        key = ENV_PREFIX + name.upper()
        if key in env:
            data[name] = env[key]
    return from_mapping(data, source=str(path))


def save(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings; an existing file is edited in place (tomlkit), so its comments and
    layout stay and only the values that changed are rewritten."""
    path = path or default_config_path()
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = None
    paths.atomic_write(path, settings.to_toml() if old is None else _edit_toml(old, settings))
    return path


def _edit_toml(old: str, settings: Settings) -> str:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(old)
    except TOMLKitError:
        return settings.to_toml()  # load() refused this file already; start it afresh
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if value is None:
            if f.name in doc:
                del doc[f.name]
            continue
        item = tomlkit.parse(f"v = {_toml_value(value)}")["v"]
        if doc.get(f.name) != item:
            doc[f.name] = item
    return tomlkit.dumps(doc)

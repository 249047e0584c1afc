"""The checks of row 88 (`Runner.verify`): the install seen from outside, through its host names.

Each check says what it expected and what it got. The same code runs against a real cluster and in
tests; tests change only how host names resolve (``resolve``) and route (a proxy in the standard
``HTTPS_PROXY`` variable, which httpx, pip and the helpers all honour).

One thing, so one module past 500 lines: phase 88's checks, one function each.
"""

from __future__ import annotations

import base64
import json
import os
import secrets as _secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkube_devpi._lazy import lazy_import
from thinkube_devpi.installer.preflight import Check
from thinkube_devpi.secrets import Secret, child_environ

if TYPE_CHECKING:
    import httpx

    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.kube import Kube
    from thinkube_devpi.shell.api import DevpiAPI
    from thinkube_devpi.shell.session import Login, Session
else:
    httpx = lazy_import("httpx")  # loaded when the checks run, not when phases are listed

Resolver = Callable[[str], set[str]]
PROBE_NAME = "thinkube-devpi-probe"


def system_resolve(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)}
    except socket.gaierror:
        return set()


def cluster_addresses(settings: Settings, kube: Kube | None) -> set[str]:
    """The addresses the ingress controller or gateway reports for our hosts."""
    if kube is None:
        return set()
    out: set[str] = set()
    if settings.exposure == "gateway":
        from thinkube_devpi.installer.events import ObjectRef

        gw = kube.get(
            ObjectRef(
                "gateway.networking.k8s.io/v1",
                "Gateway",
                settings.gateway_name,
                settings.gateway_namespace,
            )
        )
        for addr in ((gw or {}).get("status") or {}).get("addresses") or []:
            out.add(str(addr.get("value")))
        return out
    items, _ = kube.list(
        "networking.k8s.io/v1",
        "Ingress",
        settings.namespace,
        label_selector="app.kubernetes.io/part-of=thinkube-devpi",
    )
    for ing in items:
        for lb in ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            out.add(str(lb.get("ip") or lb.get("hostname")))
    return out


def root_password(settings: Settings, kube: Kube) -> Secret | None:
    """devpi's root password, read from the Secret phase 70 keeps it in (the scratch index is
    made as root)."""
    from thinkube_devpi.installer.deployrepo import ROOT_SECRET
    from thinkube_devpi.installer.events import ObjectRef
    from thinkube_devpi.installer.phases.base import decode_secret_data

    live = kube.get(ObjectRef("v1", "Secret", ROOT_SECRET, settings.namespace))
    value = decode_secret_data(live).get("password")
    return Secret(value, source=f"Secret {ROOT_SECRET}") if value else None


def probe_wheel(directory: Path, version: str) -> Path:
    """A tiny pure-Python wheel to upload and install back."""
    module = PROBE_NAME.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}.py": f'"""Uploaded by tk-devpi install test."""\nVERSION = "{version}"\n',
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {PROBE_NAME}\nVersion: {version}\n"
            "Summary: probe package for thinkube-devpi's end-to-end test\nRequires-Python: >=3.8\n"
        ),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: thinkube-devpi\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    import hashlib

    record = []
    for name, text in files.items():
        digest = (
            base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        )
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    path = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


class EndToEnd:
    """Runs the checks in order; ``run`` yields each result as it is known."""

    def __init__(
        self,
        settings: Settings,
        *,
        kube: Kube | None = None,
        root_password: Secret | None = None,
        resolve: Resolver = system_resolve,
        ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.root_password = root_password
        self.resolve = resolve
        self.ca_file = ca_file
        self._root_session: Session | None = None
        self.dashboard = f"https://{settings.dashboard}"
        self.api = f"https://{settings.api}"
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_file) if ca_file else True
        )
        self.http = httpx.Client(
            timeout=timeout,
            verify=self._verify,
            follow_redirects=False,
            headers={"User-Agent": "thinkube-devpi-e2e"},
        )

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------ helpers

    def _get(self, url: str, **kw: Any) -> httpx.Response | str:
        try:
            return self.http.get(url, **kw)
        except httpx.HTTPError as exc:
            return f"no answer ({type(exc).__name__}: {exc})"

    def _child_env(self) -> dict[str, str]:
        if self.ca_file:
            return child_environ(
                SSL_CERT_FILE=self.ca_file, PIP_CERT=self.ca_file, REQUESTS_CA_BUNDLE=self.ca_file
            )
        return child_environ()

    # ------------------------------------------------------------ checks

    def run(self) -> Iterator[Check]:
        yield from self.check_dns()
        yield self.check_dashboard_gate()
        yield self.check_oauth2_auth()
        yield self.check_issuer()
        yield self.check_api()
        yield self.check_anonymous_user()
        yield from self.check_upload_and_install()
        yield from self.check_helpers()

    def check_dns(self) -> Iterator[Check]:
        reported = cluster_addresses(self.settings, self.kube)
        for host in (self.settings.dashboard, self.settings.api):
            found = self.resolve(host)
            if not found:
                yield Check(
                    f"{host} resolves",
                    False,
                    "does not resolve",
                    expected="an address",
                    hint=f"Add DNS records for {host} pointing at the ingress or gateway address.",
                )
            elif reported and not (found & reported):
                yield Check(
                    f"{host} resolves",
                    False,
                    ", ".join(sorted(found)),
                    expected=f"one of {sorted(reported)} (the cluster's)",
                    hint=f"Point {host} at the ingress or gateway address.",
                )
            else:
                got = ", ".join(sorted(found)) + (
                    "" if reported else " (the cluster reports no address to compare)"
                )
                yield Check(
                    f"{host} resolves", True, got, expected="an address of the ingress or gateway"
                )

    def check_dashboard_gate(self) -> Check:
        name = "dashboard without a session goes to Keycloak sign-in"
        expected = f"302 to {self.settings.issuer}/protocol/openid-connect/auth"
        resp = self._get(self.dashboard + "/", headers={"Accept": "text/html"})
        if isinstance(resp, str):
            return Check(
                name,
                False,
                resp,
                expected=expected,
                hint="Is the dashboard route up? Phase 80's state says "
                "(`tk-devpi install status --phase 80`).",
            )
        location = resp.headers.get("location", "")
        if resp.status_code == 302 and location.startswith(
            f"{self.settings.issuer}/protocol/openid-connect/auth"
        ):
            return Check(name, True, f"302 to {location.split('?')[0]}", expected=expected)
        if resp.status_code == 200:
            return Check(
                name,
                False,
                "200: the dashboard is open without sign-in",
                expected=expected,
                hint="The route must point at the oauth2-proxy Service, not at devpi.",
            )
        if resp.status_code == 403:
            return Check(
                name,
                False,
                "403: oauth2-proxy's own sign-in page",
                expected=expected,
                hint="oauth2-proxy needs --skip-provider-button=true (phase 50).",
            )
        got = f"{resp.status_code}" + (f" to {location.split('?')[0]}" if location else "")
        return Check(
            name, False, got, expected=expected, hint="Check the issuer in phase 50's settings."
        )

    def check_oauth2_auth(self) -> Check:
        name = "/oauth2/auth without a cookie is refused"
        resp = self._get(self.dashboard + "/oauth2/auth")
        if isinstance(resp, str):
            return Check(name, False, resp, expected="401")
        if resp.status_code == 401:
            return Check(name, True, "401", expected="401")
        return Check(
            name,
            False,
            str(resp.status_code),
            expected="401",
            hint="The dashboard host does not reach oauth2-proxy.",
        )

    def check_issuer(self) -> Check:
        name = "OIDC discovery names the configured issuer"
        issuer = self.settings.issuer
        resp = self._get(f"{issuer}/.well-known/openid-configuration")
        if isinstance(resp, str):
            return Check(
                name, False, resp, expected=issuer, hint="Is Keycloak reachable at keycloak_url?"
            )
        try:
            got = str(resp.json().get("issuer"))
        except ValueError:
            return Check(name, False, f"{resp.status_code}, not JSON", expected=issuer)
        if resp.status_code == 200 and got == issuer:
            return Check(name, True, got, expected=issuer)
        return Check(
            name,
            False,
            f"{resp.status_code} {got}",
            expected=issuer,
            hint="Fix keycloak_url or keycloak_realm.",
        )

    def check_api(self) -> Check:
        name = "API host answers /+api without sign-in"
        resp = self._get(self.api + "/+api", headers={"Accept": "application/json"})
        if isinstance(resp, str):
            return Check(
                name,
                False,
                resp,
                expected="200 JSON",
                hint="Is the API route up? Phase 80's state says "
                "(`tk-devpi install status --phase 80`).",
            )
        try:
            ok = resp.status_code == 200 and "result" in resp.json()
        except ValueError:
            ok = False
        if ok:
            return Check(name, True, "200 JSON", expected="200 JSON")
        hint = (
            "The API host must route straight to devpi, not through oauth2-proxy."
            if resp.status_code in (302, 401, 403)
            else ""
        )
        return Check(
            name,
            False,
            f"{resp.status_code} {resp.headers.get('content-type', '')}",
            expected="200 JSON",
            hint=hint,
        )

    def check_anonymous_user(self) -> Check:
        name = "anonymous user creation is refused"
        user = f"e2e-anon-{_secrets.token_hex(4)}"
        try:
            resp = self.http.put(
                f"{self.api}/{user}",
                json={"password": _secrets.token_urlsafe(16), "email": "probe@invalid"},
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            return Check(name, False, f"no answer ({type(exc).__name__})", expected="401 or 403")
        if resp.status_code in (401, 403):
            return Check(name, True, str(resp.status_code), expected="401 or 403")
        if resp.status_code in (200, 201):
            self._as_root(lambda headers: self.http.delete(f"{self.api}/{user}", headers=headers))
            return Check(
                name,
                False,
                f"{resp.status_code}: user {user} was created (and removed)",
                expected="401 or 403",
                hint="devpi-server must run with --restrict-modify root (phase 70).",
            )
        return Check(name, False, str(resp.status_code), expected="401 or 403")

    def _devpi(self) -> DevpiAPI:
        from thinkube_devpi.shell.api import DevpiAPI

        return DevpiAPI(self.api + "/", verify=self._verify)

    def _root_login(self) -> Login:
        """Root's login with the password from the cluster's Secret; nothing kept on this machine."""
        from thinkube_devpi.shell.session import Login

        return Login(self.api + "/", "root", password=self.root_password, remember=False)

    def _root_headers(self) -> dict[str, str] | None:
        """Headers of a root login (devpi's token), or None when root's password is refused."""
        from thinkube_devpi.shell.api import DevpiError

        if self.root_password is None:
            return None
        try:
            with self._devpi() as api:
                self._root_session = self._root_login().valid(api)
        except DevpiError as exc:
            if exc.status == 401:
                return None
            raise httpx.TransportError(str(exc).splitlines()[0]) from None
        return {**self._root_session.auth_header(), "Accept": "application/json"}

    def _as_root(self, fn: Callable[[dict[str, str]], Any]) -> None:
        try:
            headers = self._root_headers()
            if headers:
                fn(headers)
        except httpx.HTTPError:
            pass

    def check_upload_and_install(self) -> Iterator[Check]:
        name = "a probe package uploads to a scratch index"
        if self.root_password is None:
            yield Check(
                name,
                False,
                "not available",
                expected="root's password from Secret devpi-root",
                hint="Run phase 70 first; the test reads root's password from its Secret.",
            )
            return
        try:
            headers = self._root_headers()
        except httpx.HTTPError as exc:
            yield Check(name, False, f"no answer ({type(exc).__name__})", expected="root login")
            return
        if headers is None:
            yield Check(
                name,
                False,
                "refused",
                expected="root login 200",
                hint="Secret devpi-root does not match the server.",
            )
            return
        index = f"root/e2e-{_secrets.token_hex(4)}"
        version = time.strftime("0.0.%Y%m%d%H%M%S", time.gmtime())
        try:
            resp = self.http.put(
                f"{self.api}/{index}",
                json={"type": "stage", "bases": [], "volatile": True},
                headers=headers,
            )
            if resp.status_code not in (200, 201):
                yield Check(name, False, f"{resp.status_code}", expected="scratch index created")
                return
            with tempfile.TemporaryDirectory(prefix="tk-devpi-e2e-") as tmp:
                wheel = probe_wheel(Path(tmp), version)
                from thinkube_devpi.shell.upload import Uploader, read_distribution

                dist = read_distribution(wheel)
                with self._devpi() as api:
                    uploader = Uploader(api, index, self._root_login(), session=self._root_session)
                    up = uploader.send(dist)
                if not up.ok:
                    yield Check(
                        name,
                        False,
                        str(up.status),
                        expected="200",
                        hint="Uploads go to the API host; check body-size limits on the route.",
                    )
                    return
                yield Check(name, True, f"200: {wheel.name} on {index}", expected="200")
                yield self._install_back(index, version, Path(tmp))
        finally:
            try:
                gone = self.http.delete(f"{self.api}/{index}", headers=headers)
                ok = gone.status_code in (200, 201, 404)
                yield Check(
                    "the scratch index is deleted", ok, str(gone.status_code), expected="200"
                )
            except httpx.HTTPError as exc:
                yield Check(
                    "the scratch index is deleted",
                    False,
                    f"no answer ({type(exc).__name__})",
                    expected="200",
                    hint=f"Delete {index} by hand: devpi index --delete {index}",
                )

    def _install_back(self, index: str, version: str, tmp: Path) -> Check:
        name = "pip installs it back from that index alone"
        target = tmp / "target"
        argv = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(target),
            "--index-url",
            f"{self.api}/{index}/+simple/",
            f"{PROBE_NAME}=={version}",
        ]
        if self.ca_file:
            argv[4:4] = ["--cert", self.ca_file]
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=self._child_env(), timeout=300, check=False
        )
        module = target / (PROBE_NAME.replace("-", "_") + ".py")
        if proc.returncode == 0 and module.exists() and version in module.read_text():
            return Check(name, True, "installed", expected=f"{PROBE_NAME}=={version} installed")
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return Check(
            name,
            False,
            f"pip exit {proc.returncode}: {tail[0]}",
            expected=f"{PROBE_NAME}=={version} installed",
        )

    def check_helpers(self) -> Iterator[Check]:
        argv = [
            sys.executable,
            "-m",
            "thinkube_devpi.cli",
            "whoami",
            "--url",
            self.api + "/",
            "-o",
            "json",
        ]
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=self._child_env(), timeout=60, check=False
        )
        try:
            reachable = bool(json.loads(proc.stdout).get("server_reachable"))
        except ValueError:
            reachable = False
        yield Check(
            "tk-devpi whoami reaches the API host",
            reachable,
            "server reachable"
            if reachable
            else (proc.stderr.strip().splitlines() or ["no output"])[-1],
            expected="server reachable",
        )
        fish = shutil.which("fish")
        function = (
            Path(os.environ.get("HOME", "~")).expanduser()
            / ".config/fish/functions/devpi-whoami.fish"
        )
        if fish and function.exists():
            proc = subprocess.run(
                [fish, "-c", f"devpi-whoami --url {self.api}/"],
                capture_output=True,
                text=True,
                env=self._child_env(),
                timeout=60,
                check=False,
            )
            ok = proc.returncode == 0 or "reachable" in proc.stdout
            detail, hint = f"exit {proc.returncode}", ""
            if not ok:
                said = [line for line in proc.stderr.splitlines() if line.strip()]
                detail += f" ({said[0].strip()})" if said else ""
            if proc.returncode == 127:
                hint = (
                    "fish found no tk-devpi: run scripts/install.sh, or put the folder holding "
                    "tk-devpi on fish's PATH (fish_add_path)"
                )
            yield Check("devpi-whoami (fish) works", ok, detail, hint=hint, expected="exit 0")


@contextmanager
def end_to_end(settings: Settings, **kw: Any) -> Iterator[EndToEnd]:
    e2e = EndToEnd(settings, **kw)
    try:
        yield e2e
    finally:
        e2e.close()

"""Start devpi-server with its links following the request's host, limited to the configured hosts.

Managed by thinkube-devpi. devpi-server (6.20) builds every link from an "outside URL": a client's
X-Outside-Url request header if there is one, else --outside-url, and its OutsideURLMiddleware then
rewrites the request's Host to it. So a visitor could make devpi's pages link to any host, and a
fixed --outside-url sends everyone to one host: the signed-in dashboard's links would lead to the
open API host. This launcher decides the outside URL per request instead: the host the request came
in on (the gateway and oauth2-proxy pass it through) when it is one of DEVPI_OUTSIDE_HOSTS, else the
first of them (the API host); a client's X-Outside-Url is dropped. Everything else is devpi-server's
main. The pinned devpi-server version is checked by the installer's tests against a real server.
"""

import os
import sys

from devpi_server import middleware
from devpi_server.main import main

_call = middleware.OutsideURLMiddleware.__call__
HOSTS = [h.strip().lower() for h in os.environ.get("DEVPI_OUTSIDE_HOSTS", "").split(",") if h.strip()]
SCHEME = os.environ.get("DEVPI_OUTSIDE_SCHEME", "https")


def _request_host(environ):
    host = (environ.get("HTTP_HOST") or "").strip().lower()
    if host.startswith("["):  # an IPv6 literal: never one of ours
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host


def _outside_url_from_host(self, environ, start_response):
    environ.pop("HTTP_X_OUTSIDE_URL", None)
    host = _request_host(environ)
    environ["HTTP_X_OUTSIDE_URL"] = f"{SCHEME}://{host if host in HOSTS else HOSTS[0]}"
    return _call(self, environ, start_response)


if not HOSTS:
    sys.exit("devpi_server_launch: DEVPI_OUTSIDE_HOSTS must name the API host and the dashboard host")
middleware.OutsideURLMiddleware.__call__ = _outside_url_from_host  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())

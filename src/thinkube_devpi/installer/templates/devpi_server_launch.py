"""Start devpi-server with only the configured --outside-url deciding where its pages link to.

Managed by thinkube-devpi. devpi-server (6.20) lets a client's X-Outside-Url request header win
over --outside-url, so any visitor could make devpi's pages link to another host. This launcher
drops that header before devpi's own middleware reads it; everything else is devpi-server's main.
The pinned devpi-server version is checked by the installer's tests against a real server.
"""

import sys

from devpi_server import middleware
from devpi_server.main import main

_call = middleware.OutsideURLMiddleware.__call__


def _fixed_outside_url(self, environ, start_response):
    environ.pop("HTTP_X_OUTSIDE_URL", None)
    return _call(self, environ, start_response)


middleware.OutsideURLMiddleware.__call__ = _fixed_outside_url  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())

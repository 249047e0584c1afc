"""Shared fixtures. Fakes live in tests/fakes and are imported as `fakes.*`."""

from fakes.auth_cluster import auth_env  # noqa: F401
from fakes.devpi_server import *  # noqa: F403
from fakes.keycloak import fake_keycloak  # noqa: F401
from fakes.keyring_env import *  # noqa: F403

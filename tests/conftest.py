"""Shared fixtures. Fakes live in tests/fakes and are imported as `fakes.*`."""

from fakes.devpi_server import *  # noqa: F403
from fakes.keyring_env import *  # noqa: F403

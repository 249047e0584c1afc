"""Keyring fixtures: a plaintext keyring under a test HOME, or no keyring at all.

keyring caches its backend in the process, so each fixture resets that cache before and after.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


def _reset_keyring_cache() -> None:
    import keyring.core

    keyring.core._keyring_backend = None  # type: ignore[attr-defined]


@pytest.fixture
def test_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of the test's own, with XDG dirs inside it and no inherited devpi or pip settings."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("DEVPI_CLIENTDIR", str(home / ".devpi" / "client"))
    for name in (
        "DEVPI_USER",
        "DEVPI_INDEX",
        "VIRTUAL_ENV",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_CONFIG_FILE",
        "UV_DEFAULT_INDEX",
        "UV_INDEX_URL",
        "THINKUBE_DEVPI_HELPERS_CONFIG",
        "THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING",
        "DEVPI_ADMIN_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def plaintext_keyring(test_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """keyrings.alt's PlaintextKeyring under the test HOME, allowed explicitly. Yields its file."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING", "1")
    _reset_keyring_cache()
    yield test_home / ".local" / "share" / "python_keyring" / "keyring_pass.cfg"
    _reset_keyring_cache()


@pytest.fixture
def no_keyring(test_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No keyring backend at all, as on a headless machine without keyrings.alt."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    _reset_keyring_cache()
    yield
    _reset_keyring_cache()


@pytest.fixture
def helpers_home(plaintext_keyring: Path, test_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME with the helpers' settings, state, devpi-client dir and keyring inside it."""
    monkeypatch.setenv("THINKUBE_DEVPI_HELPERS_CONFIG", str(test_home / "helpers.toml"))
    monkeypatch.setenv("THINKUBE_DEVPI_STATE_DIR", str(test_home / "state"))
    return test_home

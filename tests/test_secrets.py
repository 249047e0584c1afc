"""The masked Secret type and where secrets are looked up and kept."""

from __future__ import annotations

import copy
import pickle
import string

import pytest

from thinkube_devpi import secrets
from thinkube_devpi.secrets import KeyringRefused, KeyringUnavailable, Secret

VALUE = "s3cr3t-Value"


def test_secret_never_shows_its_value():
    s = Secret(VALUE, "from DEVPI_ADMIN_PASSWORD")
    shown_forms = (repr(s), str(s), f"{s}", f"{s!r}", f"{s:>40}", format(s), repr([s]))
    for shown in shown_forms:
        assert VALUE not in shown
    assert "from DEVPI_ADMIN_PASSWORD" in repr(s)
    assert s.reveal() == VALUE
    assert s.source == "from DEVPI_ADMIN_PASSWORD"


def test_secret_refuses_pickle_and_copy():
    s = Secret(VALUE)
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        copy.copy(s)
    with pytest.raises(TypeError):
        copy.deepcopy({"a": s})
    with pytest.raises(AttributeError):
        s._value = "other"  # type: ignore[misc]


def test_secret_compares_and_is_truthy():
    assert Secret(VALUE) == Secret(VALUE, "keyring")
    assert Secret(VALUE) == VALUE
    assert Secret(VALUE) != Secret("other")
    assert Secret(VALUE) != 5
    assert Secret(VALUE)
    assert not Secret("")
    assert hash(Secret(VALUE)) == hash(Secret(VALUE, "x"))


def test_generate_is_url_safe_and_random():
    a, b = secrets.generate(), secrets.generate(16)
    assert a.source == "generated"
    assert a != b
    assert len(a.reveal()) >= 43
    assert set(a.reveal()) <= set(string.ascii_letters + string.digits + "-_")


def test_lookup_prefers_the_environment(plaintext_keyring, monkeypatch):
    secrets.store("DEVPI_ADMIN_PASSWORD", Secret("from-keyring"))
    monkeypatch.setenv("DEVPI_ADMIN_PASSWORD", VALUE)
    found = secrets.lookup("DEVPI_ADMIN_PASSWORD", interactive=False)
    assert found == VALUE and found.source == "from DEVPI_ADMIN_PASSWORD"
    monkeypatch.delenv("DEVPI_ADMIN_PASSWORD")
    found = secrets.lookup("DEVPI_ADMIN_PASSWORD", interactive=False)
    assert found == "from-keyring" and found.source == "keyring"


def test_store_lookup_forget_round_trip(plaintext_keyring):
    name = "devpi:admin@http://127.0.0.1:1/"
    assert secrets.lookup(name, interactive=False) is None
    described = secrets.store(name, Secret(VALUE))
    assert "PlaintextKeyring" in described
    assert secrets.lookup(name, interactive=False) == VALUE
    assert secrets.forget(name) is True
    assert secrets.forget(name) is False
    assert secrets.lookup(name, interactive=False) is None


def test_a_name_that_is_not_an_env_var_is_not_read_from_it(plaintext_keyring, monkeypatch):
    monkeypatch.setenv("lowercase_name", VALUE)
    assert secrets.lookup("lowercase_name", interactive=False) is None


def test_plaintext_keyring_is_refused_unless_allowed(plaintext_keyring, monkeypatch):
    monkeypatch.delenv("THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING")
    with pytest.raises(KeyringRefused) as err:
        secrets.keyring_backend()
    message = str(err.value)
    assert "PlaintextKeyring" in message and "THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING=1" in message
    assert "--allow-plaintext-keyring" in message
    with pytest.raises(KeyringRefused):
        secrets.store("x", Secret(VALUE))
    assert not plaintext_keyring.exists()
    # the explicit flag allows it
    assert secrets.keyring_backend(allow_plaintext=True) is not None
    secrets.store("x", Secret(VALUE), allow_plaintext=True)
    assert secrets.lookup("x", interactive=False, allow_plaintext=True) == VALUE
    # a refused keyring is skipped by lookup, not read
    assert secrets.lookup("x", interactive=False) is None


def test_no_keyring_says_to_use_the_environment(no_keyring, monkeypatch):
    with pytest.raises(KeyringUnavailable) as err:
        secrets.keyring_backend()
    assert "DEVPI_ADMIN_PASSWORD" in str(err.value)
    assert "environment" in str(err.value)
    assert secrets.lookup("DEVPI_ADMIN_PASSWORD", interactive=False) is None
    monkeypatch.setenv("DEVPI_ADMIN_PASSWORD", VALUE)
    assert secrets.lookup("DEVPI_ADMIN_PASSWORD", interactive=False) == VALUE
    assert secrets.forget("anything") is False


def test_prompt_only_when_interactive(no_keyring, monkeypatch):
    asked = []

    def fake_getpass(prompt):
        asked.append(prompt)
        return VALUE

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert secrets.lookup("DEVPI_ADMIN_PASSWORD", interactive=False) is None
    assert asked == []
    got = secrets.lookup("DEVPI_ADMIN_PASSWORD", interactive=True, prompt="Password: ")
    assert got == VALUE and got.source == "prompt"
    assert asked == ["Password: "]


def test_error_messages_do_not_contain_the_value(plaintext_keyring, monkeypatch):
    monkeypatch.delenv("THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING")
    with pytest.raises(KeyringRefused) as err:
        secrets.store("x", Secret(VALUE))
    assert VALUE not in str(err.value) and VALUE not in repr(err.value)

"""Transient API errors are retried with bounded backoff; what cannot be retried is said plainly.

Reads, server-side applies and deletes are idempotent: a 429 (after its Retry-After), a 5xx or a
lost connection gets another try. A create is sent once: a second one could make a second
object. An etcd timeout is a 500 and is reported as one, not as a network problem.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fakes.kube_api import Chaos, FakeKubeAPI
from thinkube_devpi.installer.events import ObjectRef
from thinkube_devpi.installer.kube import Kube, KubeError, Timeouts

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}


def _kube(fake: FakeKubeAPI, tmp_path: Path, **kw: float) -> Kube:
    return Kube(fake.api_client(), cache_dir=tmp_path / "cache", timeouts=Timeouts(**kw))  # type: ignore[arg-type]


def test_a_429_is_retried_after_the_time_the_server_asks_for(
    fake_kube: FakeKubeAPI, tmp_path: Path
) -> None:
    kube = _kube(fake_kube, tmp_path, backoff=0.01)
    fake_kube.fail("PATCH", r"/configmaps/c$", 429, "TooManyRequests", "slow down", times=2,
                   headers={"Retry-After": "1"})  # fmt: skip
    started = time.monotonic()
    result = kube.apply(CM)
    took = time.monotonic() - started
    assert result.outcome == "created"
    assert 2.0 <= took < 4.0, took  # two pauses of the second the server asked for
    patches = [r for r in fake_kube.requests if r.method == "PATCH"]
    assert [r.status for r in patches] == [429, 429, 201]


def test_a_retry_after_longer_than_allowed_is_reported_not_waited_out(
    fake_kube: FakeKubeAPI, tmp_path: Path
) -> None:
    kube = _kube(fake_kube, tmp_path, backoff=0.01)
    fake_kube.fail("GET", r"/configmaps/c$", 429, "TooManyRequests", "slow down",
                   headers={"Retry-After": "600"})  # fmt: skip
    started = time.monotonic()
    with pytest.raises(KubeError) as info:
        kube.get(ObjectRef("v1", "ConfigMap", "c", "default"))
    assert time.monotonic() - started < 1
    assert "HTTP 429" in str(info.value) and "retry after 600s" in str(info.value)


def test_an_etcd_timeout_is_a_500_retried_then_reported_as_a_500(
    fake_kube: FakeKubeAPI, tmp_path: Path
) -> None:
    kube = _kube(fake_kube, tmp_path, backoff=0.01, retries=3)
    fake_kube.fail("PATCH", r"/configmaps/c$", 500, "InternalError",
                   "etcdserver: request timed out", times=None)  # fmt: skip
    with pytest.raises(KubeError) as info:
        kube.apply(CM)
    text = str(info.value)
    assert "HTTP 500 (etcdserver: request timed out; after 4 attempts)" in text, text
    assert "did not answer" not in text and "VPN" not in text
    assert len([r for r in fake_kube.requests if r.method == "PATCH"]) == 4


def test_a_create_is_never_sent_twice(fake_kube: FakeKubeAPI, tmp_path: Path) -> None:
    kube = _kube(fake_kube, tmp_path, backoff=0.01)
    fake_kube.chaos = Chaos(seed=1, rate=1.0, kinds=("500",))
    try:
        with pytest.raises(KubeError) as info:
            kube.create(CM)
    finally:
        fake_kube.chaos = None
    assert "HTTP 500" in str(info.value) and "attempts" not in str(info.value)
    assert len([r for r in fake_kube.requests if r.method == "POST"]) == 1


@pytest.mark.parametrize("kind", ["reset", "stall", "409", "slow"])
def test_an_apply_survives_each_transient_fault(
    fake_kube: FakeKubeAPI, tmp_path: Path, kind: str
) -> None:
    """The first apply of each object meets the fault; every object ends up there once."""
    kube = _kube(fake_kube, tmp_path, backoff=0.01, read=0.5)
    chaos = Chaos(
        seed=7, rate=1.0, kinds=(kind,), slow_seconds=0.2, stall_seconds=2, first_only=True
    )
    fake_kube.chaos = chaos
    try:
        for name in ("a", "b"):
            kube.apply({**CM, "metadata": {"name": name, "namespace": "default"}}, known_live=True)
    finally:
        fake_kube.chaos = None
    assert {f.path.rsplit("/", 1)[-1] for f in chaos.injected} == {"a", "b"}
    names = sorted(o["metadata"]["name"] for o in fake_kube.list("v1", "ConfigMap", "default"))
    assert [n for n in names if n in ("a", "b")] == ["a", "b"]

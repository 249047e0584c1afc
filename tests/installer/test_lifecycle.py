"""The whole life of an install on the fakes: install, prove it, re-apply, roll back; and resume.

Everything the install talks to stands in on 127.0.0.1 (tests/fakes/platform.py): the API server and
its controllers, Keycloak, the deployment repository, a real devpi-server started by the
repository's own entrypoint when ArgoCD "syncs", the init Job running the product's devpi_init, and
the two hosts through a CONNECT proxy.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from fakes.platform import ADMIN_PASSWORD, World, secret_values
from leakcheck import files_under, find, process_argv
from thinkube_devpi.installer.events import (
    Event,
    LogLine,
    ObjectDeleted,
    PhaseFinished,
    PhaseStarted,
)
from thinkube_devpi.installer.kube import Timeouts
from thinkube_devpi.installer.phases import PHASES
from thinkube_devpi.installer.phases.base import Phase
from thinkube_devpi.installer.runner import Runner

PUBLIC_KEYS = {
    "username",
    "type",
    "url",
    "client-id",
    "insecure",
    "tls.crt",
    "ca.crt",
    "known_hosts",
    "sshKnownHosts",
}


def secret_scan(
    world: World, events: list[Event], requests: list[Any], argv: list[str], logs: str
) -> None:
    """Every secret of the install, in every form, is nowhere but in Secrets (DESIGN.md section 3)."""
    values = {
        ADMIN_PASSWORD,
        world.kc.admin_password,
        Path(world.settings.registry_token_file or "").read_text(),
    }
    for key_file in (world.settings.ssh_key_file, world.settings.ssh_readonly_key_file):
        values |= {line for line in Path(key_file or "").read_text().splitlines() if len(line) > 40}
    for ns in ("devpi", "argo", "argocd"):
        for obj in world.fake.list("v1", "Secret", ns):
            for name, value in secret_values(world.fake, obj["metadata"]["name"], ns).items():
                if name in PUBLIC_KEYS or len(value) < 12:
                    continue  # certificates, known hosts, user names and URLs are not secret
                values |= {
                    line
                    for line in value.splitlines()
                    if len(line) >= 12 and not line.startswith("-----")
                }
    assert len(values) >= 8
    shown = "\n".join(str(e) for e in events)
    others = [
        obj
        for rt in world.fake.resources
        if rt.kind != "Secret" and "/" not in rt.plural
        for obj in world.fake.list(rt.api_version, rt.kind)
    ]
    repo = "\n".join(world.remote.show(path) for path in world.remote.files())
    for value in values:
        assert find(value, shown) == [], "a secret in the events shown to the admin"
        assert find(value, logs) == [], "a secret in the DEBUG logs"
        # the stand-in container (devpi's entrypoint) gets the root password from its secretKeyRef
        # environment, as in the Pod: it is the cluster's process, not one the product starts
        for line in (a for a in argv if "entrypoint.sh" not in a):
            assert find(value, line) == [], f"a secret in the argv or environment of {line[:300]}"
        assert find(value, json.dumps(others)) == [], "a secret in an object other than a Secret"
        assert find(value, repo) == [], "a secret in the deployment repository"
        for record in requests:
            if "/secrets" not in record.path:
                assert find(value, record.body or b"") == [], (
                    f"a secret in a request to {record.path}"
                )
        for path, data in files_under(world.home):
            assert find(value, data) == [], f"a secret in {path}"


def failures(events: list[Event]) -> list[str]:
    return [
        f"{e.phase}: {e.message} {e.hint}"
        for e in events
        if isinstance(e, PhaseFinished) and not e.ok
    ]


def test_install_prove_reapply_and_roll_back(
    world: World, caplog: pytest.LogCaptureFixture, tk_devpi_on_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[Event] = []
    start = time.monotonic()
    world.fake.clear_log()
    with process_argv() as argv:
        ok, events = world.apply()
        seen += events
        assert ok, failures(events)
        # apply with nothing named: every phase, never the test (88) or the rollback (89)
        started = [e.phase for e in events if isinstance(e, PhaseStarted)]
        assert started == [cls.name for cls in PHASES]
        install_log = list(world.fake.requests)
        install_requests, install_seconds = len(world.fake.requests), time.monotonic() - start
        install_writes = len(world.fake.writes())
        print(
            f"\nfull install: {install_requests} API requests, {install_writes} writes, "
            f"{install_seconds:.1f} s"
        )

        # phase 88 through the real host names (mapped to the stand-ins)
        ok, events = world.apply(["test"], force=True)
        seen += events
    lines = [e.text for e in events if isinstance(e, LogLine)]
    assert ok, "\n".join(lines)
    assert sum(line.startswith("ok ") for line in lines) >= 10

    # converged: nothing moves, no commit, no Keycloak write, no new build
    before, commits, builds = world.ours(), world.remote.count(), world.controllers.builds
    world.kc.clear_log()
    world.fake.clear_log()
    start = time.monotonic()
    ok, events = world.apply()
    reapply_seconds = time.monotonic() - start
    assert ok, failures(events)
    assert world.ours() == before
    assert world.remote.count() == commits and world.controllers.builds == builds
    assert world.kc.writes() == []
    assert world.fake.writes() == []
    print(
        f"converged re-apply: {len(world.fake.requests)} API requests, "
        f"{len(world.fake.writes())} writes, {reapply_seconds:.1f} s"
    )

    secret_scan(world, seen, install_log, argv, caplog.text)

    # roll everything back: only the package data (and what it needs) stays, each with a reason
    events = []
    assert Runner(world.context(), emit=events.append).rollback(), failures(events)
    kept = {
        str(e.ref): e.reason for e in events if isinstance(e, ObjectDeleted) and e.outcome == "kept"
    }
    left = set(world.ours())
    assert left == {
        "PersistentVolumeClaim devpi/devpi-data-pvc",
        "Namespace /devpi",
        "Secret devpi/devpi-root",
        "Secret devpi/devpi-server-secret",
    }, left
    for key in left:
        kind, _, rest = key.partition(" ")
        ref = f"{kind} {rest.lstrip('/')}"
        assert kept.get(ref), f"{ref} kept without a reason"
    assert world.kc.client("devpi-dashboard") is None
    config = world.home / ".config" / "thinkube-devpi" / "helpers.toml"
    assert not config.exists()


# (phase, how to break its first write once): an API error at a chosen request
FAULTS: list[tuple[str, str, str]] = [
    ("namespace", "kube", r"/api/v1/namespaces/devpi$"),
    ("storage", "kube", r"/persistentvolumeclaims/devpi-data-pvc$"),
    ("redis", "kube", r"/deployments/ephemeral-redis$"),
    ("keycloak", "keycloak", r"/admin/realms/thinkube/clients$"),
    ("oauth2-proxy", "kube", r"/deployments/oauth2-proxy$"),
    ("build", "kube", r"/workflowtemplates/devpi-build$"),
    ("deploy", "kube", r"/applications/devpi$"),
    ("exposure", "kube", r"/httproutes/devpi-api$"),
]


def test_resume_after_a_failure_in_each_phase_reaches_the_same_end_state(world: World) -> None:
    for _, where, path in FAULTS:
        if where == "kube":
            # one more 500 than the installer retries: the run stops there, a re-run goes on
            world.fake.fail(
                "PATCH",
                path,
                status=500,
                reason="InternalError",
                message="injected by the test",
                times=Timeouts().retries + 1,
            )
        else:
            world.kc.fail("POST", path, status=500)
    failed_in: list[str] = []
    for _ in range(len(FAULTS) + 1):
        ok, events = world.apply()
        if ok:
            break
        (first,) = [e for e in events if isinstance(e, PhaseFinished) and not e.ok]
        assert "500" in first.message, first.message
        if first.phase != "keycloak":
            assert f"after {Timeouts().retries + 1} attempts" in first.message, first.message
        failed_in.append(first.phase)
    assert ok, failures(events)
    assert failed_in == [phase for phase, _, _ in FAULTS]

    # the same end state as an uninterrupted install: every planned object present and unchanged,
    # every phase healthy, one build, one init Job, one first backup (phase 75), nothing extra
    runner = Runner(world.context())
    planned = {
        f"{i.ref.kind} {i.ref.namespace or ''}/{i.ref.name}" for p in runner.plan() for i in p.items
    }
    assert all(i.action == "unchanged" for p in runner.plan() for i in p.items)
    assert {
        p.name: s.state.value
        for p, s in runner.status()
        if isinstance(p, Phase) and s.state.value != "healthy"
    } == {}
    extra = set(world.ours()) - planned
    runs = sorted(key.split(" ")[0] for key in extra)
    assert runs == ["Job", "Workflow"] and any("/devpi-backup-" in key for key in extra), extra
    assert world.controllers.builds == 1
    assert len(world.fake.list("batch/v1", "Job", "devpi")) == 2

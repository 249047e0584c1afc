"""Hints that work: every command the product suggests runs as written; failures say what to do."""

from __future__ import annotations

import ast
import json
import re
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import thinkube_devpi
from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.cli import main

SRC = Path(thinkube_devpi.__file__).resolve().parent
# a suggested command, as the product writes it: in backticks, starting with tk-devpi
SUGGESTED = re.compile(r"`(tk-devpi(?: [^`]*)?)`")
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]+(?:Error|Exception|Timeout)\b")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def suggested_commands() -> list[tuple[str, str]]:
    """Commands in the strings users see (not docstrings); f-string fields are skipped."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in docs:
                    continue
                text = node.value
            elif isinstance(node, ast.JoinedStr):
                parts = [v.value if isinstance(v, ast.Constant) else "\0" for v in node.values]
                text = "".join(str(p) for p in parts)
            else:
                continue
            for match in SUGGESTED.finditer(text):
                command = match.group(1)
                if "\0" in command or command == "tk-devpi":
                    continue
                found.append((str(path.relative_to(SRC)), command))
    return sorted(set(found))


def parse(command: str) -> None:
    """Parse the command with click as the shell would hand it over; raise on any usage error."""
    args = command.split()[1:]
    ctx = main.make_context("tk-devpi", list(args), resilient_parsing=False)
    group: click.Command = main
    while isinstance(group, click.Group) and [*ctx.protected_args, *ctx.args]:
        rest = [*ctx.protected_args, *ctx.args]
        if rest[0].startswith("-"):
            break
        name, cmd, rest = group.resolve_command(ctx, rest)
        assert cmd is not None, f"{command}: no command {name}"
        ctx = cmd.make_context(name or "", list(rest), parent=ctx)
        group = cmd
    assert not isinstance(group, click.Group) or not ctx.args, command


def test_the_scan_finds_the_commands_it_should() -> None:
    commands = {c for _, c in suggested_commands()}
    assert "tk-devpi config init" in commands and "tk-devpi install status --phase 80" in commands


@pytest.mark.parametrize(("where", "command"), suggested_commands())
def test_every_suggested_command_runs_as_written(where: str, command: str) -> None:
    try:
        parse(command)
    except click.UsageError as exc:
        pytest.fail(f"{where}: `{command}` is rejected by click: {exc.format_message()}")


def test_phase_50_names_the_command_that_applies_the_missing_phase(
    fake_kube: FakeKubeAPI, kubeconfig: Path
) -> None:
    env = {"KUBECONFIG": str(kubeconfig), "THINKUBE_DEVPI_DOMAIN": "example.com"}
    result = CliRunner().invoke(main, ["install", "apply", "--phase", "50", "-o", "json"], env=env)
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    hint = next(e["hint"] for e in events if e["event"] == "PhaseFinished")
    command = re.search(r"`(tk-devpi [^`]+)`", hint)
    assert command is not None, hint
    parse(command.group(1))
    assert command.group(1) in ("tk-devpi install apply --phase keycloak", "tk-devpi install apply --phase redis")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_preflight_failures_carry_a_hint_and_no_class_names(
    fake_kube: FakeKubeAPI, kubeconfig: Path
) -> None:
    env = {
        "KUBECONFIG": str(kubeconfig),
        "THINKUBE_DEVPI_DOMAIN": "example.com",
        # nothing listens there: the connection is refused
        "THINKUBE_DEVPI_KEYCLOAK_URL": f"https://localhost:{closed_port()}",
        # the wildcard Secret is checked where it is used: exposure through an Ingress
        "THINKUBE_DEVPI_EXPOSURE": "ingress",
        "THINKUBE_DEVPI_TLS_SECRET_NAME": "no-such-secret",
    }
    result = CliRunner().invoke(main, ["install", "preflight", "-o", "json"], env=env)
    checks = json.loads(result.output)
    failed = [c for c in checks if c["ok"] is False]
    assert {c["check"] for c in failed} >= {"Keycloak issuer", "wildcard TLS Secret"}
    for check in failed:
        assert check["hint"], check
        assert not CLASS_NAME.search(check["detail"] + check["hint"]), check
    text = CliRunner().invoke(main, ["install", "preflight"], env=env).output
    assert "hint" in text and not CLASS_NAME.search(text)


def test_config_show_names_derived_values_and_no_python_literals(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    CliRunner().invoke(main, ["config", "init", "--config", str(path), "--domain", "example.com"])
    out = CliRunner().invoke(main, ["config", "show", "--config", str(path)]).output
    assert not re.search(r"\b(None|False|True)\b", out), out
    assert "(derived) devpi.example.com" in out and "(derived) https://auth.example.com" in out
    assert "https://auth.example.com/realms/" in out

"""`thinkube-devpi-tui` (and `python -m thinkube_devpi.tui`): arguments, settings, then the app."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from thinkube_devpi import config
from thinkube_devpi.config import ConfigError, Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="thinkube-devpi-tui",
        description="Guided setup of DevPi on a thinkube cluster, phase by phase, with live "
        "cluster status. Without a reachable cluster it opens in plan mode and writes nothing.",
    )
    parser.add_argument("--config", type=Path, help="settings file (default: the user config dir)")
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)"
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current context)")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="plan mode: show every phase's plan, read and write nothing",
    )
    return parser.parse_args(argv)


def load_settings(path: Path | None) -> tuple[Settings, Path, str]:
    """Settings, the path they save to, and a note for the config view (defaults, errors)."""
    path = path or config.default_config_path()
    try:
        settings = config.load(path)
    except ConfigError as exc:
        return Settings(), path, f"{exc}. Using the defaults until it is fixed and saved."
    note = ""
    if not path.exists():
        note = (
            f"No settings file at {path}: using the defaults (placeholder domain "
            f"{config.PLACEHOLDER_DOMAIN}). Set domain and save with ctrl+s."
        )
    return settings, path, note


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings, path, note = load_settings(args.config)
    from thinkube_devpi.tui.app import DevpiApp

    # Everything imported so far lives as long as the process: keep the collector from walking
    # it. Without this a full collection (16 to 21 ms, on the objects of the imports) falls in the
    # middle of drawing the first screen.
    gc.freeze()
    app = DevpiApp(
        settings,
        config_path=path,
        config_note=note,
        kubeconfig=args.kubeconfig,
        context=args.context,
        plan=args.plan,
    )
    # q exits within 2 s even when a worker waits on a server that never answers
    app.hard_exit_after = 1.5
    try:
        app.run()
    except KeyboardInterrupt:  # ctrl+c while the app shuts down: no traceback
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()

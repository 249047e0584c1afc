"""One palette for states everywhere: phases, cluster rows, preflight checks."""

from __future__ import annotations

from rich.text import Text

from thinkube_devpi.installer.events import State

# k9s' colours: pending orange, error red, terminating purple, completed grey
STATE_STYLE: dict[State, str] = {
    State.HEALTHY: "bold #5fd75f",
    State.PROGRESSING: "bold #ffaf00",
    State.MISSING: "#87afd7",
    State.FAILED: "bold #ff5f5f",
    State.UNKNOWN: "italic #8a8a8a",
}

# keyed by installer.live.rows.Health's values (a StrEnum, so Health members look these up); plain
# strings keep the status module out of the first screen's imports
HEALTH_STYLE: dict[str, str] = {
    "ok": "#87d7ff",
    "pending": "#ff8700",
    "fault": "#ff5f5f",
    "completed": "#8a8a8a",
    "terminating": "#af87ff",
}

ACTION_STYLE: dict[str, str] = {
    "create": "#5fd75f",
    "update": "#ffaf00",
    "unchanged": "#8a8a8a",
    "refuse": "bold #ff5f5f",
    "unknown": "#87afd7",
}

LEVEL_STYLE: dict[str, str] = {
    "debug": "#6c6c6c",
    "info": "",
    "warning": "#ffaf00",
    "error": "bold #ff5f5f",
}


def state_text(state: State, label: str | None = None) -> Text:
    return Text(label or state.value, style=STATE_STYLE.get(state, ""))


def check_text(ok: bool | None) -> Text:
    if ok is None:
        return Text("skipped", style="#8a8a8a")
    return Text("ok", style="bold #5fd75f") if ok else Text("FAIL", style="bold #ff5f5f")

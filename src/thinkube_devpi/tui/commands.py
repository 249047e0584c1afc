"""One declaration per command: its key binding, footer text, header hint and palette entry."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Command:
    id: str
    key: str
    action: str
    label: str  # short, for the footer and the header's key hints
    title: str  # for the command palette
    help: str  # tooltip and palette help
    views: tuple[str, ...] = ()  # where it applies; () means everywhere
    show: bool = True
    app_wide: bool = True  # bound on the App; else on each view's Screen (tui/screens)

    @property
    def on_screen(self) -> bool:
        """Bound on a view's Screen: the view's own commands, and j/k/Esc, which act in it."""
        return bool(self.views) or not self.app_wide


COMMANDS: tuple[Command, ...] = (
    Command(
        "view-phases",
        "1",
        "show_view('phases')",
        "Phases",
        "Show the phases",
        "Phases, their state, plan and log",
    ),
    Command(
        "view-cluster",
        "2",
        "show_view('cluster')",
        "Cluster",
        "Show the cluster",
        "Live objects in the devpi namespace, the build and the ArgoCD application",
    ),
    Command(
        "view-config",
        "3",
        "show_view('config')",
        "Config",
        "Show the settings",
        "Settings, secrets for this run and preflight checks",
    ),
    Command(
        "run-phase",
        "r",
        "run_phase",
        "Run",
        "Run the selected phase",
        "Apply the selected phase after listing what it creates or changes (asks first)",
        ("phases",),
    ),
    Command(
        "run-all",
        "a",
        "run_all",
        "Run all",
        "Run all remaining phases",
        "Apply every phase in order, skipping the healthy ones (asks first)",
        ("phases",),
    ),
    Command(
        "retry",
        "t",
        "retry_failed",
        "Retry",
        "Retry the failed phases",
        "Run the phases that failed again (asks first)",
        ("phases",),
    ),
    Command(
        "rollback",
        "b",
        "rollback_phase",
        "Roll back",
        "Roll back the selected phase",
        "Delete what the selected phase made: lists what goes and stays, then asks",
        ("phases",),
    ),
    Command(
        "faults",
        "f",
        "toggle_faults",
        "Faults",
        "Toggle faults only",
        "Show only rows that are pending, failing or terminating",
        ("cluster",),
    ),
    Command(
        "pod-log",
        "l",
        "pod_log",
        "Logs",
        "Follow the selected pod's log",
        "Follow the log of the pod under the cursor",
        ("cluster",),
    ),
    Command(
        "events",
        "e",
        "show_events",
        "Events",
        "Show recent events",
        "Recent events in the devpi namespace",
        ("cluster",),
    ),
    Command(
        "preflight",
        "p",
        "preflight",
        "Preflight",
        "Run the preflight checks",
        "Cluster, CRDs, ingress class, Keycloak issuer and TLS Secret",
        ("config",),
    ),
    Command(
        "save",
        "ctrl+s",
        "save_config",
        "Save",
        "Save the settings",
        "Validate and write the settings file",
        ("config",),
    ),
    Command(
        "refresh",
        "ctrl+r",
        "refresh",
        "Refresh",
        "Refresh",
        "Read every phase's state and plan from the cluster again",
    ),
    Command("quit", "q", "quit", "Quit", "Quit", "Quit (asks first while a phase runs)"),
    # k9s habits: help, filter, command mode, vi keys, Esc back
    Command("help", "question_mark", "help", "Help", "Help", "Every key of this view"),
    Command(
        "filter",
        "slash",
        "filter",
        "Filter",
        "Filter the list",
        "Show only the rows that hold what you type (Enter keeps it, Esc clears it)",
        ("phases", "cluster"),
    ),
    Command(
        "command",
        "colon",
        "command_mode",
        "Command",
        "Go to a view or resource",
        ":phases :cluster :config or a kind (:pods :deploy :pvc :svc :ing :jobs :workflows "
        ":apps :events)",
    ),
    Command("down", "j", "cursor('down')", "Down", "Down", "Move down", show=False,
            app_wide=False),
    Command("up", "k", "cursor('up')", "Up", "Up", "Move up", show=False, app_wide=False),
    Command(
        "back", "escape", "back", "Back", "Back", "Close the prompt, clear the filter, or go "
        "back to the previous view", show=False, app_wide=False,
    ),
)

# what a key is called on screen (Textual's names for ? / : are words)
KEY_DISPLAY = {
    "question_mark": "?",
    "slash": "/",
    "colon": ":",
    "escape": "esc",
}


def _binding(c: Command) -> Binding:
    return Binding(
        c.key,
        c.action,
        c.label,
        id=c.id,
        tooltip=c.help,
        show=c.show,
        key_display=KEY_DISPLAY.get(c.key),
    )


def app_bindings() -> list[BindingType]:
    """The App's keys: views, refresh, quit, help, command mode."""
    out: list[BindingType] = [_binding(c) for c in COMMANDS if not c.on_screen]
    out.append(Binding("ctrl+q", "quit", "Quit", id="quit-ctrl", show=False, priority=True))
    out.append(Binding("f5", "refresh", "Refresh", id="refresh-f5", show=False))
    return out


def view_bindings(view: str) -> list[BindingType]:
    """The keys of one view's own commands (its Screen binds them)."""
    return [_binding(c) for c in COMMANDS if view in c.views]


def screen_bindings() -> list[BindingType]:
    """j/k/Esc: every view's Screen binds them, since they act inside the view."""
    return [_binding(c) for c in COMMANDS if not c.views and c.on_screen]


# the footer lists keys in this order, whether the App or the view binds them
FOOTER_ORDER = {c.id: i for i, c in enumerate(COMMANDS)}


def hints(view: str) -> list[tuple[str, str]]:
    """(key, label) pairs for the header: the commands of this view, then the global ones."""

    def shown(key: str) -> str:
        return KEY_DISPLAY.get(key, key.replace("ctrl+", "^"))

    own = [(shown(c.key), c.label) for c in COMMANDS if view in c.views and c.show]
    common = [
        (shown(c.key), c.label)
        for c in COMMANDS
        if not c.views and c.show and c.id not in {"view-phases", "view-cluster", "view-config"}
    ]
    return own + common + [("^p", "Palette")]


def help_rows(view: str, extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """(key, what) for every key that works in ``view``: its commands, then the global ones."""

    def shown(c: Command) -> str:
        return KEY_DISPLAY.get(c.key, c.key.replace("ctrl+", "^"))

    own = [(shown(c), c.help) for c in COMMANDS if view in c.views]
    common = [(shown(c), c.help) for c in COMMANDS if not c.views]
    return [
        *own,
        *(extra or []),
        *common,
        ("^p", "Command palette: every action by name"),
        ("^q", "Quit at once (asks first while a phase runs)"),
    ]


def devpi_commands() -> type:
    """The palette's provider, imported when the palette first opens (textual.command is slow
    to import and the first screen does not need it)."""
    from thinkube_devpi.tui.palette import DevpiCommands

    return DevpiCommands

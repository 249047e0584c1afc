"""A k9s-like header: where we are connected, to what, and the keys of the current view."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

CONNECTION_STYLE = {
    "connecting": "bold #ffaf00",
    "connected": "bold #5fd75f",
    "unreachable": "bold #ff5f5f",
    "plan mode": "bold #87afd7",
    "not answering": "bold #ff5f5f",
    "stale": "bold #ff8700",
}


class KubeHeader(Widget):
    """Context, cluster, namespace, connection state (and why) on the left; key hints right."""

    DEFAULT_CSS = """
    KubeHeader { height: auto; max-height: 7; padding: 0 1; background: $panel; }
    """

    context: reactive[str] = reactive("-")
    cluster: reactive[str] = reactive("-")
    namespace: reactive[str] = reactive("devpi")
    connection: reactive[str] = reactive("connecting", layout=True)
    reason: reactive[str] = reactive("", layout=True)
    since: reactive[str] = reactive("")  # "since 12:03:04" when the connection state changed
    version: reactive[str] = reactive("")
    domain_note: reactive[str] = reactive("", layout=True)
    hints: reactive[tuple[tuple[str, str], ...]] = reactive(())
    view: reactive[str] = reactive("phases")

    @property
    def compact(self) -> bool:
        """Under 100 columns or 30 rows the header folds to three rows; keys stay in the footer."""
        width, height = self.app.size
        return width < 100 or height < 30

    def _state(self) -> Text:
        state = Text(self.connection, style=CONNECTION_STYLE.get(self.connection, ""))
        if self.since:
            state.append(f" {self.since}", style=CONNECTION_STYLE.get(self.connection, ""))
        if self.reason:
            state.append(f"  {self.reason}", style="#d0d0d0")
        elif self.version:
            state.append(f"  Kubernetes {self.version}", style="#d0d0d0")
        return state

    def _views(self) -> Text:
        views = Text()
        for i, name in enumerate(self.app.MODES, 1):  # the App's views, in order
            if name == self.view:
                views.append(f" <{name}> ", style="bold #000000 on #ffaf00")
            else:
                views.append(f" {i} {name} ", style="#87afd7")
            views.append(" ")
        return views

    def render_compact(self) -> Text:
        where = Text.assemble(
            ("ctx ", "#ffaf00"),
            (self.context or "-", "bold"),
            ("  ns ", "#ffaf00"),
            (self.namespace, "bold"),
            ("  ", ""),
            (self.domain_note, "#d0d0d0"),
        )
        where.truncate(max(20, self.size.width), overflow="ellipsis")
        # the state wraps: the reason for plan mode is read in full
        return Text("\n").join([self._views(), where, self._state()])

    def render(self) -> Table | Text:
        if self.compact:
            return self.render_compact()
        info = Table.grid(padding=(0, 1))
        info.add_column(style="#ffaf00", no_wrap=True, min_width=11)
        info.add_column(overflow="fold")  # the connection's reason wraps rather than hides
        state = self._state()
        info.add_row("Context:", Text(self.context or "-", style="bold"))
        info.add_row("Cluster:", self.cluster or "-")
        info.add_row("Namespace:", Text(self.namespace, style="bold"))
        info.add_row("Connection:", state)
        info.add_row("Domain:", Text(self.domain_note, style="#d0d0d0"))
        info.add_row("View:", self._views())

        keys = Table.grid(padding=(0, 1))
        per_column = 6
        columns = max(1, -(-len(self.hints) // per_column))
        for _ in range(columns):
            keys.add_column(style="bold #5fafff", no_wrap=True)
            keys.add_column(style="#d0d0d0", no_wrap=True)
        for row in range(per_column):
            cells: list[str] = []
            for col in range(columns):
                i = col * per_column + row
                if i < len(self.hints):
                    key, label = self.hints[i]
                    cells += [f"<{key}>", label]
                else:
                    cells += ["", ""]
            keys.add_row(*cells)

        outer = Table.grid(expand=True, padding=(0, 2))
        outer.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        outer.add_column(no_wrap=True, width=16 * columns)
        outer.add_row(info, keys)
        return outer

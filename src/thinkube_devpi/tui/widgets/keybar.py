"""The key bar at the bottom of a view: every key the view shows, in one line, in one widget.

Textual's Footer makes a widget per key (thirteen on the phases view, half the screen's widgets),
each styled, laid out and rendered on its own, and composes them again whenever a key turns on or
off. This bar draws the same line itself: a change of keys is one repaint, and the first frame
costs one widget. It reads the keys as the Footer does (the screen's active bindings that are
shown, one per action, disabled ones dimmed, the command palette's key on the right) and, like
the Footer, a click on a key presses it.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

SEPARATOR = "▏"


class KeyBar(Widget, can_focus=False):
    """The current screen's shown keys; a click on one presses it."""

    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
    }
    KeyBar > .keybar--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    KeyBar > .keybar--description {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    KeyBar > .keybar--disabled {
        text-style: dim;
    }
    """
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--disabled"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # (first cell, last cell + 1, key, enabled) of each key drawn, for clicks
        self._spans: list[tuple[int, int, str, bool]] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[Any]) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh()

    def shown_keys(self) -> list[tuple[str, str, str, bool]]:
        """(key, key as shown, description, enabled) in the screen's order, one per action; the
        command palette's key last."""
        app = self.app
        found: dict[str, tuple[str, str, str, bool]] = {}
        palette: tuple[str, str, str, bool] | None = None
        for key, (_, binding, enabled, _) in self.screen.active_bindings.items():
            entry = (binding.key, app.get_key_display(binding), binding.description, enabled)
            if key == app.COMMAND_PALETTE_BINDING and app.ENABLE_COMMAND_PALETTE:
                palette = entry
            elif binding.show and binding.action not in found:
                found[binding.action] = entry
        return [*found.values(), *([palette] if palette else [])]

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keybar--key", partial=True)
        description_style = self.get_component_rich_style("keybar--description", partial=True)
        disabled = self.get_component_rich_style("keybar--disabled", partial=True)
        keys = self.shown_keys()
        palette = keys.pop() if keys and keys[-1][0] == self.app.COMMAND_PALETTE_BINDING else None
        line = Text(no_wrap=True, overflow="crop", end="")
        spans: list[tuple[int, int, str, bool]] = []

        def add(
            key: str, shown: str, description: str, enabled: bool, *, last: bool = False
        ) -> None:
            # " r Run " as the Footer draws a key; the palette's last, flush right: "^p palette"
            start = line.cell_len
            extra = disabled if not enabled else None
            key_text, description_text = (
                (shown, f" {description}")
                if last
                else (f" {shown} ", f"{description} " if description else "")
            )
            line.append(key_text, key_style + extra if extra else key_style)
            line.append(description_text, description_style + extra if extra else description_style)
            spans.append((start, line.cell_len, key, enabled))

        for entry in keys:
            add(*entry)
        if palette is not None:
            # the palette's key stays in sight on the right; the keys that do not fit before it
            # are cut (`?` lists them all)
            key, shown, description, enabled = palette
            room = self.size.width - cell_len(f"{SEPARATOR}{shown} {description}")
            if line.cell_len > room:
                line.truncate(max(room, 0))
                spans[:] = [(a, min(b, room), k, on) for a, b, k, on in spans if a < room]
            line.append(" " * (room - line.cell_len))
            line.append(SEPARATOR, "dim")
            add(key, shown, description, enabled, last=True)
        self._spans = spans
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, key, enabled in self._spans:
            if start <= event.x < end:
                if enabled:
                    self.app.simulate_key(key)
                else:
                    self.app.bell()
                return

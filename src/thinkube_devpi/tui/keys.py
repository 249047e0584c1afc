"""Keys are handled one after the other, each with the focus the one before it left.

Textual forwards a key to the widget focused when the app *reads* it, and runs a widget's
bindings when the key has bubbled back up to the app. In a burst (fast typing, a paste of keys,
tmux ``send-keys``) the keys after a Tab or a view switch therefore go to the widget that had
focus before, which drops them, and a binding such as an Input's backspace runs after the
letters typed behind it. Here the app walks the focus chain itself, in line, before it reads the
next key: what is typed lands where it would have landed had it been typed slowly.
"""

from __future__ import annotations

from textual import events
from textual.app import App


class SerialKeysApp(App[None]):
    """An App whose key presses are dispatched in order, each to the focus of its time."""

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key) or event.is_forwarded:
            await super().on_event(event)
            return
        if not self.app_focus:
            self.app_focus = True
        if await self._check_bindings(event.key, priority=True):
            return
        event._set_forwarded()
        # walked here, not bubbled through the queues (Message.bubble is a per-class default
        # that an instance may override)
        event.bubble = False  # type: ignore[misc]
        node = self.focused or self.screen
        while node is not None and node is not self:
            await node._dispatch_message(event)
            if event._stop_propagation:
                return
            node = node._parent  # type: ignore[assignment]
        await self._dispatch_message(event)  # the app's bindings (from the focus of now)

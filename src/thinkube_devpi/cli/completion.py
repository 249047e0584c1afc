"""Shell completion for `tk-devpi`, answered by click from the commands themselves.

fish's script (written by `tk-devpi fish install`, see ``fish.generator.COMPLETION``) runs
``_TK_DEVPI_COMPLETE=fish_complete tk-devpi`` on each TAB; click parses the words typed so far
and lists subcommands, options or choices. This class only fixes the wire format: one line per
answer, ``type,value``, a tab and the short help (click 8.4's own fish format spans three lines).
"""

from __future__ import annotations

from click.shell_completion import CompletionItem, FishComplete, add_completion_class


class TkFishComplete(FishComplete):
    """click's fish completion with a one-line-per-answer format."""

    def format_completion(self, item: CompletionItem) -> str:
        value = str(item.value).replace("\n", " ")
        help_ = " ".join((item.help or "").split())
        return f"{item.type},{value}" + (f"\t{help_}" if help_ else "")


add_completion_class(TkFishComplete, "fish")

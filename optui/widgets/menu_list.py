"""An OptionList that can be laid out at any width, down to a terminal one column wide."""

from __future__ import annotations

from textual.geometry import Size
from textual.widgets import OptionList


class MenuList(OptionList):
    """OptionList whose height is measured at one column at least.

    Textual's OptionList wraps each option at its width minus the option padding; at a width of
    zero or less (a terminal resized to a few columns, or a screen laid out while covered) Rich's
    word folding raises ValueError and the app dies. Measuring at one column instead gives a
    tall, harmless answer that the next resize replaces.
    """

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        padding = self.get_component_styles("option-list--option").padding.width
        return super().get_content_height(container, viewport, max(width, padding + 1))

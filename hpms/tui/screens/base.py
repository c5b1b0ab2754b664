"""What the scheduler's screens share: the app they run in, typed as the scheduler."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from hpms.tui.app import HpmsApp


def scheduler(node: DOMNode) -> HpmsApp:
    """The app `node` runs in: Textual types it as any App; hpms screens run in HpmsApp."""
    return cast("HpmsApp", node.app)

"""What a curation panel needs from the widget it sits in."""

from __future__ import annotations

from typing import Protocol

import napari
from napari.layers import Points

from napari_annotatability.core.curation import Curation, Edit


class CurationHost(Protocol):
    """The curation widget, as its panels see it."""

    threaded: bool

    @property
    def viewer(self) -> napari.viewer.Viewer:
        """The napari viewer."""

    @property
    def source(self) -> Points | None:
        """The cells layer being curated."""

    @property
    def curation(self) -> Curation | None:
        """Its curation (``None`` when there is nothing to curate)."""

    def problem(self) -> str:
        """Why there is no curation."""

    def report(self, message: str, *, error: bool = False, notify: bool = False) -> None:
        """Show ``message`` in the status line; an error or ``notify`` also notifies."""

    def announce(self, edit: Edit, verb: str) -> None:
        """Tell every layer and widget that ``edit`` was made, undone or redone."""

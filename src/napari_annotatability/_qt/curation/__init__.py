"""The panels of the curation widget: selection, edits, retraining, export.

Each panel is a small magicgui container acting through its *host*, the
:class:`~napari_annotatability._qt.curation_widget.CurationWidget` (the viewer, the chosen
cells layer, its curation and the status line).
"""

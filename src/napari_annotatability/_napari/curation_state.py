"""One :class:`~napari_annotatability.core.curation.Curation` per AnnData and annotation.

Widgets share it (the curation widget, the review queue), so undo and redo cover every
edit made from either, and it outlives a retrain.
"""

from __future__ import annotations

import weakref

from anndata import AnnData
from psygnal import Signal, SignalGroup

from napari_annotatability.core.curation import Curation

_CURATIONS: dict[tuple[int, str], Curation] = {}


def curation_for(adata: AnnData, label_key: str) -> Curation:
    """The curation of ``obs[label_key]`` of ``adata`` (created on first use)."""
    key = (id(adata), label_key)
    curation = _CURATIONS.get(key)
    if curation is None or curation.adata is not adata:
        curation = Curation(adata, label_key)
        _CURATIONS[key] = curation
        weakref.finalize(adata, _CURATIONS.pop, key, None)
    return curation


class CurationEvents(SignalGroup):
    """``edited(curation, edit, verb)``: a widget made (``"done"``), undid or redid an edit."""

    edited = Signal(object, object, str)


#: Emitted after every edit, so every widget showing the curation refreshes.
events = CurationEvents()

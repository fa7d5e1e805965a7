"""One audit per AnnData and annotation, shared by every widget through the layers.

An :class:`AuditModel` holds the AnnData, the annotation under audit, its curation
(created on first use) and psygnal events. It lives in the ``metadata["audit"]`` of the
layers that show that annotation, and nowhere else: when the layers go, so does the
model and the AnnData it holds. Widgets get it from the layer they act on
(:func:`audit_of`), so the curation widget and the review queue share one undo history.

What a layer's ``metadata`` carries is defined once, in :class:`CellsMetadata`.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
from anndata import AnnData
from napari.layers import Layer
from napari.viewer import Viewer
from psygnal import Signal, SignalGroup

from napari_annotatability._napari.selection import SelectionRelay
from napari_annotatability.core import keys
from napari_annotatability.core.curation import Curation, Edit
from napari_annotatability.core.spatialdata_read import SpatialDataSource


class CellsMetadata(TypedDict, total=False):
    """What a layer made from an AnnData carries in its ``metadata``.

    Attributes
    ----------
    adata
        The AnnData (the single source of truth; layers never copy its values).
    label_key
        The annotation the layer shows (after a retrain: the curated column).
    curating
        The annotation being curated when ``label_key`` is its curated column.
    cells
        obs positions of the layer's rows (``None``: all cells in obs order).
    role
        What a result layer shows (``"flags"``, ``"confidence"``, ...); absent on a
        cells layer.
    library_id
        The library (sample) of these cells, when there are several.
    coordinates
        Where the coordinates came from.
    source_path
        The file the data were read from (saving over it asks first).
    audit
        The :class:`AuditModel` of the annotation (set by :func:`audit_of`).
    spatialdata
        The SpatialData table the cells are rows of
        (:class:`~napari_annotatability.core.spatialdata_read.SpatialDataSource`), where
        the curation widget writes them back.
    """

    adata: AnnData
    label_key: str | None
    curating: str
    cells: np.ndarray | None
    role: str
    library_id: str | None
    coordinates: str
    source_path: str
    audit: AuditModel
    spatialdata: SpatialDataSource


class AuditEvents(SignalGroup):
    """What an audit model announces.

    ``edited(edit, verb)``: an edit was made (``"done"``), undone or redone.
    ``results_changed(label_key)``: an audit was written (of the annotation, or of its
    curated column after a retrain) and the layers show it.
    ``selection(positions, layer)``: cells were selected on a layer of the data (obs
    positions), once :meth:`AuditModel.follow_selection` follows a viewer.
    """

    edited = Signal(object, str)
    results_changed = Signal(str)
    selection = Signal(object, object)


class AuditModel:
    """An AnnData, the annotation under audit, its curation and events.

    Parameters
    ----------
    adata
        The data.
    label_key
        The annotation audited and curated (the original column, never its curated copy).
    """

    def __init__(self, adata: AnnData, label_key: str) -> None:
        self.adata = adata
        self.label_key = label_key
        self.events = AuditEvents()
        self._curation: Curation | None = None
        self._relay: SelectionRelay | None = None

    def __repr__(self) -> str:
        return f"AuditModel({self.label_key!r}, {self.adata.n_obs} cells)"

    @property
    def curation(self) -> Curation:
        """The curation of the annotation, created on first use.

        Raises :class:`~napari_annotatability.core.errors.AnnotatabilityInputError` for
        an annotation that cannot be curated (e.g. duplicate cell ids).
        """
        if self._curation is None:
            self._curation = Curation(self.adata, self.label_key)
        return self._curation

    def follow_selection(self, viewer: Viewer) -> None:
        """Emit ``selection`` when cells are selected on any layer of the data in ``viewer``."""
        if self._relay is None or self._relay.viewer is not viewer:
            if self._relay is not None:
                self._relay.close()
            self._relay = SelectionRelay(viewer, self.adata, self.events.selection.emit)

    def announce(self, edit: Edit, verb: str = "done") -> None:
        """Tell every listener that ``edit`` was made, undone or redone."""
        self.events.edited.emit(edit, verb)


def audited_key(layer: Layer) -> str | None:
    """The annotation a layer's audit is about (the original one after a retrain)."""
    meta = layer.metadata
    return meta.get("curating", meta.get("label_key"))


def shown_audit_key(layer: Layer) -> str:
    """The annotation whose stored audit a layer shows.

    The audited annotation (:func:`audited_key`) when its audit is stored, else the
    layer's own ``label_key`` (a retrain's curated column).
    """
    key = audited_key(layer)
    if keys.audit_info(layer.metadata["adata"], key) is None:
        key = layer.metadata["label_key"]
    return key


def audit_of(layer: Layer, viewer: Viewer | None = None) -> AuditModel | None:
    """The audit model of the annotation ``layer`` shows (``None`` if it shows none).

    Taken from the layer's metadata, else from another layer of the same AnnData and
    annotation in ``viewer``, else made; then kept in the layer's metadata.
    """
    meta = layer.metadata
    adata, key = meta.get("adata"), audited_key(layer)
    if not isinstance(adata, AnnData) or key is None:
        return None
    model = meta.get("audit")
    if not _same(model, adata, key):
        others = [] if viewer is None else (other.metadata.get("audit") for other in viewer.layers)
        model = next((m for m in others if _same(m, adata, key)), None)
        if model is None:
            model = AuditModel(adata, key)
        meta["audit"] = model
    return model


def _same(model: object, adata: AnnData, key: str) -> bool:
    return isinstance(model, AuditModel) and model.adata is adata and model.label_key == key

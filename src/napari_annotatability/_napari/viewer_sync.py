"""Keep a viewer's layers in step with the AnnData they show (main thread only).

A *cells layer* is a Points layer whose ``metadata`` holds ``"adata"`` and
``"label_key"`` (what the reader and the sample data make). Result layers carry the
same AnnData plus a ``"role"``; re-running replaces them in place instead of piling
up new ones, keeping what the person set (visibility, opacity, position).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from anndata import AnnData
from napari.layers import Layer, Points
from napari.viewer import Viewer

from napari_annotatability._napari.audit_model import AuditModel, audit_of
from napari_annotatability._napari.layers import cell_features, label_colors
from napari_annotatability._napari.results_layers import (
    ROLES,
    CellsView,
    confidence_colormap,
    results_layers,
)
from napari_annotatability._napari.selection import layer_positions, layers_of, rows_of
from napari_annotatability._napari.spatialdata_bridge import mirror_results
from napari_annotatability.core.curation import Edit
from napari_annotatability.core.results import AnnotatabilityResult

logger = logging.getLogger(__name__)

#: Role of the layer that shows the confidence while a network trains.
RUNNING = "running confidence"
#: Feature of that layer holding the confidence so far.
RUNNING_CONF = "conf"
#: Roles shown when a result layer is first created; the others start hidden.
VISIBLE_ROLES = ("flags",)


def is_cells_layer(layer: Layer) -> bool:
    """Whether ``layer`` is a cells layer (an AnnData's cells, not a result layer)."""
    meta = layer.metadata
    return (
        isinstance(layer, Points)
        and isinstance(meta.get("adata"), AnnData)
        and "role" not in meta
        and "sdata" not in meta  # napari-spatialdata's own layers
    )


def cells_layers(viewer: Viewer) -> list[Points]:
    """The viewer's cells layers, top first."""
    return [layer for layer in reversed(viewer.layers) if is_cells_layer(layer)]


def sections_of(viewer: Viewer, layer: Points) -> list[Points]:
    """Every cells layer of ``layer``'s data (its sections), in the viewer's order."""
    adata = layer.metadata["adata"]
    return [other for other in cells_layers(viewer) if other.metadata["adata"] is adata]


def cells_view(layer: Points) -> CellsView:
    """What a cells layer shows, for the result-layer builders."""
    meta = layer.metadata
    size = np.asarray(layer.size)
    return CellsView(
        adata=meta["adata"],
        label_key=meta["label_key"],
        coords=np.asarray(layer.data),
        cells=meta.get("cells"),
        size=float(np.median(size)) if size.size else 1.0,
        prefix=meta.get("library_id") or "",
    )


def result_layer(viewer: Viewer, source: Points, role: str) -> Layer | None:
    """The result layer of ``role`` made from the cells layer ``source``, if any."""
    meta = source.metadata
    for layer in viewer.layers:
        other = layer.metadata
        if (
            other.get("role") == role
            and other.get("adata") is meta["adata"]
            and other.get("label_key") == meta["label_key"]
            and other.get("library_id") == meta.get("library_id")
        ):
            return layer
    return None


def _replace(viewer: Viewer, layer: Layer, data: tuple) -> Layer:
    """Put ``data`` in place of ``layer``, keeping its position, visibility and opacity.

    A Points layer with as many points is updated in place; any other is swapped.
    """
    coords, kwargs, kind = data
    if not (kind == "points" and isinstance(layer, Points) and len(coords) == len(layer.data)):
        index = viewer.layers.index(layer)
        fresh = Layer.create(*data)
        fresh.visible, fresh.opacity = layer.visible, layer.opacity
        viewer.layers.remove(layer)
        viewer.layers.insert(index, fresh)
        return fresh
    layer.name = kwargs["name"]
    layer.features = kwargs["features"]
    layer.metadata = kwargs["metadata"]
    for key in ("face_colormap", "face_contrast_limits", "face_color_cycle"):
        if key in kwargs:
            setattr(layer, key, kwargs[key])
    layer.face_color = kwargs["face_color"]
    layer.refresh_colors(update_color_mapping=True)
    return layer


def _add_above(viewer: Viewer, below: Layer, data: tuple, visible: bool) -> Layer:
    layer = Layer.create(*data)
    layer.visible = visible
    viewer.layers.insert(viewer.layers.index(below) + 1, layer)
    return layer


def show_layer(viewer: Viewer, source: Points, data: tuple, *, visible: bool = True) -> Layer:
    """Add the layer ``data`` (with a ``metadata["role"]``) on top of the others.

    What a person asked for (a gene, the graph's edges) goes on top. A layer of the
    same role made from the same cells layer is replaced, in place when it is a Points
    layer, so re-running never piles up layers.
    """
    existing = result_layer(viewer, source, data[1]["metadata"]["role"])
    if existing is not None:
        return _replace(viewer, existing, data)
    layer = Layer.create(*data)
    layer.visible = visible
    viewer.layers.append(layer)
    return layer


def show_results(viewer: Viewer, source: Points) -> dict[str, Points]:
    """Create or refresh the result layers of the cells layer ``source``.

    New result layers start hidden except the flags, which hide ``source`` when they
    cover all its cells (one visible layer of points keeps large data responsive).
    Also refreshes ``source.features`` so hovering a cell shows its scores. Returns
    the result layers by role.
    """
    view = cells_view(source)
    source.features = cell_features(view.adata, view.positions)
    built = results_layers(view, label_colors(view.adata, view.label_key))
    shown = {}
    below: Layer = source
    for role in ROLES:
        existing = result_layer(viewer, source, role)
        if role not in built:
            if existing is not None:
                viewer.layers.remove(existing)
            continue
        if existing is None:
            existing = _add_above(viewer, below, built[role], role in VISIBLE_ROLES)
            if role == "flags" and len(existing.data) == len(source.data):
                # the flags cover every cell: drawing the labels under them is wasted
                source.visible = False
        else:
            existing = _replace(viewer, existing, built[role])
        shown[role] = below = existing
    if shown:
        viewer.layers.selection.active = shown.get("flags", source)
    return shown


def write_results(
    viewer: Viewer,
    adata: AnnData,
    result: AnnotatabilityResult,
    *,
    curating: str | None = None,
    store_record: bool = False,
) -> None:
    """Write an audit into ``adata`` and show it on every cells layer of ``adata``.

    The layers show the audited annotation from then on; ``curating`` names the
    annotation being curated when the audit is of its curated column (a retrain), so the
    curation stays with the original annotation. Then the audit models of those layers
    emit ``results_changed``. ``store_record`` keeps the cells x epochs record in ``obsm``.
    """
    result.write(adata, store_record=store_record)
    models = {}
    for layer in cells_layers(viewer):
        if layer.metadata["adata"] is not adata:
            continue
        layer.metadata["label_key"] = result.label_key
        if curating is None:
            layer.metadata.pop("curating", None)
        else:
            layer.metadata["curating"] = curating
        show_results(viewer, layer)
        model = audit_of(layer, viewer)
        models[id(model)] = model
    mirror_results(viewer, adata)
    for model in models.values():
        model.events.results_changed.emit(result.label_key)


def announce_edit(viewer: Viewer, model: AuditModel, edit: Edit, verb: str = "done") -> None:
    """Show an edit in what hovering any layer of the data says, then tell the widgets.

    Every Points layer of the AnnData gets the curated labels in its features (all of
    them the first time, then only the edited cells'); the curated layer's colours are
    the curation widget's.
    """
    curation = model.curation
    for layer in layers_of(viewer, model.adata):
        features = layer.features
        positions = layer_positions(layer)
        if curation.curated not in features.columns:
            rows = np.arange(len(positions))
        else:
            rows = rows_of(layer, edit.positions)
            if isinstance(features[curation.curated].dtype, pd.CategoricalDtype):
                features[curation.curated] = features[curation.curated].astype(object)
        if rows.size:
            labels = curation.labels(positions[rows])
            features.loc[rows, curation.curated] = [
                "nan" if label is None else str(label) for label in labels
            ]
    mirror_results(viewer, model.adata)
    model.announce(edit, verb)


def show_running_confidence(viewer: Viewer, source: Points, conf: np.ndarray) -> Points:
    """Show (or update) the confidence of a network still training.

    ``conf`` holds one value per obs row of the AnnData; cells without one are NaN.
    """
    view = cells_view(source)
    values = np.asarray(conf, dtype=float)[view.positions]
    layer = result_layer(viewer, source, RUNNING)
    if layer is None:
        features = {"cell_id": view.adata.obs_names[view.positions], RUNNING_CONF: values}
        metadata = {**source.metadata, "role": RUNNING}
        layer = Points(
            view.coords,
            name=f"{view.prefix} {view.label_key} {RUNNING}".strip(),
            features=features,
            face_color=RUNNING_CONF,
            face_colormap=confidence_colormap(),
            face_contrast_limits=(0.0, 1.0),
            size=view.size,
            border_width=0,
            metadata=metadata,
        )
        viewer.layers.insert(viewer.layers.index(source) + 1, layer)
        return layer
    features = layer.features.copy()
    features[RUNNING_CONF] = values
    layer.features = features
    layer.refresh_colors(update_color_mapping=False)
    return layer


def remove_running_confidence(viewer: Viewer, source: Points) -> None:
    """Remove the training-time confidence layer of ``source`` if there is one."""
    layer = result_layer(viewer, source, RUNNING)
    if layer is not None:
        viewer.layers.remove(layer)

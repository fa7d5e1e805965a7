"""Layer data tuples of the audit results: flags, mislabel score, suggestions, confidence.

Every builder starts from a *cells layer* (the Points layer a reader or sample made
of an AnnData: its coordinates, its ``metadata["cells"]`` obs positions and its point
size) and reads the results from ``adata.obs``, where
:meth:`~napari_annotatability.api.AnnotatabilityResult.write` put them. Nothing here
touches a viewer; :mod:`napari_annotatability._napari.viewer_sync` places the
layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from napari.utils.colormaps import Colormap, ensure_colormap

from napari_annotatability._napari.layers import cell_features
from napari_annotatability.core import keys
from napari_annotatability.core.scores import FLAG_COLORS

#: ``metadata`` key naming the feature that colours set per point encode (the legend's).
LEGEND_FEATURE = "legend"

#: Result roles in the order their layers are stacked (last on top).
ROLES = ("variability", "confidence", "dynamics flags", "mislabel score", "suggested", "flags")


def confidence_colormap() -> Colormap:
    """Inferno reversed: confident cells dark, unconfident ones bright."""
    inferno = ensure_colormap("inferno")
    return Colormap(colors=inferno.colors[::-1], name="inferno reversed")


@dataclass(frozen=True)
class CellsView:
    """Where a cells layer puts its cells: what the result layers reuse.

    Attributes
    ----------
    adata
        The AnnData (the single source of truth).
    label_key
        The annotation column.
    coords
        ``(n, 2)`` napari coordinates of the layer's rows.
    cells
        obs positions of the layer's rows (``None``: all cells in obs order).
    size
        Point size.
    prefix
        Prepended to layer names (a library id when there are several).
    """

    adata: AnnData
    label_key: str
    coords: np.ndarray
    cells: np.ndarray | None
    size: float
    prefix: str = ""

    @property
    def positions(self) -> np.ndarray:
        """obs positions of the layer's rows, always as an array."""
        if self.cells is None:
            return np.arange(self.adata.n_obs)
        return np.asarray(self.cells)


def _subset(view: CellsView, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(keep)
    return view.coords[rows], view.positions[rows]


def _points(view: CellsView, role: str, keep: np.ndarray, colour: dict) -> tuple:
    coords, positions = _subset(view, keep)
    metadata = {
        "adata": view.adata,
        "label_key": view.label_key,
        "cells": positions,
        "role": role,
        "library_id": view.prefix or None,
    }
    kwargs = {
        "name": f"{view.prefix} {view.label_key} {role}".strip(),
        "features": cell_features(view.adata, positions),
        "size": view.size,
        "border_width": 0,
        "metadata": metadata,
        **colour,
    }
    return coords, kwargs, "points"


def _scored(view: CellsView) -> np.ndarray:
    conf = view.adata.obs[keys.conf_key(view.label_key)].to_numpy(dtype=float)[view.positions]
    return np.isfinite(conf)


def confidence_layer(view: CellsView) -> tuple:
    """Scored cells coloured by confidence, unconfident ones bright."""
    colour = {
        "face_color": keys.conf_key(view.label_key),
        "face_colormap": confidence_colormap(),
        "face_contrast_limits": (0.0, 1.0),
    }
    return _points(view, "confidence", _scored(view), colour)


def variability_layer(view: CellsView) -> tuple:
    """Scored cells coloured by variability, variable ones bright (limits 0-99th pct)."""
    keep = _scored(view)
    var = view.adata.obs[keys.var_key(view.label_key)].to_numpy(dtype=float)
    values = var[view.positions][keep]
    top = float(np.percentile(values, 99)) if values.size else 0.5
    colour = {
        "face_color": keys.var_key(view.label_key),
        "face_colormap": "magma",
        "face_contrast_limits": (0.0, max(top, 1e-6)),
    }
    return _points(view, "variability", keep, colour)


def flags_layer(view: CellsView) -> tuple:
    """Scored cells coloured by flag: Easy sky blue, Ambiguous muted grey, Hard orange."""
    colour = {"face_color": keys.flag_key(view.label_key), "face_color_cycle": dict(FLAG_COLORS)}
    return _points(view, "flags", _scored(view), colour)


def dynamics_flags_layer(view: CellsView) -> tuple | None:
    """The method's own flags (conf and var), coloured as the flags; ``None`` if absent."""
    key = keys.dynamics_flag_key(view.label_key)
    if key not in view.adata.obs.columns:
        return None
    colour = {"face_color": key, "face_color_cycle": dict(FLAG_COLORS)}
    return _points(view, "dynamics flags", _scored(view), colour)


def mislabel_layer(view: CellsView) -> tuple | None:
    """Cells coloured by their mislabel score, likely wrong ones bright (limits 0-99th pct).

    ``None`` when the audit has no label evidence (``flags="dynamics"``).
    """
    key = keys.mislabel_key(view.label_key)
    if key not in view.adata.obs.columns:
        return None
    values = view.adata.obs[key].to_numpy(dtype=float)[view.positions]
    keep = np.isfinite(values)
    top = float(np.percentile(values[keep], 99)) if keep.any() else 1.0
    colour = {
        "face_color": key,
        "face_colormap": "plasma",
        "face_contrast_limits": (0.0, max(top, 1e-6)),
    }
    return _points(view, "mislabel score", keep, colour)


def suggestions_layer(view: CellsView, class_colors: dict[str, str]) -> tuple | None:
    """Cells whose suggested label differs from their label, coloured by the suggestion.

    ``None`` when the run made no suggestions (or none differs).
    """
    key = keys.suggestion_key(view.label_key)
    obs = view.adata.obs
    if key not in obs.columns:
        return None
    suggested = obs[key].astype(object).to_numpy()[view.positions]
    labels = obs[view.label_key].astype(object).to_numpy()[view.positions]
    keep = pd.notna(suggested) & (suggested.astype(str) != labels.astype(str))
    if not keep.any():
        return None
    colour = {"face_color": key, "face_color_cycle": dict(class_colors)}
    return _points(view, "suggested", keep, colour)


def results_layers(view: CellsView, class_colors: dict[str, str]) -> dict[str, tuple]:
    """Every result layer of ``view`` that has something to show, by role."""
    if keys.conf_key(view.label_key) not in view.adata.obs.columns:
        return {}
    built = {
        "variability": variability_layer(view),
        "confidence": confidence_layer(view),
        "dynamics flags": dynamics_flags_layer(view),
        "mislabel score": mislabel_layer(view),
        "suggested": suggestions_layer(view, class_colors),
        "flags": flags_layer(view),
    }
    return {role: layer for role, layer in built.items() if layer is not None}


def gene_values(adata: AnnData, gene: str, layer: str | None = None) -> np.ndarray:
    """One gene's values for every cell (only that column is made dense)."""
    from napari_annotatability.core.errors import AnnotatabilityInputError

    if gene not in adata.var_names:
        raise AnnotatabilityInputError(f"Gene {gene!r} not found in adata.var_names.")
    matrix = adata.X if layer is None else adata.layers[layer]
    column = matrix[:, adata.var_names.get_loc(gene)]
    if hasattr(column, "toarray"):
        column = column.toarray()
    return np.asarray(column, dtype=float).ravel()


def expression_layer(view: CellsView, gene: str, values: np.ndarray) -> tuple:
    """The cells coloured by one gene's expression (limits 0 to the 99th percentile)."""
    shown = values[view.positions]
    top = float(np.percentile(shown, 99)) if shown.size else 1.0
    colour = {
        "face_color": "expression",
        "face_colormap": "viridis",
        "face_contrast_limits": (float(min(shown.min(initial=0), 0)), max(top, 1e-6)),
    }
    data = _points(view, "expression", np.ones(len(view.positions), dtype=bool), colour)
    coords, kwargs, kind = data
    kwargs["features"]["expression"] = shown
    kwargs["metadata"]["gene"] = gene
    kwargs["name"] = f"{view.prefix} {gene} expression".strip()
    return coords, kwargs, kind


def graph_edges_layer(
    view: CellsView, connectivities, key: str, around: np.ndarray | None = None
) -> tuple | None:
    """A Vectors layer of a graph's edges between the cells of ``view``, by weight.

    Each undirected edge is drawn once; with ``around`` (obs positions) only the edges
    touching those cells. ``None`` when no such edge joins two shown cells.
    """
    import scipy.sparse as sp

    upper = sp.triu(sp.csr_matrix(connectivities), k=1).tocoo()
    row_of = np.full(view.adata.n_obs, -1, dtype=np.int64)
    row_of[view.positions] = np.arange(len(view.positions))
    start, end = row_of[upper.row], row_of[upper.col]
    keep = (start >= 0) & (end >= 0)
    if around is not None:
        keep &= np.isin(upper.row, around) | np.isin(upper.col, around)
    if not keep.any():
        return None
    start, end, weight = start[keep], end[keep], upper.data[keep]
    vectors = np.stack([view.coords[start], view.coords[end] - view.coords[start]], axis=1)
    kwargs = {
        "name": f"{view.prefix} {key} graph".strip(),
        "features": {"weight": weight},
        "edge_color": "weight",
        "edge_colormap": "gray",
        "edge_width": max(view.size * 0.08, 1e-3),
        "vector_style": "line",
        "opacity": 0.7,
        "metadata": {
            "adata": view.adata,
            "label_key": view.label_key,
            "role": "graph",
            "graph": key,
            "library_id": view.prefix or None,
        },
    }
    return vectors, kwargs, "vectors"


def curated_colors(
    adata: AnnData, curated_key: str, class_colors: dict[str, str]
) -> dict[str, np.ndarray]:
    """RGBA colour of each curated class (and ``"nan"``).

    The original classes keep their usual colours; classes added while curating take
    the next colours of scanpy's palette, in the order they were added.
    """
    from napari.utils.colormaps.standardize_color import transform_color
    from scanpy.plotting.palettes import default_102

    colours = dict(class_colors)
    spare = [c for c in default_102 if c not in set(colours.values())]
    for label in adata.obs[curated_key].cat.categories:
        if str(label) not in colours:
            colours[str(label)] = spare.pop(0) if spare else "#ffffff"
    return {label: transform_color(colour)[0] for label, colour in colours.items()}


def colours_of(labels: np.ndarray, colours: dict[str, np.ndarray]) -> np.ndarray:
    """``(n, 4)`` RGBA of text labels (missing labels take the colour of ``"nan"``)."""
    text = pd.Series(labels, dtype=object).fillna("nan").astype(str)
    names = list(colours)
    codes = pd.Categorical(text, categories=names).codes
    table = np.vstack([colours[name] for name in names])
    return table[np.where(codes < 0, names.index("nan") if "nan" in names else 0, codes)]


def curated_layer(view: CellsView, curated_key: str, class_colors: dict[str, str]) -> tuple:
    """Every cell coloured by its curated label (classes added while curating included).

    Colours are set per point (see :func:`curated_colors`) so an edit recolours only
    the points it changed.
    """
    colours = curated_colors(view.adata, curated_key, class_colors)
    labels = view.adata.obs[curated_key].astype(object).to_numpy()[view.positions]
    colour = {"face_color": colours_of(labels, colours)}
    data = _points(view, "curated", np.ones(len(view.positions), dtype=bool), colour)
    coords, kwargs, kind = data
    features = kwargs["features"]
    features[curated_key] = features[curated_key].astype(object).fillna("nan").astype(str)
    kwargs["metadata"][LEGEND_FEATURE] = curated_key
    return coords, kwargs, kind

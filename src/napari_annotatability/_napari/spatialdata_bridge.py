"""napari-spatialdata's layers in this plugin's widgets, and the results back in its table.

napari-spatialdata keeps in a layer's ``metadata``: ``"sdata"`` (the SpatialData object),
``"name"`` (the element), ``"table_names"`` (the tables annotating it), ``"region_key"``,
``"instance_key"``, ``"indices"`` (the instance of each row of the layer),
``"_current_cs"`` (its coordinate system) and ``"adata"`` (a joined copy of the table
whose rows follow the layer; ``sdata.tables[name]`` is the source of truth).

Choosing such a layer in a widget makes (once) a cells layer of the table's rows of that
element, placed in the layer's coordinate system, with the link to the table
(``metadata["spatialdata"]``, whose ``sdata`` is the object in memory). Audits and edits
are then mirrored into ``sdata.tables[name]`` and into the layer's joined copy, matched by
``region_key`` / ``instance_key``, so napari-spatialdata's widgets show them too. Nothing
here binds keys (napari-spatialdata uses Shift-E, Shift-L and Ctrl-L).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from anndata import AnnData
from napari.layers import Layer, Points
from napari.utils.notifications import show_info
from napari.viewer import Viewer

from napari_annotatability._napari.layers import cells_layer
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.spatialdata_read import spatial_cells
from napari_annotatability.core.spatialdata_write import mirror_into_table

logger = logging.getLogger(__name__)

#: metadata key of a cells layer made from a napari-spatialdata layer: that layer's name.
FROM_LAYER = "spatialdata_layer"


def is_spatialdata_layer(layer: Layer) -> bool:
    """Whether ``layer`` is napari-spatialdata's, of an element a table annotates."""
    meta = layer.metadata
    return (
        meta.get("sdata") is not None
        and bool(meta.get("table_names"))
        and isinstance(meta.get("name"), str)
    )


def linked_cells_layer(viewer: Viewer, layer: Layer) -> Points:
    """The cells layer of a napari-spatialdata layer's table rows (made on first use).

    Placed above ``layer`` in its coordinate system, coloured by the table's annotation
    (guessed as for files), linked to ``sdata.tables[name]``.

    Raises
    ------
    AnnotatabilityInputError
        When the table does not match the element (see
        :func:`~napari_annotatability.core.spatialdata_read.spatial_cells`).
    """
    from napari_annotatability._napari.reader import guess_label_key

    meta = layer.metadata
    sdata, region = meta["sdata"], meta["name"]
    for other in viewer.layers:
        link = other.metadata.get("spatialdata")
        if (
            link is not None
            and link.sdata is sdata
            and other.metadata.get(FROM_LAYER) == layer.name
        ):
            return other
    tables = list(meta["table_names"])
    table = tables[0]
    if len(tables) > 1:
        show_info(f"{region!r} is annotated by tables {tables}; auditing {table!r}.")
    cells = spatial_cells(
        sdata, table=table, coordinate_system=meta.get("_current_cs"), regions=[region]
    )
    cells.source.sdata = sdata
    label_key = guess_label_key(
        cells.adata, exclude=(cells.source.region_key, cells.source.instance_key)
    )
    data, kwargs, _kind = cells_layer(
        cells.adata, label_key, name=f"{region} cells", size=cells.sizes.get(region)
    )
    kwargs["metadata"].update({"spatialdata": cells.source, FROM_LAYER: layer.name})
    if sdata.path is not None:
        kwargs["metadata"]["source_path"] = str(sdata.path)
    added = viewer.add_points(data, **kwargs)
    logger.info("Cells of %r from table %r: layer %r.", region, table, added.name)
    return added


def mirror_results(viewer: Viewer, adata: AnnData) -> None:
    """Put the audit and curation of ``adata`` into napari-spatialdata's table and layers.

    For cells made from a napari-spatialdata layer: ``sdata.tables[name]`` gets the new obs
    columns and uns entries (in memory), and the joined copy in that layer's metadata gets
    the same columns for its rows, matched by instance id.
    """
    for layer in viewer.layers:
        link = layer.metadata.get("spatialdata")
        if layer.metadata.get("adata") is not adata or link is None or link.sdata is None:
            continue
        columns = mirror_into_table(adata, link)
        plugin_layer = _layer_named(viewer, layer.metadata.get(FROM_LAYER))
        joined = None if plugin_layer is None else plugin_layer.metadata.get("adata")
        if isinstance(joined, AnnData) and link.instance_key in joined.obs:
            ours = pd.Index(adata.obs[link.instance_key].to_numpy())
            rows = ours.get_indexer(pd.Index(joined.obs[link.instance_key].to_numpy()))
            found = rows >= 0
            for column in columns:
                values = adata.obs[column]
                if isinstance(values.dtype, pd.CategoricalDtype):
                    codes = np.where(found, values.cat.codes.to_numpy()[rows], -1)
                    joined.obs[column] = pd.Categorical.from_codes(codes, dtype=values.dtype)
                else:
                    taken = values.to_numpy()[np.where(found, rows, 0)]
                    joined.obs[column] = np.where(found, taken, None) if not found.all() else taken
        break


def _layer_named(viewer: Viewer, name: str | None) -> Layer | None:
    if name is None:
        return None
    try:
        return viewer.layers[name]
    except KeyError:
        return None


def cells_for(viewer: Viewer, layer: Layer) -> Points | None:
    """Our cells layer for a chosen layer: itself, or the one of a napari-spatialdata layer.

    The latter is made on first use; ``None`` (with an error shown) when the table does not
    fit the element.
    """
    if not is_spatialdata_layer(layer):
        return layer
    try:
        return linked_cells_layer(viewer, layer)
    except AnnotatabilityInputError as error:
        from napari.utils.notifications import show_error

        show_error(str(error))
        return None

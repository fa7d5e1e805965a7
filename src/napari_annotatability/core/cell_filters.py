"""Which cells match a curator's filters, and how the flags changed between two audits."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.core import keys
from napari_annotatability.core.scores import FLAG_CATEGORIES

#: The filter value that matches every cell.
ANY = "any"


def flag_changes(adata: AnnData, before_key: str, after_key: str) -> pd.DataFrame:
    """From -> to table of flags between two runs (rows: before, columns: after)."""
    before = adata.obs[before_key].astype(object).fillna("not scored")
    after = adata.obs[after_key].astype(object).fillna("not scored")
    order = [*FLAG_CATEGORIES, "not scored"]
    table = pd.crosstab(before, after).reindex(index=order, columns=order, fill_value=0)
    return table.loc[(table.sum(axis=1) > 0), (table.sum(axis=0) > 0)]


def filter_cells(
    adata: AnnData,
    label_key: str,
    *,
    flag: str = ANY,
    label: str = ANY,
    suggested: str = ANY,
    conf_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """obs positions of the cells matching every filter (``"any"`` matches all)."""
    obs = adata.obs
    keep = np.ones(adata.n_obs, dtype=bool)
    if flag != ANY:
        column = keys.flag_key(label_key)
        keep &= (obs[column].astype(object) == flag).to_numpy() if column in obs else False
    if label != ANY:
        keep &= (obs[label_key].astype(str) == label).to_numpy()
    if suggested != ANY:
        column = keys.suggestion_key(label_key)
        values = obs[column].astype(object) if column in obs else pd.Series(None, index=obs.index)
        keep &= values.notna() if suggested == "has a suggestion" else values == suggested
    conf_key = keys.conf_key(label_key)
    if conf_key in obs and tuple(conf_range) != (0.0, 1.0):
        conf = obs[conf_key].to_numpy(dtype=float)
        keep &= (conf >= conf_range[0]) & (conf <= conf_range[1])
    return np.flatnonzero(keep)

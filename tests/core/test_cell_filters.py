"""The curator's filters and the flag changes between two audits, without napari."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from napari_annotatability.core.cell_filters import filter_cells, flag_changes
from napari_annotatability.core.scores import AMBIGUOUS, EASY, HARD


def _audited() -> AnnData:
    obs = pd.DataFrame(
        {
            "cell_type": ["a", "a", "b", "b", "c"],
            "cell_type_conf": [0.1, 0.9, 0.2, 0.5, np.nan],
            "cell_type_flag": [HARD, EASY, HARD, AMBIGUOUS, None],
            "cell_type_suggested": ["b", None, "a", None, None],
            "cell_type_curated_flag": [EASY, EASY, HARD, EASY, EASY],
            # an audit of another annotation must never be read for this one
            "other_conf": [0.0, 0.0, 0.0, 0.0, 0.0],
        },
        index=[f"c{i}" for i in range(5)],
    )
    return AnnData(obs=obs)


def test_every_filter_reads_the_audit_of_its_annotation():
    adata = _audited()
    np.testing.assert_array_equal(filter_cells(adata, "cell_type", flag=HARD), [0, 2])
    np.testing.assert_array_equal(filter_cells(adata, "cell_type", label="b"), [2, 3])
    chosen = filter_cells(adata, "cell_type", suggested="has a suggestion")
    np.testing.assert_array_equal(chosen, [0, 2])
    np.testing.assert_array_equal(filter_cells(adata, "cell_type", suggested="a"), [2])
    chosen = filter_cells(adata, "cell_type", conf_range=(0.15, 0.6))
    np.testing.assert_array_equal(chosen, [2, 3])  # NaN (not scored) never matches
    chosen = filter_cells(adata, "cell_type", flag=HARD, conf_range=(0.0, 0.15))
    np.testing.assert_array_equal(chosen, [0])
    assert filter_cells(adata, "unaudited", flag=HARD).size == 0


def test_flag_changes_count_every_cell_once():
    table = flag_changes(_audited(), "cell_type_flag", "cell_type_curated_flag")
    assert table.to_numpy().sum() == 5
    assert table.loc[HARD, EASY] == 1 and table.loc[HARD, HARD] == 1
    assert table.loc["not scored", EASY] == 1

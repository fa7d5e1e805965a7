"""The command line on SpatialData stores: read the table's cells, write back into the table."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

spatialdata = pytest.importorskip("spatialdata")

from napari_annotatability.cli import main  # noqa: E402

FAST = ["--epochs", "3", "--suggest-epochs", "3", "--device", "cpu", "-q"]


def _image(store):
    return np.asarray(
        spatialdata.read_zarr(store).images["cell_boundaries_image"]["scale0"]["image"]
    )


def test_score_apply_and_export_on_a_store(dlpfc_store, tmp_path, capsys):
    image = _image(dlpfc_store)
    store = str(dlpfc_store)
    # the store as output replaces its table only, and only when asked
    assert main(["score", store, "--label", "layer", "-o", store, *FAST]) == 2
    assert "--overwrite replaces its table only" in capsys.readouterr().err
    assert main(["score", store, "--label", "layer", "-o", store, "--overwrite", *FAST]) == 0
    table = spatialdata.read_zarr(dlpfc_store).tables["table"]
    assert {"layer_conf", "layer_flag", "layer_suggested"} <= set(table.obs.columns)
    np.testing.assert_array_equal(_image(dlpfc_store), image)
    # a separate AnnData file keeps the positions the cells were placed at
    out = tmp_path / "cells.h5ad"
    assert main(["score", store, "--label", "layer", "-o", str(out), *FAST]) == 0
    assert ad.read_h5ad(out).obsm["spatial"].shape == (3636, 2)
    capsys.readouterr()

    edits = tmp_path / "edits.csv"
    cell_ids = table.obs_names[:3]
    pd.DataFrame({"cell_id": cell_ids, "curated": "WM"}).to_csv(edits, index=False)
    command = ["apply-edits", store, str(edits), "--label", "layer", "-o", store, "--overwrite"]
    assert main(command) == 0
    curated = spatialdata.read_zarr(dlpfc_store).tables["table"].obs["layer_curated"]
    assert list(curated[:3]) == ["WM"] * 3
    exported = tmp_path / "curation.csv"
    assert main(["export-curation", store, "--label", "layer", "-o", str(exported)]) == 0
    rows = pd.read_csv(exported)
    assert len(rows) == 3636 and list(rows["curated"][:3]) == ["WM"] * 3


def test_store_choices_and_bad_labels_are_clear_errors(dlpfc_store, capsys):
    sdata = spatialdata.read_zarr(dlpfc_store)
    sdata.tables["copy"] = sdata.tables["table"].copy()
    sdata.write_element("copy")
    store = str(dlpfc_store)
    out = str(dlpfc_store.with_name("out.h5ad"))
    assert main(["score", store, "--label", "layer", "-o", out, *FAST]) == 2
    assert "2 tables ('copy', 'table'); choose one" in capsys.readouterr().err
    assert main(["score", store, "--table", "nope", "--label", "layer", "-o", out, *FAST]) == 2
    assert "no table 'nope'" in capsys.readouterr().err
    assert main(["score", store, "--table", "copy", "--label", "kind", "-o", out, *FAST]) == 2
    assert "'kind'" in capsys.readouterr().err
    command = ["score", store, "--table", "copy", "--coordinate-system", "other", "-o", out]
    assert main([*command, "--label", "layer", *FAST]) == 2
    assert "no transformation to coordinate system 'other'" in capsys.readouterr().err

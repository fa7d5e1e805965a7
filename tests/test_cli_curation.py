"""The apply-edits and export-curation commands: replaying a curation headless."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import napari_annotatability as nat
from napari_annotatability.cli import main
from napari_annotatability.core.curation import EDITS_KEY
from napari_annotatability.datasets import synthetic_tissue

FIXTURE = "visium_mousebrain_squidpy_fixture"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A scored file (the 'server' copy) and a curated copy of it (the 'laptop')."""
    folder = tmp_path_factory.mktemp("server")
    adata = synthetic_tissue(n_cells=300, n_genes=40, n_classes=3, seed=4)
    nat.annotate(adata, "label", normalize=True, epochs=5, suggest_epochs=5, device="cpu")
    path = folder / "scored.h5ad"
    nat.save_curated(adata, path)
    laptop = adata.copy()
    curation = nat.curate(laptop, "label")
    curation.accept_suggestions()
    curation.relabel([0, 1, 2], "type_2")
    curation.relabel([3, 4], "new type")
    curation.keep([5])
    curation.relabel([6], "type_0")
    curation.undo()
    return path, laptop


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _same_curation(out, laptop, label="label") -> None:
    back = nat.read_anndata(out)
    for key in (f"{label}_curated", f"{label}_reviewed"):
        np.testing.assert_array_equal(
            back.obs[key].astype(str), laptop.obs[key].astype(str), err_msg=key
        )
    assert set(back.obs[f"{label}_curated"].cat.categories) == set(
        laptop.obs[f"{label}_curated"].cat.categories
    )
    pd.testing.assert_series_equal(back.obs[label], laptop.obs[label])  # never overwritten
    assert len(back.uns[EDITS_KEY]) > 0


@pytest.mark.parametrize(("table", "output"), [("edits.csv", "out.h5ad"), ("e.tsv", "o.zarr")])
def test_apply_edits_on_the_exported_table_reproduces_the_curated_column(
    server, tmp_path, capsys, table, output
):
    data, laptop = server
    edits = nat.export_curation(laptop, "label", tmp_path / table)
    out = tmp_path / output
    args = ["apply-edits", str(data), str(edits), "-o", str(out), "--allow-new-labels"]
    assert main([*args, "--label", "label"]) == 0
    _same_curation(out, laptop)
    changed = (laptop.obs["label_curated"].astype(str) != laptop.obs["label"].astype(str)).sum()
    line = capsys.readouterr().out
    assert line.count("\n") == 1
    assert f"{changed} cells changed label" in line and "new classes ['new type']" in line
    # the label defaults to uns['label_key']; a .zarr input works too; --overwrite replaces
    again = tmp_path / "again.h5ad"
    assert main(["apply-edits", str(out), str(edits), "-o", str(again), "-v"]) == 0
    assert "0 cells changed label" in capsys.readouterr().out
    _same_curation(again, laptop)
    assert main([*args]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_export_curation_command(server, tmp_path, capsys):
    data, laptop = server
    curated = tmp_path / "curated.zarr"
    nat.save_curated(laptop, curated)
    out = tmp_path / "table.tsv"
    assert main(["export-curation", str(curated), "-o", str(out)]) == 0
    line = capsys.readouterr().out
    reviewed = int(laptop.obs["label_reviewed"].sum())
    assert "Wrote 300 cells of obs['label']" in line and f"{reviewed} reviewed" in line
    table = nat.read_edits(out)
    expected = nat.read_edits(nat.export_curation(laptop, "label", tmp_path / "api.tsv"))
    pd.testing.assert_frame_equal(table, expected)
    assert main(["export-curation", str(curated), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export-curation", str(curated), "-o", str(tmp_path / "t.xlsx")]) == 2
    assert "*.csv" in capsys.readouterr().err
    # an uncurated file exports its annotation as the curated label
    plain = tmp_path / "plain.csv"
    assert main(["export-curation", str(data), "--label", "label", "-o", str(plain)]) == 0
    assert "(0 relabelled, 0 reviewed)" in capsys.readouterr().out
    table = nat.read_edits(plain)
    assert (table["curated"] == table["original"]).all()


def _write(path, text: str):
    path.write_text(text)
    return path


def test_bad_edits_exit_2_with_one_line_and_write_nothing(server, tmp_path, capsys):
    data, laptop = server
    names = list(laptop.obs_names[:3])
    good = "cell_id,curated\n" + "".join(f"{n},type_1\n" for n in names)
    cases = {
        "unknown cells": (
            _write(tmp_path / "cells.csv", good + "cell_x,type_1\ncell_y,type_0\n"),
            [],
            "2 cell ids of the edits are not in the data",
        ),
        "unknown label": (
            _write(tmp_path / "label.csv", good + f"{names[0]},tyep_1\n"),
            [],
            "Labels ['tyep_1'] are not classes",
        ),
        "decimal label column": (
            nat.export_curation(laptop, "label", tmp_path / "table.csv"),
            ["--label-column", "conf"],
            "holds decimal numbers",
        ),
        "float annotation": (tmp_path / "table.csv", ["--label", "label_conf"], "float64 values"),
        "bool annotation": (tmp_path / "table.csv", ["--label", "is_flipped"], "bool values"),
        "missing label column": (
            tmp_path / "table.csv",
            ["--label-column", "nope"],
            "Column 'nope' not in the edits table",
        ),
        "empty file": (_write(tmp_path / "empty.csv", ""), [], "is empty"),
        "header only": (_write(tmp_path / "header.csv", "cell_id,curated\n"), [], "no rows"),
        "missing file": (tmp_path / "none.csv", [], "does not exist"),
        "tab file named csv": (
            _write(tmp_path / "tabs.csv", good.replace(",", "\t")),
            [],
            "tab-separated",
        ),
        "no label column": (
            _write(tmp_path / "ids.csv", "cell_id\nc1\n"),
            [],
            "Cannot tell which column",
        ),
    }
    before = _files(tmp_path)
    for case, (edits, extra, message) in cases.items():
        out = tmp_path / "out.h5ad"
        assert main(["apply-edits", str(data), str(edits), "-o", str(out), *extra]) == 2, case
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, case
        assert message in err, (case, err)
        assert _files(tmp_path) == before, case  # nothing written, no temporary file
    assert _files(data.parent) == ["scored.h5ad"]


def test_bad_data_or_output_exit_2(server, tmp_path, capsys):
    data, laptop = server
    edits = nat.export_curation(laptop, "label", tmp_path / "edits.csv")
    cases = [
        ([str(tmp_path / "none.h5ad"), str(edits), "-o", str(tmp_path / "o.h5ad")], "does not"),
        ([str(data), str(edits), "-o", str(tmp_path / "o.loom")], "*.h5ad"),
        ([str(data), str(edits), "-o", str(data)], "is the input file"),
        ([str(data), str(edits), "-o", str(tmp_path / "no" / "o.h5ad")], "does not exist"),
        ([str(data), str(edits), "--label", "nope", "-o", str(tmp_path / "o.h5ad")], "'nope'"),
    ]
    for args, message in cases:
        assert main(["apply-edits", *args, "--allow-new-labels"]) == 2
        assert message in capsys.readouterr().err
    assert _files(tmp_path) == ["edits.csv"]


def test_a_laptop_subset_replayed_on_the_full_real_data(load_shared, tmp_path, capsys):
    full = load_shared(FIXTURE)
    data = tmp_path / "full.h5ad"
    nat.save_curated(full, data)
    laptop = full[:20].copy()  # a part of the data, curated elsewhere
    curation = nat.curate(laptop, "leiden")
    curation.relabel([0, 1], "2")
    curation.relabel([2], "choroid plexus")
    curation.keep([3])
    edits = nat.export_curation(laptop, "leiden", tmp_path / "edits.csv")
    out = tmp_path / "curated.zarr"
    assert main(["apply-edits", str(data), str(edits), "-o", str(out), "--allow-new-labels"]) == 0
    assert "new classes ['choroid plexus']" in capsys.readouterr().out
    back = nat.read_anndata(out)
    curated = back.obs["leiden_curated"].astype(str)
    np.testing.assert_array_equal(curated[:20], laptop.obs["leiden_curated"].astype(str))
    np.testing.assert_array_equal(curated[20:], full.obs["leiden"].astype(str)[20:])
    assert back.obs["leiden_reviewed"].sum() == laptop.obs["leiden_reviewed"].sum()
    assert back.uns["spatial"].keys() == full.uns["spatial"].keys()


def test_a_plain_two_column_table_is_applied(server, tmp_path, capsys):
    path, _ = server
    ids = list(nat.read_anndata(path).obs_names[:3])
    table = _write(
        tmp_path / "plain.csv", "cell_id,label\n" + "".join(f"{i},type_1\n" for i in ids)
    )
    out = tmp_path / "out.h5ad"
    assert main(["apply-edits", str(path), str(table), "--label", "label", "-o", str(out)]) == 0
    assert list(nat.read_anndata(out).obs["label_curated"].iloc[:3]) == ["type_1"] * 3
    # a table whose label column cannot be told names the option that chooses it
    both = _write(tmp_path / "two.csv", f"cell_id,cell type,note\n{ids[0]},type_1,x\n")
    out2 = tmp_path / "out2.h5ad"
    assert main(["apply-edits", str(path), str(both), "--label", "label", "-o", str(out2)]) == 2
    err = capsys.readouterr().err
    assert "columns: ['cell_id', 'cell type', 'note']" in err and "--label-column" in err
    assert not out2.exists()

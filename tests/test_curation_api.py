"""Curation without napari: save and reopen (.h5ad, .zarr), atomic writes, tables, replay."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import napari_annotatability as nat
from napari_annotatability.core import anndata_io as io
from napari_annotatability.core.curation import EDITS_KEY, Curation
from napari_annotatability.core.edit_tables import EXPORT_COLUMNS
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.scores import HARD
from napari_annotatability.datasets import synthetic_tissue

FIXTURE = "visium_mousebrain_squidpy_fixture"
FAST = {"epochs": 5, "suggest_epochs": 5, "device": "cpu"}
FORMATS = (".h5ad", ".zarr")
_TEXT_KINDS = set("OUST")


# --- comparing AnnData slot by slot ---------------------------------------------------
def assert_same(before, after, where: str) -> None:
    """``after`` holds the same value as ``before`` (recursing into mappings)."""
    if isinstance(before, Mapping):
        assert isinstance(after, Mapping), f"{where}: {type(after).__name__}, not a mapping"
        assert set(after) == set(before), f"{where}: keys {sorted(after)} != {sorted(before)}"
        for key in before:
            assert_same(before[key], after[key], f"{where}[{key!r}]")
    elif isinstance(before, pd.DataFrame):
        assert isinstance(after, pd.DataFrame), where
        pd.testing.assert_frame_equal(after, before, check_exact=True, obj=where)
    elif sp.issparse(before):
        assert sp.issparse(after), f"{where}: came back dense"
        assert (after.format, after.dtype, after.shape) == (
            before.format,
            before.dtype,
            before.shape,
        ), where
        np.testing.assert_array_equal(after.toarray(), before.toarray(), err_msg=where)
    elif isinstance(before, (np.ndarray, list, tuple)):
        a, b = np.asarray(before), np.asarray(after)
        assert a.shape == b.shape, f"{where}: shape {b.shape} != {a.shape}"
        if a.dtype.kind in _TEXT_KINDS and b.dtype.kind in _TEXT_KINDS:
            # text arrays may come back as object or numpy StringDType (zarr)
            assert [str(x) for x in a.ravel()] == [str(x) for x in b.ravel()], where
        else:
            assert a.dtype == b.dtype, f"{where}: dtype {b.dtype} != {a.dtype}"
            np.testing.assert_array_equal(b, a, err_msg=where)
    else:
        assert np.asarray(after).dtype.kind == np.asarray(before).dtype.kind, (
            f"{where}: {type(after).__name__} != {type(before).__name__}"
        )
        assert after == before or (before != before and after != after), where


def assert_anndata_unchanged(before, after, *, added_obs=(), added_uns=(), added_obsm=()) -> None:
    """Every slot of ``before`` comes back in ``after``; only the named keys were added."""
    assert after.shape == before.shape
    pd.testing.assert_index_equal(after.obs_names, before.obs_names)
    pd.testing.assert_index_equal(after.var_names, before.var_names)
    assert_same(before.X, after.X, "X")
    assert set(after.obs.columns) == set(before.obs.columns) | set(added_obs)
    pd.testing.assert_frame_equal(
        after.obs[list(before.obs.columns)], before.obs, check_exact=True, obj="obs"
    )
    pd.testing.assert_frame_equal(after.var, before.var, check_exact=True, obj="var")
    assert set(added_obsm) <= set(after.obsm)
    for slot in ("layers", "obsm", "varm", "obsp", "varp"):
        kept = {k: v for k, v in getattr(after, slot).items() if k not in added_obsm}
        assert_same(dict(getattr(before, slot)), kept, slot)
    assert set(after.uns) == set(before.uns) | set(added_uns)
    assert_same(dict(before.uns), {k: v for k, v in after.uns.items() if k in before.uns}, "uns")
    if before.raw is None:
        assert after.raw is None
    else:
        assert_same(before.raw.X, after.raw.X, "raw.X")
        pd.testing.assert_frame_equal(
            after.raw.var, before.raw.var, check_exact=True, obj="raw.var"
        )
        assert_same(dict(before.raw.varm), dict(after.raw.varm), "raw.varm")


def with_every_slot(adata: ad.AnnData) -> ad.AnnData:
    """Fill every AnnData slot with something that must survive a round trip."""
    rng = np.random.default_rng(0)
    adata.X = sp.csr_matrix(adata.X)
    adata.layers["dense"] = rng.normal(size=adata.shape)
    adata.layers["csc"] = sp.csc_matrix(adata.X)
    n, g = adata.shape
    adata.obs["text"] = np.array([f"batch {i % 7}" for i in range(n)], dtype=object)
    adata.obs["count"] = np.arange(n)
    adata.obs["score"] = rng.normal(size=n)
    adata.obs["maybe"] = pd.array([1, None] * (n // 2) + [1] * (n % 2), dtype="Int64")
    adata.var["symbol"] = np.array([f"G{i}" for i in range(g)], dtype=object)
    adata.var["highly_variable"] = rng.random(g) > 0.5
    adata.var["mean"] = rng.random(g)
    adata.obsm["X_pca"] = rng.normal(size=(n, 5)).astype(np.float32)
    adata.obsm["table"] = pd.DataFrame({"u": rng.random(n)}, index=adata.obs_names)
    adata.varm["PCs"] = rng.normal(size=(g, 5))
    adata.obsp["connectivities"] = sp.random(n, n, density=0.02, format="csr", random_state=0)
    adata.obsp["distances"] = sp.random(n, n, density=0.02, format="csr", random_state=1)
    adata.varp["correlation"] = rng.normal(size=(g, g))
    adata.uns["nested"] = {
        "a": {"array": np.arange(5), "text": "x", "float": 3.5, "int": 7, "bool": True},
        "names": ["one", "two"],
    }
    adata.uns["table"] = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    adata.uns["spatial"] = {
        "section": {
            "images": {"hires": rng.integers(0, 255, size=(12, 10, 3), dtype=np.uint8)},
            "scalefactors": {"tissue_hires_scalef": 0.5, "spot_diameter_fullres": 9.0},
        }
    }
    adata.uns["label_colors"] = np.array(["#ff0000", "#00ff00", "#0000ff"], dtype=object)
    adata.raw = adata.copy()
    return adata


def curate_a_little(adata: ad.AnnData, label: str) -> Curation:
    """Relabel (existing and new class), accept suggestions, keep, undo and redo."""
    curation = nat.curate(adata, label)
    classes = curation.classes
    # cells the bulk acceptance below leaves alone
    calm = np.flatnonzero((adata.obs[f"{label}_flag"] != HARD).to_numpy())
    curation.relabel(calm[:3], classes[-1])
    curation.relabel(calm[3:4], "new type")
    curation.accept_suggestions()  # all Hard-to-learn cells
    curation.keep(calm[4:6])
    curation.relabel(calm[6:8], classes[0])
    curation.undo()  # the last relabel
    curation.redo()
    curation.undo()
    return curation


@pytest.fixture(scope="module")
def synthetic_pair():
    """(an AnnData with every slot, the same scored) on small synthetic data."""
    original = with_every_slot(synthetic_tissue(n_cells=300, n_genes=40, n_classes=3, seed=0))
    scored = original.copy()
    nat.annotate(scored, "label", normalize=True, **FAST)
    assert (scored.obs["label_flag"] == HARD).any()
    return original, scored


def _visium_pair(load_shared):
    original = load_shared(FIXTURE)
    scored = original.copy()
    with pytest.warns(UserWarning, match="single cell"):  # the fixture's tiny clusters
        nat.annotate(scored, "leiden", lr=0.05, **FAST)
    assert (scored.obs["leiden_flag"] == HARD).any()
    return original, scored


# --- the round trip -------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["synthetic", "visium"])
def test_round_trip_keeps_every_slot_and_the_curation(
    dataset, synthetic_pair, load_shared, tmp_path
):
    if dataset == "synthetic":
        original, scored = synthetic_pair
        label = "label"
    else:
        original, scored = _visium_pair(load_shared)
        label = "leiden"
        assert original.uns["spatial"]["V1_Adult_Mouse_Brain"]["images"]["lowres"].size
    work = scored.copy()
    curation = curate_a_little(work, label)
    curated = work.obs[f"{label}_curated"].copy()
    assert "new type" in curation.classes and curation.n_reviewed() > 3
    assert "undo" in set(work.uns[EDITS_KEY]["how"])
    text_columns = {c for c in work.obs.columns if work.obs[c].dtype == object}

    for suffix in FORMATS:
        path = tmp_path / f"curated{suffix}"
        assert nat.save_curated(work, path, opened_from=tmp_path / "elsewhere.h5ad") == path
        back = nat.read_anndata(path)
        assert_anndata_unchanged(
            original,
            back,
            added_obs={
                f"{label}_conf",
                f"{label}_var",
                f"{label}_flag",
                f"{label}_dynamics_flag",
                f"{label}_mislabel_score",
                f"{label}_ambiguity",
                f"{label}_suggested",
                f"{label}_curated",
                f"{label}_reviewed",
            },
            added_uns={f"{label}_annotatability", EDITS_KEY},
            added_obsm={f"{label}_class_probabilities"},
        )
        pd.testing.assert_series_equal(back.obs[f"{label}_curated"], curated)
        np.testing.assert_array_equal(back.obs[f"{label}_reviewed"], work.obs[f"{label}_reviewed"])
        pd.testing.assert_frame_equal(
            back.uns[EDITS_KEY], work.uns[EDITS_KEY], check_dtype=False, check_exact=True
        )
        # reopening continues the curation where it stopped
        again = nat.curate(back, label)
        assert again.classes == curation.classes
        assert len(again.log) == len(curation.log)
        assert again.n_reviewed() == curation.n_reviewed()
    # writing did not change the data in memory (no text column turned categorical)
    assert {c for c in work.obs.columns if work.obs[c].dtype == object} == text_columns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curated.h5ad", "curated.zarr"]


def test_the_comparison_sees_a_change(synthetic_pair):
    original, _ = synthetic_pair
    changed = original.copy()
    changed.uns["spatial"]["section"]["images"]["hires"][0, 0, 0] += 1
    with pytest.raises(AssertionError, match="hires"):
        assert_anndata_unchanged(original, changed)
    changed = original.copy()
    changed.obs.loc[changed.obs_names[0], "score"] += 1e-9
    with pytest.raises(AssertionError):
        assert_anndata_unchanged(original, changed)
    changed = original.copy()
    changed.raw = changed[:, :5].copy()
    with pytest.raises(AssertionError):
        assert_anndata_unchanged(original, changed)


# --- atomic writes --------------------------------------------------------------------
def _tree(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def _small(n: int = 20) -> ad.AnnData:
    return synthetic_tissue(n_cells=n, n_genes=10, n_classes=2, seed=3)


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_failed_write_leaves_nothing_and_keeps_the_existing_file(tmp_path, suffix):
    target = tmp_path / f"out{suffix}"
    broken = _small()
    broken.uns["unwritable"] = object()
    with pytest.raises(Exception, match="object"):
        io.write_anndata_atomic(broken, target)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file or folder

    io.write_anndata_atomic(_small(30), target)
    before = _tree(target)
    with pytest.raises(Exception, match="object"):
        io.write_anndata_atomic(broken, target, overwrite=True)
    assert _tree(target) == before
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    assert nat.read_anndata(target).n_obs == 30


@pytest.mark.parametrize("suffix", FORMATS)
def test_an_interrupted_write_leaves_nothing(tmp_path, suffix, monkeypatch):
    def interrupted(self, path, **kwargs):
        Path(path, "partial").mkdir() if suffix == ".zarr" else Path(path).write_bytes(b"x")
        raise KeyboardInterrupt

    monkeypatch.setattr(ad.AnnData, f"write_{suffix[1:]}", interrupted)
    with pytest.raises(KeyboardInterrupt):
        io.write_anndata_atomic(_small(), tmp_path / f"out{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_replacing_a_zarr_store_is_never_half_done(tmp_path, monkeypatch):
    target = tmp_path / "out.zarr"
    io.write_zarr_atomic(_small(20), target)
    with pytest.raises(AnnotatabilityInputError, match="already exists"):
        io.write_zarr_atomic(_small(30), target)
    io.write_zarr_atomic(_small(30), target, overwrite=True)
    assert nat.read_anndata(target).n_obs == 30
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]  # the old one is gone

    # the new store cannot be moved in: the old one is put back, nothing else is left
    before = _tree(target)
    rename = os.rename

    def failing_rename(src, dst):
        if Path(src).name.endswith(".tmp") and Path(dst) == target:
            raise OSError("disk gone")
        return rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="disk gone"):
        io.write_zarr_atomic(_small(40), target, overwrite=True)
    monkeypatch.undo()
    assert _tree(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


def test_a_store_replaces_a_file_of_that_name_and_back(tmp_path):
    target = tmp_path / "out.zarr"
    target.write_bytes(b"not a store")
    io.write_zarr_atomic(_small(), target, overwrite=True)
    assert target.is_dir() and nat.read_anndata(target).n_obs == 20
    h5ad = tmp_path / "out.h5ad"
    h5ad.mkdir()
    io.write_h5ad_atomic(_small(), h5ad, overwrite=True)
    assert h5ad.is_file() and nat.read_anndata(h5ad).n_obs == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5ad", "out.zarr"]


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        io.write_h5ad_atomic(_small(), tmp_path / "a.h5ad")
        io.write_zarr_atomic(_small(), tmp_path / "a.zarr")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.h5ad").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "a.zarr").stat().st_mode) == 0o750


def test_save_refuses_to_overwrite_the_opened_file(tmp_path, monkeypatch):
    source = tmp_path / "data.h5ad"
    io.write_h5ad_atomic(_small(), source)
    before = source.read_bytes()
    adata = nat.read_anndata(source)
    nat.curate(adata, "label").relabel([0], "type_1")
    monkeypatch.chdir(tmp_path)
    for same in (source, Path("data.h5ad"), tmp_path / "sub" / ".." / "data.h5ad"):
        with pytest.raises(AnnotatabilityInputError, match=r"opened from.*overwrite=True"):
            nat.save_curated(adata, same, opened_from=source)
    assert source.read_bytes() == before
    nat.save_curated(adata, source, opened_from=source, overwrite=True)
    assert nat.read_anndata(source).obs["label_curated"].iloc[0] == "type_1"
    # a .zarr store opened and saved over in place
    store = tmp_path / "data.zarr"
    nat.save_curated(adata, store)
    with pytest.raises(AnnotatabilityInputError, match="opened from"):
        nat.save_curated(adata, str(store) + "/", opened_from=store)
    with pytest.raises(AnnotatabilityInputError, match="already exists"):
        nat.save_curated(adata, store)
    with pytest.raises(AnnotatabilityInputError, match=r"\*\.h5ad.*\*\.zarr"):
        nat.save_curated(adata, tmp_path / "data.loom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.h5ad", "data.zarr"]


def test_read_anndata_errors(tmp_path):
    with pytest.raises(AnnotatabilityInputError, match="does not exist"):
        nat.read_anndata(tmp_path / "none.h5ad")
    (tmp_path / "file.zarr").write_bytes(b"zip?")
    with pytest.raises(AnnotatabilityInputError, match="is a file"):
        nat.read_anndata(tmp_path / "file.zarr")
    (tmp_path / "cells.csv").write_text("a,b\n")
    with pytest.raises(AnnotatabilityInputError, match=r"expected an \.h5ad file or a \.zarr"):
        nat.read_anndata(tmp_path / "cells.csv")
    (tmp_path / "bad.h5ad").write_bytes(b"not hdf5")
    with pytest.raises(AnnotatabilityInputError, match=r"Could not read .*\.h5ad"):
        nat.read_anndata(tmp_path / "bad.h5ad")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(AnnotatabilityInputError, match=r"Could not read .*\.zarr folder"):
        nat.read_anndata(tmp_path / "empty.zarr")


# --- the table, reading edits, replaying them -----------------------------------------
def test_export_curation_csv_tsv_and_checks(synthetic_pair, tmp_path):
    adata = synthetic_pair[1].copy()
    nat.curate(adata, "label").relabel([0, 1], "new, with comma")
    csv = nat.export_curation(adata, "label", tmp_path / "t.csv")
    tsv = nat.export_curation(adata, "label", tmp_path / "t.tsv")
    txt = nat.export_curation(adata, "label", tmp_path / "t.txt")
    semi = nat.export_curation(adata, "label", tmp_path / "t.dat", sep=";")
    assert csv.read_text().splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert tsv.read_text().splitlines()[0] == "\t".join(EXPORT_COLUMNS)
    assert txt.read_text() == tsv.read_text()
    assert semi.read_text().splitlines()[0] == ";".join(EXPORT_COLUMNS)
    table = nat.read_edits(csv)
    pd.testing.assert_frame_equal(nat.read_edits(tsv), table)
    assert list(table["curated"].iloc[:2]) == ["new, with comma"] * 2
    np.testing.assert_array_equal(table["conf"], adata.obs["label_conf"])  # full precision
    assert table["reviewed"].dtype == bool and table["reviewed"].sum() == 2
    with pytest.raises(AnnotatabilityInputError, match="already exists"):
        nat.export_curation(adata, "label", csv)
    with pytest.raises(AnnotatabilityInputError, match=r"\*\.csv"):
        nat.export_curation(adata, "label", tmp_path / "t.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.dat", "t.tsv", "t.txt"]


def test_read_edits_keeps_text_as_written_and_fails_clearly(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("\ufeffcell_id,curated,reviewed\n007,NA,yes\n8,None,\n", encoding="utf-8")
    table = nat.read_edits(path)
    assert list(table["cell_id"]) == ["007", "8"]
    assert list(table["curated"]) == ["NA", "None"]
    assert list(table["reviewed"]) == [True, False]

    cases = {
        "missing.csv": (None, "does not exist"),
        "empty.csv": ("", "is empty"),
        "blank.tsv": ("\n\n", "is empty"),
        "header.csv": ("cell_id,curated\n", "no rows"),
        "tabs.csv": ("cell_id\tcurated\nc1\tt\n", r"no 'cell_id'.*tab-separated.*\.tsv"),
        "broken.csv": ('cell_id,curated\nc1,"t\n', "Could not read"),
        "binary.csv": (b"\x89HDF\r\n\x1a\n\xff\xfe\x00", "Could not read"),
        "edits.json": ("{}", r"\*\.csv"),
    }
    for name, (content, message) in cases.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        elif content is not None:
            (tmp_path / name).write_text(content)
        with pytest.raises(AnnotatabilityInputError, match=message):
            nat.read_edits(tmp_path / name)


def test_apply_edits_from_a_file_reproduces_the_curation(synthetic_pair, tmp_path):
    laptop = synthetic_pair[1].copy()
    curate_a_little(laptop, "label")
    path = nat.export_curation(laptop, "label", tmp_path / "edits.tsv")

    server = synthetic_pair[1].copy()
    edit = nat.apply_edits(server, "label", path, allow_new_labels=True)
    for key in ("label_curated", "label_reviewed"):
        np.testing.assert_array_equal(
            server.obs[key].astype(str), laptop.obs[key].astype(str), err_msg=key
        )
    assert set(server.obs["label_curated"].cat.categories) == set(
        laptop.obs["label_curated"].cat.categories
    )
    changed = laptop.obs["label_curated"].astype(str) != laptop.obs["label"].astype(str)
    assert edit.n_changed == changed.sum()
    assert set(server.uns[EDITS_KEY]["how"]) == {"manual", "keep"}
    # replaying twice changes nothing more
    assert nat.apply_edits(server, "label", path, allow_new_labels=True).n_changed == 0


def test_apply_edits_leaves_the_data_as_it_was_on_bad_input(synthetic_pair):
    adata = synthetic_pair[1].copy()
    columns = list(adata.obs.columns)
    ids = list(adata.obs_names[:3])
    bad = {
        "not in the data": pd.DataFrame({"cell_id": [*ids, "x1"], "curated": ["type_0"] * 4}),
        r"\['typo'\] are not classes": pd.DataFrame({"cell_id": ids, "curated": ["typo"] * 3}),
        "decimal numbers": pd.DataFrame({"cell_id": ids, "curated": ["0.5", "0.25", "1"]}),
        "are empty": pd.DataFrame({"cell_id": ids, "curated": ["type_0", None, ""]}),
        "Cannot tell which column": pd.DataFrame(
            {"cell_id": ids, "cell type": ["type_0"] * 3, "note": ["x"] * 3}
        ),
    }
    for message, table in bad.items():
        with pytest.raises(AnnotatabilityInputError, match=message):
            nat.apply_edits(adata, "label", table)
        assert list(adata.obs.columns) == columns and EDITS_KEY not in adata.uns
    floats = pd.DataFrame({"cell_id": ids, "curated": [0.5, 0.25, 1.0]})
    with pytest.raises(AnnotatabilityInputError, match="decimal numbers"):
        nat.apply_edits(adata, "label", floats, allow_new_labels=True)
    with pytest.raises(AnnotatabilityInputError, match="not cell-type labels"):
        nat.apply_edits(adata, "label_conf", pd.DataFrame({"cell_id": ids, "curated": ["a"] * 3}))
    assert list(adata.obs.columns) == columns


def test_apply_edits_takes_the_last_row_and_skips_cells_left_unlabelled(synthetic_pair):
    adata = synthetic_pair[1].copy()
    adata.obs["partial"] = adata.obs["label"].astype(object)
    adata.obs.loc[adata.obs_names[:2], "partial"] = None
    ids = adata.obs_names
    table = pd.DataFrame(
        {
            "cell_id": [ids[0], ids[1], ids[2], ids[2], ids[3]],
            "original": [None, None, "x", "x", "x"],
            "curated": [None, "type_1", "type_0", "type_2", "type_1"],
        }
    )
    nat.apply_edits(adata, "partial", table)
    curated = adata.obs["partial_curated"].astype(object)
    assert pd.isna(curated.iloc[0])  # left unlabelled: skipped
    assert list(curated.iloc[1:4]) == ["type_1", "type_2", "type_1"]  # last row wins
    assert list(adata.uns[EDITS_KEY]["cell_id"]).count(ids[2]) <= 1

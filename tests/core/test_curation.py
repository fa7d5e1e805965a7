"""Curation: curated column, edit log, undo/redo, export table and replaying edits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_annotatability import api, datasets
from napari_annotatability.core.curation import EDITS_KEY, Curation, curated_key, reviewed_key
from napari_annotatability.core.edit_tables import EXPORT_COLUMNS, apply_edits, export_table
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.scores import HARD


@pytest.fixture(scope="module")
def scored():
    adata = datasets.synthetic_tissue(n_cells=500, n_genes=50, n_classes=4, seed=1)
    api.annotate(adata, "label", epochs=30, suggest_epochs=20)
    return adata


def test_curated_column_next_to_the_original(scored):
    adata = scored.copy()
    original = adata.obs["label"].copy()
    curation = Curation(adata, "label")
    assert curated_key("label") == "label_curated"
    pd.testing.assert_series_equal(
        adata.obs["label_curated"].astype(str), original.astype(str), check_names=False
    )
    assert not adata.obs[reviewed_key("label")].any()
    edit = curation.relabel([3, 1, 3], "layer X")
    np.testing.assert_array_equal(edit.positions, [1, 3])
    assert list(curation.labels([1, 3])) == ["layer X", "layer X"]
    assert "layer X" in curation.classes
    pd.testing.assert_series_equal(adata.obs["label"], original)  # never overwritten
    assert adata.obs["label_reviewed"].sum() == 2


def test_log_undo_redo(scored):
    adata = scored.copy()
    curation = Curation(adata, "label")
    before = curation.labels().copy()
    target = "c1" if before[0] != "c1" else "c2"
    curation.relabel([0, 1], target)
    curation.keep([2])
    log = adata.uns[EDITS_KEY]
    assert list(log["how"]) == ["manual", "manual", "keep"]
    assert list(log["cell_id"]) == list(adata.obs_names[[0, 1, 2]])
    assert log["old"].iloc[0] == before[0] and log["new"].iloc[0] == target
    np.testing.assert_allclose(log["conf"], adata.obs["label_conf"].to_numpy()[[0, 1, 2]])
    assert set(log["flag"]) <= {"Easy-to-learn", "Ambiguous", "Hard-to-learn"}
    assert curation.n_reviewed() == 3

    curation.undo()  # the keep
    assert curation.n_reviewed() == 2
    curation.undo()  # the relabel
    np.testing.assert_array_equal(curation.labels(), before)
    assert curation.n_reviewed() == 0 and not curation.can_undo
    assert curation.undo() is None
    curation.redo()
    assert list(curation.labels([0, 1])) == [target, target]
    assert curation.can_redo
    curation.relabel([5], target)  # a new edit drops the redo branch
    assert not curation.can_redo
    # every action is logged, undos included: relabel 2, keep 1, undo 1 + 2, redo 2, relabel 1
    assert adata.uns[EDITS_KEY]["how"].tolist() == [
        *["manual"] * 2,
        "keep",
        *["undo"] * 3,
        *["manual"] * 3,
    ]


def test_accept_suggestions(scored):
    adata = scored.copy()
    curation = Curation(adata, "label")
    hard = np.flatnonzero(adata.obs["label_flag"] == HARD)
    assert hard.size > 0
    suggested = adata.obs["label_suggested"].astype(object).to_numpy()
    one = curation.accept_suggestions([hard[0]])
    assert one.how == "suggestion" and one.new[0] == suggested[hard[0]]
    everything = curation.accept_suggestions()
    assert everything.how == "bulk"
    np.testing.assert_array_equal(curation.labels(hard), suggested[hard])
    with pytest.raises(AnnotatabilityInputError, match="No cells selected"):
        curation.relabel([], "c1")
    easy = np.flatnonzero(adata.obs["label_flag"] != HARD)[:3]
    with pytest.raises(AnnotatabilityInputError, match="suggested label"):
        curation.accept_suggestions(easy)


def test_bad_label_columns(scored):
    adata = scored.copy()
    adata.obs["score"] = np.linspace(0, 1, adata.n_obs)
    with pytest.raises(AnnotatabilityInputError, match="not cell-type labels"):
        Curation(adata, "score")
    with pytest.raises(AnnotatabilityInputError, match="not found"):
        Curation(adata, "nope")
    curation = Curation(adata, "label")
    with pytest.raises(AnnotatabilityInputError, match="empty"):
        curation.relabel([1], "  ")


def test_export_and_replay_reproduce_the_curated_column(scored):
    laptop = scored.copy()
    curation = Curation(laptop, "label")
    curation.accept_suggestions()
    curation.relabel([7, 8], "new type")
    table = export_table(laptop, "label")
    assert tuple(table.columns) == EXPORT_COLUMNS
    assert table["reviewed"].sum() == curation.n_reviewed()

    server = scored.copy()
    with pytest.raises(AnnotatabilityInputError, match="new type"):
        apply_edits(server, "label", table)
    assert curated_key("label") not in server.obs.columns or EDITS_KEY not in server.uns
    apply_edits(server, "label", table, allow_new_labels=True)
    pd.testing.assert_series_equal(
        server.obs["label_curated"].astype(str), laptop.obs["label_curated"].astype(str)
    )
    # only the edited rows are enough (cell_id + curated)
    again = scored.copy()
    edited = table[table["curated"].astype(str) != table["original"].astype(str)]
    apply_edits(again, "label", edited[["cell_id", "curated"]], allow_new_labels=True)
    pd.testing.assert_series_equal(
        again.obs["label_curated"].astype(str), laptop.obs["label_curated"].astype(str)
    )


def test_replay_refuses_unknown_cells_and_empty_labels(scored):
    adata = scored.copy()
    bad = pd.DataFrame({"cell_id": ["nope", adata.obs_names[0]], "curated": ["c1", "c1"]})
    with pytest.raises(AnnotatabilityInputError, match="1 cell ids"):
        apply_edits(adata, "label", bad)
    empty = pd.DataFrame({"cell_id": [adata.obs_names[0]], "curated": [None]})
    with pytest.raises(AnnotatabilityInputError, match="empty"):
        apply_edits(adata, "label", empty)
    with pytest.raises(AnnotatabilityInputError, match="cell_id"):
        apply_edits(adata, "label", pd.DataFrame({"curated": ["c1"]}))
    assert "label_curated" not in adata.obs.columns, "nothing changes on bad input"


def test_log_survives_a_round_trip(scored, tmp_path):
    import anndata as ad

    adata = scored.copy()
    curation = Curation(adata, "label")
    curation.relabel([0], "c3")
    path = tmp_path / "curated.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    again = Curation(back, "label")
    assert len(again.log) == 1 and again.log["new"].iloc[0] == "c3"
    assert again.labels([0])[0] == "c3"


def test_duplicate_cell_ids_cannot_be_curated():
    adata = datasets.synthetic_tissue(n_cells=50, n_genes=10, n_classes=2, seed=0)
    adata.obs_names = ["x", *adata.obs_names[1:-1], "x"]
    with pytest.raises(
        AnnotatabilityInputError, match=r"not unique: 1 id appears more than once, e\.g\. 'x' x2"
    ):
        Curation(adata, "label")
    assert "label_curated" not in adata.obs

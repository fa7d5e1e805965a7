"""The evidence of one cell: its curve, the models' classes, the cut-off, its genes."""

from __future__ import annotations

import numpy as np
import pytest

import napari_annotatability as nat
from napari_annotatability import datasets
from napari_annotatability.core import keys
from napari_annotatability.core.cell_evidence import PERCENTILES, CellEvidenceIndex
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.scores import AMBIGUOUS, EASY, HARD


@pytest.fixture(scope="module")
def scored():
    """A synthetic tissue with 10% flipped labels, audited with its curves kept."""
    adata = datasets.synthetic_tissue(n_cells=900, n_genes=60, n_classes=4, seed=5)
    nat.annotate(adata, "label", epochs=30, store_record=True)
    return adata


@pytest.fixture(scope="module")
def index(scored):
    return CellEvidenceIndex(scored, "label", scored.obsm["spatial"])


def test_the_audit_keeps_out_of_fold_class_probabilities(scored):
    probs = scored.obsm[keys.class_probabilities_key("label")]
    classes = scored.uns[keys.audit_key("label")]["classes"]
    assert probs.shape == (scored.n_obs, len(classes))
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    # models that never saw the labels still name the true class of most cells
    named = np.asarray(classes)[probs.argmax(axis=1)]
    assert (named == scored.obs["true_label"].astype(str).to_numpy()).mean() > 0.8


def test_a_dynamics_audit_removes_stale_class_probabilities():
    adata = datasets.synthetic_tissue(n_cells=300, n_genes=30, n_classes=3, seed=1)
    nat.annotate(adata, "label", epochs=5)
    assert keys.class_probabilities_key("label") in adata.obsm
    nat.annotate(adata, "label", epochs=5, flags="dynamics", suggest_epochs=3)
    assert keys.class_probabilities_key("label") not in adata.obsm
    evidence = CellEvidenceIndex(adata, "label").of(0)
    assert evidence.top_classes == []
    assert evidence.neighbours == []  # no coordinates given
    assert "conf" in evidence.reason


def test_evidence_of_a_cell_equals_what_the_audit_wrote(scored, index):
    obs = scored.obs
    flags = obs[keys.flag_key("label")].astype(str).to_numpy()
    position = int(np.flatnonzero(flags == HARD)[0])
    evidence = index.of(position)
    assert evidence.cell == scored.obs_names[position]
    assert evidence.label == obs["label"].iloc[position]
    assert evidence.flag == HARD
    assert evidence.suggestion == obs[keys.suggestion_key("label")].iloc[position]
    assert evidence.mislabel_score == pytest.approx(obs[keys.mislabel_key("label")].iloc[position])
    assert evidence.conf == pytest.approx(obs[keys.conf_key("label")].iloc[position])
    # the curve is the cell's record, the class band its class's quartiles
    record = scored.obsm[keys.record_key("label")]
    np.testing.assert_allclose(evidence.curve, record[position])
    members = obs["label"].astype(str).to_numpy() == evidence.label
    np.testing.assert_allclose(
        evidence.class_curve, np.percentile(record[members], (25, 50, 75), axis=0), rtol=1e-5
    )
    # the top classes are the largest out-of-fold probabilities, in order
    probs = scored.obsm[keys.class_probabilities_key("label")][position]
    classes = scored.uns[keys.audit_key("label")]["classes"]
    top = np.argsort(-probs)[:3]
    assert [name for name, _ in evidence.top_classes] == [classes[i] for i in top]
    np.testing.assert_allclose([p for _, p in evidence.top_classes], probs[top], rtol=1e-6)
    # the reason names the Hard cut-off the audit stored
    cut = scored.uns[keys.audit_key("label")]["evidence"]["hard_cutoff"]
    assert f"{cut:.3f}" in evidence.reason
    assert evidence.mislabel_score >= cut
    scores = obs[keys.mislabel_key("label")].to_numpy()
    rank = (scores > evidence.mislabel_score).sum() + 1
    assert f"ranks {rank:,} of {scored.n_obs:,}" in evidence.reason


def test_the_reason_follows_each_flag(scored, index):
    flags = scored.obs[keys.flag_key("label")].astype(str).to_numpy()
    info = scored.uns[keys.audit_key("label")]["evidence"]
    for flag in (EASY, AMBIGUOUS):
        position = int(np.flatnonzero(flags == flag)[0])
        evidence = index.of(position)
        if flag == EASY:
            assert evidence.mislabel_score <= info["easy_cutoff"]
            assert f"{info['easy_cutoff']:.3f}" in evidence.reason
        else:
            assert "between" in evidence.reason or "splits" in evidence.reason


def test_neighbours_are_the_nearest_cells_on_the_tissue(scored, index):
    position = 10
    xy = scored.obsm["spatial"]
    nearest = np.argsort(np.linalg.norm(xy - xy[position], axis=1))[1:11]
    expected = scored.obs["label"].astype(str).to_numpy()[nearest]
    counts = dict(index.neighbours(position))
    assert sum(counts.values()) == 10
    for name, n in counts.items():
        assert (expected == name).sum() == n
    around = index.tissue.within(position, 50.0)
    assert position in around
    assert np.all(np.linalg.norm(xy[around] - xy[position], axis=1) <= 50.0)


def test_genes_separate_the_label_from_the_suggestion(scored, index):
    obs = scored.obs
    labels = obs["label"].astype(str).to_numpy()
    flipped = obs["is_flipped"].to_numpy()
    suggested = obs[keys.suggestion_key("label")].astype(object).to_numpy()
    true = obs["true_label"].astype(str).to_numpy()
    caught = np.flatnonzero(flipped & (suggested == true))
    assert caught.size >= 10
    X = scored.X.toarray()
    closer = []
    for position in caught[:20]:
        evidence = index.of(int(position))
        label, other = evidence.label, evidence.other
        assert other == suggested[position]
        assert 1 <= len(evidence.genes) <= 6
        # the genes are the largest standardised mean differences either way (all cells:
        # these classes are under the sample size)
        a, b = X[labels == label], X[labels == other]
        effect = (a.mean(0) - b.mean(0)) / np.sqrt((a.var(0) + b.var(0)) / 2)
        up = [g for g in np.argsort(-effect)[:3] if effect[g] > 0]
        down = [g for g in np.argsort(effect)[:3] if effect[g] < 0]
        expected = [scored.var_names[g] for g in up + down]
        assert [gene.gene for gene in evidence.genes] == expected
        for gene in evidence.genes:
            g = scored.var_names.get_loc(gene.gene)
            assert gene.cell_value == X[position, g]
            np.testing.assert_allclose(gene.label_percentiles, np.percentile(a[:, g], PERCENTILES))
            np.testing.assert_allclose(gene.other_percentiles, np.percentile(b[:, g], PERCENTILES))
        # a mislabelled cell looks like its true class: on these genes it lies nearer
        # the suggested class's medians than its label's
        values = np.array([gene.cell_value for gene in evidence.genes])
        to_label = np.abs(values - [gene.label_percentiles[2] for gene in evidence.genes]).sum()
        to_other = np.abs(values - [gene.other_percentiles[2] for gene in evidence.genes]).sum()
        closer.append(to_other < to_label)
    assert np.mean(closer) > 0.7


def test_bad_input_gets_a_clear_message(scored, index):
    with pytest.raises(AnnotatabilityInputError, match="No audit of 'true_label'"):
        CellEvidenceIndex(scored, "true_label")
    with pytest.raises(AnnotatabilityInputError, match="out of range"):
        index.of(scored.n_obs)


def test_cell_evidence_from_python_by_cell_id(scored, index):
    by_id = nat.cell_evidence(scored, scored.obs_names[3])
    by_index = index.of(3)
    assert by_id.position == 3 and by_id.flag == by_index.flag
    assert by_id.neighbours == by_index.neighbours  # obsm["spatial"], (row, column) order
    assert [g.gene for g in by_id.genes] == [g.gene for g in by_index.genes]
    with pytest.raises(AnnotatabilityInputError, match="No cell 'nope'"):
        nat.cell_evidence(scored, "nope")

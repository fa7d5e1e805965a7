import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import napari_annotatability as nat
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.evidence import EvidenceParams
from napari_annotatability.core.evidence_calibration import calibration_runs
from napari_annotatability.core.scores import (
    EASY,
    FLAG_CATEGORIES,
    HARD,
    confidence_and_variability,
)
from napari_annotatability.datasets import add_label_errors, synthetic_tissue


def flip_labels(adata, key, rate, seed):
    """Known errors in ``obs["noisy"]``; the mask of the moved labels."""
    return add_label_errors(adata, key, rate, seed=seed, key_added="noisy")


@pytest.mark.parametrize(("rate", "seed"), [(0.1, 0), (0.2, 1)])
def test_merfish_flipped_cells_have_low_confidence(load_shared, rate, seed):
    # measured with reference defaults (50 epochs): AUROC 0.92-0.94 over seeds 0-2
    adata = load_shared("merfish_lung_tessera")
    flipped = flip_labels(adata, "cell_lineage", rate, seed)
    record = nat.training_dynamics(adata, "noisy", normalize=True, device="cpu", seed=seed)
    conf, _ = confidence_and_variability(record.probabilities)
    assert roc_auc_score(flipped, 1 - conf) >= 0.9


def test_annotate_writes_everything_and_survives_a_file_round_trip(tmp_path):
    adata = synthetic_tissue(n_cells=1500, n_genes=80, n_classes=4, noise_rate=0.1, seed=2)
    original = adata.obs["label"].copy()
    nat.annotate(
        adata,
        "label",
        normalize=True,
        epochs=30,
        lr=0.01,
        suggest_epochs=30,
        device="cpu",
        store_record=True,
    )
    obs = adata.obs
    assert {"label_conf", "label_var", "label_flag", "label_suggested"} <= set(obs.columns)
    assert "conf" not in obs  # every result names its annotation
    assert list(obs["label_flag"].cat.categories) == list(FLAG_CATEGORIES)
    assert obs["label"].equals(original)  # the annotation itself is never overwritten
    hard = (obs["label_flag"] == HARD).to_numpy()
    assert hard.any()
    assert obs["label_suggested"][hard].notna().all()
    assert obs["label_suggested"][~hard].isna().all()
    # the injected errors concentrate among the Hard-to-learn cells
    assert obs["is_flipped"][hard].mean() > 3 * obs["is_flipped"].mean()
    # suggestions mostly restore the true label of flipped Hard-to-learn cells
    fixed = hard & obs["is_flipped"].to_numpy()
    assert (
        obs["label_suggested"][fixed].astype(str) == obs["true_label"][fixed].astype(str)
    ).mean() > 0.8
    info = adata.uns["label_annotatability"]
    assert info["label_key"] == "label"
    assert info["params"]["epochs"] == 30 and info["params"]["seed"] == 0
    assert info["device"] == "cpu"
    assert {"conf", "var", "percentile", "noise_rate", "n_flipped"} <= set(info["cutoffs"])
    assert "torch" in info["versions"]
    assert sum(info["flag_counts"].values()) == adata.n_obs
    assert adata.obsm["label_annotatability_probabilities"].shape == (1500, 30)
    path = tmp_path / "scored.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.obs["label_conf"], obs["label_conf"])
    assert back.uns["label_annotatability"]["cutoffs"]["conf"] == info["cutoffs"]["conf"]
    corrected = nat.corrected_labels(back, "label")
    assert (corrected[~hard] == obs["label"][~hard]).all()


def test_merfish_evidence_finds_the_flips_and_counts_them(load_shared):
    # quality benchmark, uniform 10%: AUROC 0.96-0.97, flagged 0.12-0.19 of cells
    adata = load_shared("merfish_lung_tessera")
    flipped = flip_labels(adata, "cell_lineage", 0.1, 3)
    nat.annotate(adata, "noisy", normalize=True, epochs=10, device="cpu", seed=3)
    obs = adata.obs
    assert roc_auc_score(flipped, obs["noisy_mislabel_score"]) > 0.93
    hard = (obs["noisy_flag"] == HARD).to_numpy()
    evidence = adata.uns["noisy_annotatability"]["evidence"]
    assert evidence["n_errors"] == hard.sum()
    assert abs(hard.mean() - 0.1) < 0.1  # the count estimates the wrong labels
    assert flipped[hard].mean() > 0.5 and hard[flipped].mean() > 0.8
    easy = (obs["noisy_flag"] == EASY).to_numpy()
    assert easy.sum() > 0.2 * adata.n_obs and flipped[easy].mean() < 0.02
    # the suggestion of a flagged flip is mostly the label it had before
    truth = obs["cell_lineage"].astype(str).to_numpy()
    fixed = hard & flipped
    assert (obs["noisy_suggested"].astype(str).to_numpy()[fixed] == truth[fixed]).mean() > 0.8


def test_evidence_columns_summary_and_the_reference_flags():
    adata = synthetic_tissue(n_cells=800, n_genes=60, n_classes=4, noise_rate=0.1, seed=5)
    nat.annotate(adata, "label", normalize=True, epochs=5, device="cpu")
    obs, info = adata.obs, adata.uns["label_annotatability"]
    for column in ("label_mislabel_score", "label_ambiguity"):
        assert obs[column].between(0, 1).all()
    assert list(obs["label_dynamics_flag"].cat.categories) == list(FLAG_CATEGORIES)
    assert info["flags"] == "evidence"
    evidence = info["evidence"]
    assert evidence["calibration"] == "noise injection"
    assert np.asarray(evidence["noise_matrix"]).shape == (4, 4)
    assert 0 <= evidence["spatial_weight"] <= 1 and info["params"]["spatial_neighbours"] == 10
    summary = nat.audit_summary(adata)
    assert summary.startswith(f"about {evidence['n_errors']} of 800 labels")
    assert summary.endswith("look wrong (label evidence, calibrated by noise injection)")

    # the reference's own flags: no evidence columns, the flags are the dynamics'
    nat.annotate(
        adata, "label", normalize=True, epochs=5, suggest_epochs=5, device="cpu",
        **nat.REFERENCE_SETTINGS,
    )  # fmt: skip
    obs, info = adata.obs, adata.uns["label_annotatability"]
    assert "label_mislabel_score" not in obs and "evidence" not in info
    pd.testing.assert_series_equal(obs["label_flag"], obs["label_dynamics_flag"], check_names=False)
    assert info["flags"] == "dynamics" and "Hard-to-learn by training" in nat.audit_summary(adata)
    with pytest.raises(AnnotatabilityInputError, match="flags='votes' is not one of"):
        nat.annotate(adata, "label", flags="votes")


def test_min_steps_trains_small_data_more_and_leaves_large_data_alone():
    adata = synthetic_tissue(n_cells=300, n_genes=40, n_classes=3, seed=1)
    options = {"normalize": True, "epochs": 10, "device": "cpu", "lr": 0.01}
    one_pass = nat.training_dynamics(adata, "label", min_steps=None, **options)
    more = nat.training_dynamics(adata, "label", min_steps=10, **options)
    # 300 cells: 2 steps an epoch, or at least 10; the latter learns the labels further
    assert more.probabilities[-1].mean() > one_pass.probabilities[-1].mean() + 0.1
    big = synthetic_tissue(n_cells=3000, n_genes=40, n_classes=3, seed=1)
    a = nat.training_dynamics(big, "label", min_steps=None, **options)
    b = nat.training_dynamics(big, "label", min_steps=5, **options)  # 12 steps anyway
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    with pytest.raises(AnnotatabilityInputError, match="min_steps"):
        nat.training_dynamics(adata, "label", min_steps=0, **options)


def test_annotate_copy_and_no_calibration(load_shared):
    adata = load_shared("visium_dlpfc_steam")
    out = nat.annotate(adata, "layer", epochs=3, calibrate=False, copy=True, device="cpu")
    assert "layer_conf" not in adata.obs and "layer_conf" in out.obs
    obs, info = out.obs, out.uns["layer_annotatability"]
    assert HARD not in set(obs["layer_dynamics_flag"])  # no cut-offs without calibration
    assert "cutoffs" not in info
    # the evidence flags by its posterior: Hard-to-learn where the score exceeds 0.5
    assert info["evidence"]["calibration"] == "posterior"
    hard = (obs["layer_flag"] == HARD).to_numpy()
    np.testing.assert_array_equal(hard, obs["layer_mislabel_score"].to_numpy() > 0.5)
    assert obs["layer_suggested"].notna().to_numpy().tolist() == hard.tolist()


def test_dropped_cells_get_nan(load_shared):
    adata = load_shared("st_mob_stdeconvolve")
    labels = adata.obs["layer"].astype(object)
    labels.iloc[:5] = None
    adata.obs["partial"] = labels
    with pytest.raises(AnnotatabilityInputError, match="5 cell"):
        nat.annotate(adata, "partial", normalize=True, n_top_genes=500, epochs=2)
    nat.annotate(
        adata,
        "partial",
        normalize=True,
        n_top_genes=500,
        epochs=3,
        suggest_epochs=3,
        drop_missing=True,
        device="cpu",
    )
    assert adata.obs["partial_conf"].iloc[:5].isna().all()
    assert adata.obs["partial_conf"].iloc[5:].notna().all()
    assert adata.obs["partial_flag"].iloc[:5].isna().all()
    assert adata.uns["partial_annotatability"]["n_cells_used"] == adata.n_obs - 5
    assert adata.uns["partial_annotatability"]["params"]["n_features"] == 500


def test_few_markers_need_min_width(load_shared):
    adata = load_shared("cycif_scimap")[:, :10].copy()  # a 10-marker panel
    with (
        pytest.warns(UserWarning, match="single cell"),  # one class has one cell
        pytest.raises(AnnotatabilityInputError, match=r"hidden widths .* min_width"),
    ):  # the reference's widths 10 -> 5 -> 2 -> 1 -> 0 cannot be built
        nat.annotate(adata, "phenotype", depth=5, epochs=2, device="cpu", min_width=None)
    with pytest.warns(UserWarning, match="single cell"):  # the default widens them to 64
        nat.annotate(adata, "phenotype", depth=5, epochs=2, suggest_epochs=2, device="cpu")
    assert adata.obs["phenotype_conf"].notna().all()
    assert adata.uns["phenotype_annotatability"]["params"]["min_width"] == 64


@pytest.mark.filterwarnings("ignore:.*single cell:UserWarning")
def test_learning_rate_is_set_from_the_data_or_as_the_reference(load_shared):
    adata = load_shared("cycif_scimap")  # 33 markers scaled to 0..1
    mean_squared_norm = float(np.mean(np.sum(adata.X.astype(np.float64) ** 2, axis=1)))
    res = nat.annotate(
        adata, "phenotype", epochs=2, suggest=False, calibrate=False, device="cpu", copy=True
    )
    params = res.uns["phenotype_annotatability"]["params"]
    assert params["lr"] == "auto"
    assert params["lr_used"] == pytest.approx(1 / mean_squared_norm, rel=1e-6)
    ref = nat.annotate(
        adata,
        "phenotype",
        epochs=2,
        suggest=False,
        calibrate=False,
        device="cpu",
        copy=True,
        **nat.REFERENCE_SETTINGS,
    )
    assert ref.uns["phenotype_annotatability"]["params"]["lr_used"] == 0.001
    assert (
        "min_width" not in ref.uns["phenotype_annotatability"]["params"]
    )  # None: reference widths
    with pytest.raises(AnnotatabilityInputError, match="lr"):
        nat.annotate(adata, "phenotype", lr="fast", epochs=2, device="cpu")


def test_compare_two_annotations(load_shared):
    adata = load_shared("osmfish_sscortex")
    flip_labels(adata, "cell_type", 0.3, 0)
    table = nat.compare_annotations(
        adata, "cell_type", "noisy", normalize=True, epochs=20, lr=0.05, device="cpu"
    )
    assert list(table.columns) == ["conf_cell_type", "var_cell_type", "conf_noisy", "var_noisy"]
    same = (adata.obs["noisy"] == adata.obs["cell_type"]).to_numpy()
    np.testing.assert_allclose(table["conf_cell_type"][same], table["conf_noisy"][same])
    assert (table["conf_noisy"][~same] < table["conf_cell_type"][~same]).mean() > 0.8
    assert "conf_noisy" in adata.obs


def test_progress_callback_sees_every_phase():
    adata = synthetic_tissue(n_cells=400, n_genes=40, n_classes=3, seed=0)

    def phases_of(**options) -> list:
        seen = []
        nat.annotate(
            adata,
            "label",
            normalize=True,
            epochs=4,
            suggest_epochs=3,
            device="cpu",
            progress=seen.append,
            **options,
        )
        assert [u.step for u in seen] == list(range(1, len(seen) + 1))
        return seen

    seen = phases_of()
    evidence = EvidenceParams()
    fits = len(evidence.components) * len(evidence.penalties) + evidence.em_iterations
    runs = calibration_runs(adata.n_obs, 0.05)  # small data: repeated injections
    assert runs > 1
    assert [u.phase for u in seen] == (
        ["dynamics"] * 4
        + ["calibration"] * 4
        + ["evidence"] * (1 + fits)
        + ["evidence calibration"] * runs * (1 + evidence.em_iterations)
    )
    assert {u.total_steps for u in seen} == {len(seen)}
    assert len(seen) == nat.api.total_steps(adata.n_obs, epochs=4, suggest_epochs=3)

    seen = phases_of(flags="dynamics")
    total = seen[0].total_steps
    assert [u.phase for u in seen][:8] == ["dynamics"] * 4 + ["calibration"] * 4
    assert total == 11 and len(seen) in (8, 11)  # suggestion runs only if cells are flagged


def test_corrected_labels_needs_suggestions():
    adata = synthetic_tissue(n_cells=100, seed=0)
    with pytest.raises(AnnotatabilityInputError, match="run annotate"):
        nat.corrected_labels(adata, "label")


def test_compare_annotations_with_dropped_cells():
    adata = synthetic_tissue(n_cells=300, n_genes=30, n_classes=3, seed=4)
    labels = adata.obs["label"].astype(object)
    labels.iloc[[0, 10]] = None
    adata.obs["partial"] = labels
    table = nat.compare_annotations(
        adata,
        "partial",
        "true_label",
        normalize=True,
        epochs=3,
        drop_missing=True,
        device="cpu",
    )
    assert table.iloc[[0, 10]].isna().all().all()
    assert table.drop(index=table.index[[0, 10]]).notna().all().all()


def test_stored_training_settings_train_again_alike(tmp_path):
    adata = synthetic_tissue(n_cells=400, n_genes=40, n_classes=3, seed=2)
    assert nat.stored_training_settings(adata, "label") == {}
    nat.annotate(
        adata, "label", normalize=True, epochs=2, suggest=False, device="cpu", seed=4,
        **nat.REFERENCE_SETTINGS,
    )  # fmt: skip
    adata.write_h5ad(tmp_path / "a.h5ad")
    settings = nat.stored_training_settings(ad.read_h5ad(tmp_path / "a.h5ad"), "label")
    assert settings == {
        "normalize": True,
        "drop_missing": False,
        "lr": 0.001,
        "momentum": 0.9,
        "batch_size": 256,
        "depth": 3,
        "weighted_sampler": True,
        "seed": 4,
        "min_width": None,
        "min_steps": None,
        "flags": "dynamics",
    }
    again = nat.annotate(
        adata, "label", epochs=2, suggest=False, device="cpu", copy=True, **settings
    )
    assert again.uns["label_annotatability"]["params"]["lr_used"] == 0.001


def test_automatic_learning_rate_on_an_all_zero_input_is_a_clear_error():
    adata = synthetic_tissue(n_cells=100, n_genes=10, n_classes=2, seed=0)
    adata.layers["empty"] = np.zeros(adata.shape, dtype=np.float32)
    with pytest.raises(AnnotatabilityInputError, match=r"every value is 0.*pass a number as lr"):
        nat.annotate(adata, "label", layer="empty", epochs=2, device="cpu")
    assert "label_conf" not in adata.obs  # nothing written
    nat.annotate(adata, "label", layer="empty", lr=0.001, epochs=2, suggest=False, device="cpu")
    assert adata.obs["label_conf"].notna().all()


def test_labels_unrelated_to_the_data_are_not_all_called_wrong():
    adata = synthetic_tissue(n_cells=600, n_genes=40, n_classes=3, seed=0)
    rng = np.random.default_rng(0)
    adata.obs["shuffled"] = adata.obs["label"].to_numpy()[rng.permutation(adata.n_obs)]
    nat.annotate(adata, "shuffled", normalize=True, epochs=3, suggest=False, device="cpu")
    evidence = adata.uns["shuffled_annotatability"]["evidence"]
    assert evidence["calibration"] == "posterior" and evidence["separation"] < 0.6
    assert (adata.obs["shuffled_flag"] == "Hard-to-learn").mean() < 0.2
    summary = nat.audit_summary(adata)
    assert "uncertain: injected errors scored like correct labels" in summary


def test_a_count_from_a_weak_separation_is_said_to_be_uncertain(caplog):
    # half the labels wrong: the injected errors stand only weakly apart from the rest
    adata = synthetic_tissue(n_cells=1500, n_genes=60, n_classes=4, noise_rate=0.5, seed=0)
    with caplog.at_level(logging.WARNING, logger="napari_annotatability"):
        nat.annotate(adata, "label", epochs=3, device="cpu")
    evidence = adata.uns["label_annotatability"]["evidence"]
    assert evidence["calibration"] == "noise injection"
    assert 0.6 <= evidence["separation"] < 0.75
    # the count is kept (it is right to within 15 points here) and said to be uncertain
    flagged = (adata.obs["label_flag"] == "Hard-to-learn").mean()
    assert abs(flagged - adata.obs["is_flipped"].mean()) < 0.15
    codes = adata.obs["label"].cat.codes.to_numpy()
    assert evidence["commonest_share"] == pytest.approx(np.bincount(codes).max() / codes.size)
    assert evidence["commonest_share"] < evidence["label_accuracy"] < 1
    summary = nat.audit_summary(adata)
    assert (
        f"uncertain: the injected errors stood apart with AUROC {evidence['separation']:.2f}"
        in (summary)
    )
    assert f"the commonest label alone {evidence['commonest_share']:.0%}" in summary
    assert any("Check a sample of the Hard-to-learn cells" in r.message for r in caplog.records)


def test_audits_of_two_annotations_sit_side_by_side():
    adata = synthetic_tissue(n_cells=400, n_genes=40, n_classes=3, noise_rate=0.1, seed=3)
    options = {"normalize": True, "epochs": 3, "suggest": False, "device": "cpu"}
    nat.annotate(adata, "label", **options)
    first = adata.obs[["label_conf", "label_var", "label_flag"]].copy()
    first_info = dict(adata.uns["label_annotatability"])
    nat.annotate(adata, "true_label", seed=1, **options)
    # the second audit wrote its own keys and left the first one whole
    pd.testing.assert_frame_equal(adata.obs[["label_conf", "label_var", "label_flag"]], first)
    assert adata.uns["label_annotatability"]["params"] == first_info["params"]
    assert adata.uns["true_label_annotatability"]["label_key"] == "true_label"
    assert not np.array_equal(adata.obs["true_label_conf"], adata.obs["label_conf"])
    with pytest.raises(AnnotatabilityInputError, match=r"several annotations \['label', 'true"):
        nat.audit_summary(adata)
    assert nat.audit_summary(adata, "true_label").startswith("about ")
    with pytest.raises(AnnotatabilityInputError, match="No audit of 'other'"):
        nat.gene_scores(adata, label_key="other")
    # the reference package's names, for its notebooks
    nat.reference_columns(adata, "label")
    np.testing.assert_array_equal(adata.obs["conf"], first["label_conf"])
    np.testing.assert_array_equal(adata.obs["var"], first["label_var"])


def test_a_file_of_an_earlier_version_opens_with_keyed_names(tmp_path):
    adata = synthetic_tissue(n_cells=300, n_genes=30, n_classes=3, seed=0)
    nat.annotate(adata, "label", normalize=True, epochs=2, suggest=False, device="cpu",
                 store_record=True)  # fmt: skip
    # written as versions before 0.2 wrote it: one audit under unkeyed names
    adata.obs = adata.obs.rename(columns={"label_conf": "conf", "label_var": "var"})
    adata.uns["annotatability"] = adata.uns.pop("label_annotatability")
    adata.obsm["annotatability_probabilities"] = adata.obsm.pop(
        "label_annotatability_probabilities"
    )
    conf = adata.obs["conf"].to_numpy().copy()
    adata.write_h5ad(tmp_path / "old.h5ad")

    back = nat.read_anndata(tmp_path / "old.h5ad")
    np.testing.assert_array_equal(back.obs["label_conf"], conf)
    assert "conf" not in back.obs and "annotatability" not in back.uns
    assert back.obsm["label_annotatability_probabilities"].shape == (300, 2)
    assert nat.audit_summary(back).startswith("about ")
    assert nat.stored_training_settings(back, "label")["normalize"] is True
    # an AnnData of an earlier version already in memory is adopted on first use
    old = ad.read_h5ad(tmp_path / "old.h5ad")
    table = nat.gene_scores(old)
    assert len(table) and "label_conf" in old.obs

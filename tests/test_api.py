import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import napari_annotatability as nat
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.scores import FLAG_CATEGORIES, HARD, confidence_and_variability
from napari_annotatability.datasets import synthetic_tissue


def flip_labels(adata, key, rate, seed):
    rng = np.random.default_rng(seed)
    classes = np.asarray(adata.obs[key].cat.categories)
    codes = adata.obs[key].cat.codes.to_numpy()
    flipped = rng.random(adata.n_obs) < rate
    noisy = codes.copy()
    noisy[flipped] = (codes[flipped] + rng.integers(1, classes.size, flipped.sum())) % classes.size
    adata.obs["noisy"] = pd.Categorical(classes[noisy], categories=classes)
    return flipped


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
    assert {"conf", "var", "label_flag", "label_suggested"} <= set(obs.columns)
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
    info = adata.uns["annotatability"]
    assert info["label_key"] == "label"
    assert info["params"]["epochs"] == 30 and info["params"]["seed"] == 0
    assert info["device"] == "cpu"
    assert {"conf", "var", "percentile", "noise_rate", "n_flipped"} <= set(info["cutoffs"])
    assert "torch" in info["versions"]
    assert sum(info["flag_counts"].values()) == adata.n_obs
    assert adata.obsm["annotatability_probabilities"].shape == (1500, 30)
    path = tmp_path / "scored.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.obs["conf"], obs["conf"])
    assert back.uns["annotatability"]["cutoffs"]["conf"] == info["cutoffs"]["conf"]
    corrected = nat.corrected_labels(back, "label")
    assert (corrected[~hard] == obs["label"][~hard]).all()


def test_annotate_copy_and_no_calibration(load_shared):
    adata = load_shared("visium_dlpfc_steam")
    out = nat.annotate(adata, "layer", epochs=3, calibrate=False, copy=True, device="cpu")
    assert "conf" not in adata.obs and "conf" in out.obs
    assert HARD not in set(out.obs["layer_flag"])
    assert "layer_suggested" not in out.obs
    assert "cutoffs" not in out.uns["annotatability"]


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
    assert adata.obs["conf"].iloc[:5].isna().all()
    assert adata.obs["conf"].iloc[5:].notna().all()
    assert adata.obs["partial_flag"].iloc[:5].isna().all()
    assert adata.uns["annotatability"]["n_cells_used"] == adata.n_obs - 5
    assert adata.uns["annotatability"]["params"]["n_features"] == 500


def test_few_markers_need_min_width(load_shared):
    adata = load_shared("cycif_scimap")[:, :10].copy()  # a 10-marker panel
    with (
        pytest.warns(UserWarning, match="single cell"),  # one class has one cell
        pytest.raises(AnnotatabilityInputError, match=r"hidden widths .* min_width"),
    ):  # the reference's widths 10 -> 5 -> 2 -> 1 -> 0 cannot be built
        nat.annotate(adata, "phenotype", depth=5, epochs=2, device="cpu", min_width=None)
    with pytest.warns(UserWarning, match="single cell"):  # the default widens them to 64
        nat.annotate(adata, "phenotype", depth=5, epochs=2, suggest_epochs=2, device="cpu")
    assert adata.obs["conf"].notna().all()
    assert adata.uns["annotatability"]["params"]["min_width"] == 64


@pytest.mark.filterwarnings("ignore:.*single cell:UserWarning")
def test_learning_rate_is_set_from_the_data_or_as_the_reference(load_shared):
    adata = load_shared("cycif_scimap")  # 33 markers scaled to 0..1
    mean_squared_norm = float(np.mean(np.sum(adata.X.astype(np.float64) ** 2, axis=1)))
    res = nat.annotate(
        adata, "phenotype", epochs=2, suggest=False, calibrate=False, device="cpu", copy=True
    )
    params = res.uns["annotatability"]["params"]
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
    assert ref.uns["annotatability"]["params"]["lr_used"] == 0.001
    assert "min_width" not in ref.uns["annotatability"]["params"]  # None: reference widths
    with pytest.raises(AnnotatabilityInputError, match="lr"):
        nat.annotate(adata, "phenotype", lr="fast", epochs=2, device="cpu")


def test_compare_two_annotations(load_shared):
    adata = load_shared("osmfish_sscortex")
    flip_labels(adata, "cell_type", 0.3, 0)
    table = nat.compare_annotations(
        adata, "cell_type", "noisy", normalize=True, epochs=20, lr=0.05, device="cpu"
    )
    assert list(table.columns) == ["conf", "var", "conf_noisy", "var_noisy"]
    same = (adata.obs["noisy"] == adata.obs["cell_type"]).to_numpy()
    np.testing.assert_allclose(table["conf"][same], table["conf_noisy"][same])
    assert (table["conf_noisy"][~same] < table["conf"][~same]).mean() > 0.8
    assert "conf_noisy" in adata.obs


def test_progress_callback_sees_every_phase():
    adata = synthetic_tissue(n_cells=400, n_genes=40, n_classes=3, seed=0)
    seen = []
    nat.annotate(
        adata,
        "label",
        normalize=True,
        epochs=4,
        suggest_epochs=3,
        device="cpu",
        progress=seen.append,
    )
    phases = [u.phase for u in seen]
    total = seen[0].total_steps
    assert phases[:8] == ["dynamics"] * 4 + ["calibration"] * 4
    assert [u.step for u in seen] == list(range(1, len(seen) + 1))
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
    assert nat.stored_training_settings(adata) == {}
    nat.annotate(
        adata, "label", normalize=True, epochs=2, suggest=False, device="cpu", seed=4,
        **nat.REFERENCE_SETTINGS,
    )  # fmt: skip
    adata.write_h5ad(tmp_path / "a.h5ad")
    settings = nat.stored_training_settings(ad.read_h5ad(tmp_path / "a.h5ad"))
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
    }
    again = nat.annotate(
        adata, "label", epochs=2, suggest=False, device="cpu", copy=True, **settings
    )
    assert again.uns["annotatability"]["params"]["lr_used"] == 0.001


def test_automatic_learning_rate_on_an_all_zero_input_is_a_clear_error():
    adata = synthetic_tissue(n_cells=100, n_genes=10, n_classes=2, seed=0)
    adata.layers["empty"] = np.zeros(adata.shape, dtype=np.float32)
    with pytest.raises(AnnotatabilityInputError, match=r"every value is 0.*pass a number as lr"):
        nat.annotate(adata, "label", layer="empty", epochs=2, device="cpu")
    assert "conf" not in adata.obs  # nothing written
    nat.annotate(adata, "label", layer="empty", lr=0.001, epochs=2, suggest=False, device="cpu")
    assert adata.obs["conf"].notna().all()

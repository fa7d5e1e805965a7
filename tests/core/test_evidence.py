"""The label evidence: PCA, out-of-fold models, tissue, noise model and calibrated flags."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import roc_auc_score

from napari_annotatability.api import run_steps
from napari_annotatability.core import device_data, pca
from napari_annotatability.core import evidence as ev
from napari_annotatability.core import evidence_calibration as evcal
from napari_annotatability.core import flag_calibration as fc
from napari_annotatability.core import label_noise as noise
from napari_annotatability.core.device_data import csr_parts
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.pca import principal_components
from napari_annotatability.core.scores import AMBIGUOUS, EASY, HARD
from napari_annotatability.datasets import synthetic_tissue


@pytest.mark.parametrize("threshold", [0.0, 2.0], ids=["from dense-ish sparse", "from sparse"])
def test_pca_sparse_equals_dense_and_captures_the_leading_variance(threshold, monkeypatch):
    rng = np.random.default_rng(0)
    low_rank = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 80)) * 3
    dense = np.maximum(low_rank + rng.normal(size=low_rank.shape), 0).astype(np.float32)
    sparse = sp.csr_matrix(dense)
    # multiplied sparse, or densified 64 rows at a time (several blocks, the last short)
    monkeypatch.setattr(device_data, "SPARSE_DENSITY_LIMIT", threshold)
    monkeypatch.setattr(pca, "DENSE_BLOCK_VALUES", 64 * 80)
    a = principal_components(sparse, 6, seed=1)
    b = principal_components(dense, 6, seed=1)
    np.testing.assert_allclose(np.abs(a), np.abs(b), atol=1e-3)
    centred = dense - dense.mean(axis=0)
    exact = np.linalg.svd(centred, compute_uv=False)[:6] ** 2
    np.testing.assert_allclose(np.sort((a**2).sum(axis=0))[::-1], exact, rtol=1e-3)


def test_sparse_products_accept_column_major_tables():
    """QR returns column-major matrices; the sparse product reads them as any other."""
    X = sp.random(300, 40, density=0.1, format="csr", dtype=np.float32, random_state=0)
    table = torch.linalg.qr(torch.randn(40, 7))[0]
    assert not table.is_contiguous()
    rows = csr_parts(X)
    np.testing.assert_allclose(rows.weighted_sum(table), X @ table.numpy(), atol=1e-5)


def test_pca_with_few_features_keeps_them_all_centred():
    X = sp.csr_matrix(np.arange(30, dtype=np.float32).reshape(10, 3))
    Z = principal_components(X, 50)
    np.testing.assert_allclose(Z, X.toarray() - X.toarray().mean(axis=0))


def test_out_of_fold_predictions_never_see_the_cells_own_label():
    rng = np.random.default_rng(0)
    n, C = 300, 3
    Z = torch.as_tensor(rng.normal(size=(n, 5)), dtype=torch.float32)
    codes = rng.integers(0, C, n)
    folds = torch.as_tensor(noise.fold_assignment(n, 5, 0))

    def oof(labels):
        model = noise.FoldedSoftmaxRegression(Z, folds, 5, C)
        targets = torch.zeros(n, C)
        targets[torch.arange(n), torch.as_tensor(labels)] = 1
        model.fit(targets, 0.01, 50)
        return model.out_of_fold().numpy()

    changed = codes.copy()
    changed[7] = (codes[7] + 1) % C  # only cell 7's own label differs
    before, after = oof(codes), oof(changed)
    # its own fold's model did not see it: the joint objective is a sum of one term per
    # model, so only the shared optimiser's stopping point (its tolerance) can differ
    np.testing.assert_allclose(before[7], after[7], atol=1e-4)
    other_folds = noise.fold_assignment(n, 5, 0) != noise.fold_assignment(n, 5, 0)[7]
    assert np.abs(before - after)[other_folds].max() > 1e-3  # the others' models did


def test_neighbour_labels_leave_the_cell_out():
    coords = np.array([[0.0, 0], [0, 1], [0, 2], [10, 0], [10, 1]])
    codes = np.array([0, 0, 1, 1, 1])
    dist = noise.neighbour_label_distribution(noise.tissue_neighbours(coords, k=2), codes, 2)
    np.testing.assert_allclose(dist.sum(axis=1), 1, rtol=1e-6)
    # cell 0's neighbours are cells 1 (class 0) and 2 (class 1), not itself
    prior = np.bincount(codes) / 5
    np.testing.assert_allclose(dist[0], (np.array([1, 1]) + prior) / 3, rtol=1e-6)


def test_noise_matrix_rows_are_distributions():
    post = torch.softmax(torch.randn(50, 4), dim=1)
    codes = torch.randint(0, 4, (50,))
    T = noise.noise_matrix(post, codes, 4, prior=5.0)
    np.testing.assert_allclose(T.sum(dim=1).numpy(), 1, rtol=1e-5)
    assert (T.diagonal() > 0).all()


def test_error_rate_from_injected_errors_on_a_known_mixture():
    rng = np.random.default_rng(1)
    correct = rng.beta(1, 30, 9000)  # low scores
    wrong = rng.beta(5, 2, 1000)  # high scores: 10% wrong
    injected = rng.beta(5, 2, 500)
    scores = np.concatenate([correct, wrong, injected])
    mask = np.r_[np.zeros(10000, bool), np.ones(500, bool)]
    assert fc.estimate_error_rate(scores, mask) == pytest.approx(0.1, abs=0.02)
    with pytest.raises(AnnotatabilityInputError, match="injected and untouched"):
        fc.estimate_error_rate(scores, np.zeros(scores.size, bool))


def test_easy_survives_injected_flips_that_restore_wrong_labels():
    # 30% wrong labels, 5 classes: 1 in 4 injected flips of a wrong label restores it
    rng = np.random.default_rng(2)
    correct = rng.beta(1, 40, 7000)
    wrong = rng.beta(6, 2, 3000)
    injected = np.concatenate([rng.beta(6, 2, 475), rng.beta(1, 40, 25)])  # 0.3 / 4 = 5%
    scores = np.concatenate([correct, wrong, injected])
    mask = np.r_[np.zeros(10000, bool), np.ones(500, bool)]
    assert fc.easy_quantile(scores, mask, 0.3) == 0  # the restored flips look like errors
    share = fc.easy_quantile(scores, mask, 0.3, restore=1 / 4)
    assert share > 0.3  # most of the 70% correct labels
    # the Easy-to-learn share holds at most 1% wrong labels
    easy = np.sort(scores[:10000])[: int(share * 10000)]
    cut = easy.max()
    assert np.mean(wrong <= cut) * 3000 / easy.size <= 0.01
    assert fc.easy_quantile(scores, mask, 0.0, restore=1 / 4) == 1.0  # no errors: all safe


def test_error_destinations_and_restore_probability():
    noise = np.array([[0.8, 0.2, 0.0], [0.0, 1.0, 0.0], [0.05, 0.15, 0.8]])
    dest = fc.error_destinations(noise)
    np.testing.assert_allclose(dest.sum(axis=1), 1)
    assert np.all(dest.diagonal() == 0)
    np.testing.assert_allclose(dest[0], [0, 1, 0])  # class 0's errors all name class 1
    np.testing.assert_allclose(dest[1], [0.5, 0, 0.5])  # no errors seen: uniform
    np.testing.assert_allclose(dest[2], [0.25, 0.75, 0])
    codes = np.array([1, 1, 0])
    # cell 0 labelled 1 is truly 0 (p 0.6) or 1; cell 1 surely 1; cell 2 truly 2 (p 0.5)
    posterior = np.array([[0.6, 0.4, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    # flips of label 1 go to 0 half the time; of label 0 never to 2
    assert fc.restore_probability(posterior, codes, dest) == pytest.approx(0.3 / 1.1)
    uniform = fc.error_destinations(np.eye(3))
    assert fc.restore_probability(posterior, codes, uniform) == pytest.approx(0.5)
    assert fc.restore_probability(np.eye(3)[codes], codes, dest) == pytest.approx(0.5)


def test_separation_is_the_auroc_of_injected_against_untouched():
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.2])
    injected = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
    assert fc.separation(scores, injected) == pytest.approx(roc_auc_score(injected, scores))


def test_labels_the_data_cannot_support_get_no_count_from_the_injection():
    # expression unrelated to the labels: injected errors score like the given labels,
    # and a count read off them would call most labels wrong
    rng = np.random.default_rng(7)
    X = rng.normal(size=(600, 20)).astype(np.float32)
    codes = rng.integers(0, 3, 600)
    params = ev.EvidenceParams(spatial_neighbours=0)
    embedding = ev.embed(X, None, params)
    main = run_steps(ev.label_evidence(embedding, codes, 3, params))
    check = run_steps(evcal.calibration_scores(embedding, codes, 3, params, main, seed=1))
    cut = fc.calibrate(main.mislabel_score, (check.scores, check.injected), restore=check.restore)
    assert cut.separation < fc.MIN_SEPARATION
    assert cut.method == "posterior"
    assert cut.n_errors == int(np.sum(main.mislabel_score > 0.5)) < 0.2 * 600
    # the same estimator on the injection alone would have said most labels are wrong
    assert fc.estimate_error_rate(check.scores, check.injected) > 0.5


def test_flags_take_exactly_the_estimated_count_and_easy_needs_a_clear_margin():
    scores = np.array([0.9, 0.8, 0.8, 0.3, 0.01, 0.0, 0.0])
    ambiguity = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.2])
    cut = fc.EvidenceCutoffs(
        error_rate=2 / 7, n_errors=2, hard=0.8, easy=0.01, max_ambiguity=0.5, method="x"
    )
    flags = list(fc.evidence_flags(scores, ambiguity, cut))
    assert flags == [HARD, HARD, AMBIGUOUS, AMBIGUOUS, EASY, AMBIGUOUS, EASY]
    posterior = fc.calibrate(scores)  # no injection: the score read as a probability
    assert posterior.method == "posterior" and posterior.n_errors == 3
    assert list(fc.evidence_flags(scores, ambiguity, posterior)).count(HARD) == 3


def _evidence_with_injection(X, coords, codes, n_classes, seed=0):
    params = ev.EvidenceParams(seed=seed)
    embedding = ev.embed(X, coords, params)
    main = run_steps(ev.label_evidence(embedding, codes, n_classes, params))
    check = run_steps(
        evcal.calibration_scores(embedding, codes, n_classes, params, main, seed=seed + 1)
    )
    cut = fc.calibrate(main.mislabel_score, (check.scores, check.injected), restore=check.restore)
    return main, cut


def test_synthetic_tissue_flags_the_flips_and_calls_mixtures_ambiguous():
    adata = synthetic_tissue(n_cells=2000, n_genes=100, n_classes=5, seed=3)
    X = sp.csr_matrix(np.log1p(adata.X.toarray() / adata.X.sum(axis=1).A * 1e4))
    codes = adata.obs["label"].cat.codes.to_numpy().astype(np.int64)
    flipped = adata.obs["is_flipped"].to_numpy()
    mixed = adata.obs["is_mixed"].to_numpy()
    main, cut = _evidence_with_injection(X, adata.obsm["spatial"], codes, 5)
    assert roc_auc_score(flipped, main.mislabel_score) > 0.98
    # the count estimates the number of flips
    assert abs(cut.n_errors - flipped.sum()) < 0.03 * adata.n_obs
    flags = np.asarray(fc.evidence_flags(main.mislabel_score, main.ambiguity, cut))
    hard = flags == HARD
    assert flipped[hard].mean() > 0.85 and hard[flipped].mean() > 0.85
    easy = flags == EASY
    assert easy.sum() > 0.5 * adata.n_obs and flipped[easy].mean() < 0.01
    # mixtures of two types: ambiguous by score and by flag
    clean = ~flipped & ~mixed
    chosen = clean | mixed
    assert roc_auc_score(mixed[chosen], main.ambiguity[chosen]) > 0.9
    assert (flags[mixed] == AMBIGUOUS).mean() > 0.5 > (flags[clean] == AMBIGUOUS).mean()
    # the suggestion of a flagged flip is mostly its true class
    true = adata.obs["true_label"].cat.codes.to_numpy()
    assert (main.suggested[hard & flipped] == true[hard & flipped]).mean() > 0.8


def test_real_section_with_injected_flips(load_shared):
    adata = load_shared("visium_dlpfc_steam")
    codes = adata.obs["layer"].cat.codes.to_numpy().astype(np.int64)
    rng = np.random.default_rng(5)
    flipped = rng.random(adata.n_obs) < 0.1
    noisy = codes.copy()
    noisy[flipped] = (codes[flipped] + rng.integers(1, 5, flipped.sum())) % 5
    main, cut = _evidence_with_injection(np.asarray(adata.X), adata.obsm["spatial"], noisy, 5)
    assert roc_auc_score(flipped, main.mislabel_score) > 0.95
    assert main.spatial_weight > 0  # cortical layers: the tissue neighbourhood counts
    assert abs(cut.error_rate - flipped.mean()) < 0.05


def test_real_section_with_errors_into_neighbouring_layers(load_shared):
    # confusable errors: a spot named after the layer above or below its own
    adata = load_shared("visium_dlpfc_steam")
    codes = adata.obs["layer"].cat.codes.to_numpy().astype(np.int64)
    rng = np.random.default_rng(5)
    chosen = rng.random(adata.n_obs) < 0.2
    step = np.where(rng.random(adata.n_obs) < 0.5, -1, 1)
    noisy = np.where(chosen, codes + step, codes)
    noisy[noisy < 0], noisy[noisy > 4] = 1, 3
    flipped = noisy != codes
    main, cut = _evidence_with_injection(np.asarray(adata.X), adata.obsm["spatial"], noisy, 5)
    assert roc_auc_score(flipped, main.mislabel_score) > 0.9
    # the noise matrix found the neighbouring layers: most of layer 4's errors name 3 or 5
    assert main.noise[1, [0, 2]].sum() > 0.8 * (1 - main.noise[1, 1])
    assert abs(cut.error_rate - flipped.mean()) < 0.05


def test_the_data_choose_how_many_components():
    rng = np.random.default_rng(4)
    params = ev.EvidenceParams(spatial_neighbours=0, em_iterations=0)
    # few cells, many features, the classes apart along 2 directions: few components
    codes = rng.integers(0, 3, 120)
    signal = np.zeros((3, 400))
    signal[:, :2] = rng.normal(scale=3, size=(3, 2))
    X = (signal[codes] + rng.normal(size=(120, 400))).astype(np.float32)
    small = run_steps(ev.label_evidence(ev.embed(X, None, params), codes, 3, params))
    # many classes apart along many directions: many components
    codes = rng.integers(0, 25, 3000)
    X = (rng.normal(scale=1.5, size=(25, 60))[codes] + rng.normal(size=(3000, 60))).astype(
        np.float32
    )
    many = run_steps(ev.label_evidence(ev.embed(X, None, params), codes, 25, params))
    assert small.n_components <= 10 < 20 <= many.n_components
    assert {small.n_components, many.n_components} <= set(params.components)


def test_too_few_cells_for_the_folds_is_a_clear_error():
    with pytest.raises(AnnotatabilityInputError, match="at least 10 cells"):
        ev.embed(np.ones((6, 3), dtype=np.float32), None, ev.EvidenceParams())


@pytest.mark.parametrize("setting", [{"n_folds": 1}, {"spatial_neighbours": -1}, {"penalties": ()}])
def test_evidence_settings_out_of_range_name_the_setting(setting):
    name = next(iter(setting))
    with pytest.raises(AnnotatabilityInputError, match=f"{name}=.* is out of range"):
        ev.EvidenceParams(**setting)

"""Helpers of the quality benchmark: data, label flips, the methods, the metrics."""

from __future__ import annotations

import contextlib
import io
import random
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

import napari_annotatability as nat
from napari_annotatability.core.coordinates import tissue_coordinates
from napari_annotatability.core.scores import AMBIGUOUS, EASY, HARD, Cutoffs, assign_flags

sys.path.append(str(Path(__file__).resolve().parents[1]))  # _common; this folder first
from _common import DATA, REAL_DATASETS, load_real, reference

DATASETS = REAL_DATASETS  # smallest first
SKIPPED = {"visium_mousebrain_squidpy_fixture": "49-spot test fixture (3 singleton classes)"}
#: ``ours``: ``annotate`` at its defaults, the mislabel score of the label evidence and its
#: flags; ``ours-dynamics``: ``1 - conf`` and the training-dynamics flags of the same run;
#: ``ours-ref``: our engine at the reference's settings (``nat.REFERENCE_SETTINGS``, the
#: same method as ``reference``).
METHODS = ["ours", "ours-dynamics", "ours-ref", "reference", "knn", "svm", "rf", "cleanlab"]
TRAINED = ("ours", "ours-dynamics", "ours-ref", "reference")  # methods with an epochs setting
N_PCS = 50
KNN_K = 15
CV_FOLDS = 5


def available(folder: str) -> bool:
    """Whether the shared dataset is on this machine."""
    return (DATA / folder).is_dir()


def load(folder: str, how: str | None) -> tuple[ad.AnnData, np.ndarray]:
    """The dataset preprocessed as its README says, and its PCA coordinates."""
    adata = load_real(folder, how)
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    adata.X = np.ascontiguousarray(X, dtype=np.float32)
    n_comps = min(N_PCS, adata.n_vars - 1, adata.n_obs - 1)
    pcs = PCA(n_components=n_comps, random_state=0).fit_transform(adata.X)
    return adata, pcs.astype(np.float64)


def confusion_weights(pcs: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Row-stochastic C x C matrix: where a confusable flip of class c goes.

    ``P[c, c'] ∝ exp(-4 (d(c, c') / d*(c) - 1))`` for ``c' != c``, where ``d`` is the
    Euclidean distance between class centroids in PCA space (of the clean labels) and
    ``d*(c)`` the distance from c to its nearest other class. The nearest class has
    weight 1, a class 25% further away ``e^-1``, twice as far ``e^-4``.
    """
    centroids = np.stack([pcs[codes == c].mean(axis=0) for c in range(n_classes)])
    d = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    nearest = d.min(axis=1, keepdims=True)
    w = np.exp(-4.0 * (d / nearest - 1.0))
    np.fill_diagonal(w, 0.0)
    return w / w.sum(axis=1, keepdims=True)


def flip(
    codes: np.ndarray, n_classes: int, rate: float, seed: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(rate * n)`` cells, chosen uniformly without replacement.

    Uniform noise (``weights`` None): the new class is uniform over the other classes.
    Confusable noise: drawn from row ``weights[true class]`` (:func:`confusion_weights`).
    """
    rng = np.random.default_rng(seed)
    n = codes.size
    chosen = rng.choice(n, size=round(rate * n), replace=False)
    flipped = np.zeros(n, dtype=bool)
    flipped[chosen] = True
    noisy = codes.copy()
    if weights is None:
        noisy[chosen] = (codes[chosen] + rng.integers(1, n_classes, chosen.size)) % n_classes
    else:
        cum = np.cumsum(weights[codes[chosen]], axis=1)
        u = rng.random(chosen.size)[:, None]
        noisy[chosen] = np.minimum((u > cum).sum(axis=1), n_classes - 1)
    assert (noisy[flipped] != codes[flipped]).all()
    return noisy, flipped


def noisy_adata(adata: ad.AnnData, classes: np.ndarray, noisy: np.ndarray) -> ad.AnnData:
    """X, the tissue coordinates and the noisy labels (``obs["noisy"]``)."""
    out = ad.AnnData(X=adata.X, obs=pd.DataFrame(index=adata.obs_names.copy()))
    out.obs["noisy"] = pd.Categorical(classes[noisy]).remove_unused_categories()
    out.obsm["spatial"] = tissue_coordinates(adata)[0]
    return out


# ---- the methods: each returns (likely-wrong score, flag mask or None, seconds) ----------


def run_ours(adata, seed, epochs=50, *, reference_settings=False) -> dict:
    """Our engine; returns ``{method: (score, flags, seconds, extra metrics)}``.

    At its defaults one run gives ``ours`` (mislabel score, evidence flags, Easy-to-learn
    metrics) and ``ours-dynamics`` (``1 - conf``, the training-dynamics flags); at the
    reference's settings ``ours-ref``.
    """
    options = dict(nat.REFERENCE_SETTINGS) if reference_settings else {}
    t0 = time.perf_counter()
    res = nat.annotate(
        adata, "noisy", epochs=epochs, suggest=False, device="cpu", seed=seed, copy=True, **options
    )
    seconds = time.perf_counter() - t0
    obs = res.obs
    dynamics = (1 - obs["noisy_conf"].to_numpy(), (obs["noisy_dynamics_flag"] == HARD).to_numpy())
    if reference_settings:
        return {"ours-ref": (*dynamics, seconds, {})}
    flags = obs["noisy_flag"].to_numpy()
    evidence = res.uns["noisy_annotatability"]["evidence"]
    extra = {
        "easy": flags == EASY,
        "ambiguous_fraction": float(np.mean(flags == AMBIGUOUS)),
        "evidence_seconds": float(evidence["seconds"]),
        "spatial_weight": float(evidence["spatial_weight"]),
    }
    return {
        "ours": (obs["noisy_mislabel_score"].to_numpy(), flags == HARD, seconds, extra),
        "ours-dynamics": (*dynamics, seconds, {}),
    }


def run_reference(adata, seed, epochs=50):
    """The reference as a user runs it: main run, then its noise-injection cut-offs."""
    from Annotatability import models

    conf, var, t_main = reference(adata, "noisy", epochs, seed=seed)  # seeds torch + numpy
    work = adata.copy()  # find_cutoff_paramter writes obs["modified_label"]
    random.seed(seed)  # its label flips draw from Python's global `random`
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        cut_conf, cut_var = models.find_cutoff_paramter(
            work, "noisy", device=torch.device("cpu"), epoch_num=epochs
        )
    seconds = t_main + time.perf_counter() - t0
    flags = assign_flags(conf, var, Cutoffs(float(cut_conf), float(cut_var), 90, 0.05, 0))
    return 1 - conf, np.asarray(flags == HARD), seconds


def _oof_proba(model, pcs, y, seed):
    cv = KFold(CV_FOLDS, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proba = cross_val_predict(model, pcs, y, cv=cv, method="predict_proba")
    return proba


def run_knn(pcs, y, seed, pca_seconds):
    """Leave-one-out kNN disagreement: fraction of the k nearest other cells in PCA
    space whose (noisy) label differs from the cell's own."""
    t0 = time.perf_counter()
    nn = NearestNeighbors(n_neighbors=KNN_K + 1).fit(pcs)
    _, idx = nn.kneighbors(pcs)
    idx = idx[:, 1:]  # drop the cell itself (the first neighbour at distance 0)
    score = (y[idx] != y[:, None]).mean(axis=1)
    return score, None, pca_seconds + time.perf_counter() - t0


def run_svm(pcs, y, seed, pca_seconds):
    """1 - out-of-fold probability of the given label, linear SVM + sigmoid calibration."""
    t0 = time.perf_counter()
    svm = make_pipeline(
        StandardScaler(),
        CalibratedClassifierCV(LinearSVC(C=1.0), cv=KFold(3, shuffle=True, random_state=seed)),
    )
    try:
        proba = _oof_proba(svm, pcs, y, seed)
        score = 1 - proba[np.arange(y.size), y]
    except ValueError:
        # a training fold has a class with < 3 cells (CyCIF): the sigmoid calibration
        # cannot run, so rank by the softmax of the out-of-fold SVM margins instead
        cv = KFold(CV_FOLDS, shuffle=True, random_state=seed)
        plain = make_pipeline(StandardScaler(), LinearSVC(C=1.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            margin = cross_val_predict(plain, pcs, y, cv=cv, method="decision_function")
        margin = np.exp(margin - margin.max(axis=1, keepdims=True))
        score = 1 - (margin / margin.sum(axis=1, keepdims=True))[np.arange(y.size), y]
    return score, None, pca_seconds + time.perf_counter() - t0


def run_rf(pcs, y, seed, pca_seconds):
    """Random-forest relabelling: 1 - out-of-fold probability of the given label."""
    t0 = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)
    proba = _oof_proba(forest, pcs, y, seed)
    score = 1 - proba[np.arange(y.size), y]
    return score, None, pca_seconds + time.perf_counter() - t0


def run_cleanlab(pcs, y, seed, pca_seconds):
    """Confident learning: out-of-fold logistic-regression probabilities into cleanlab."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    t0 = time.perf_counter()
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    proba = _oof_proba(lr, pcs, y, seed)
    proba = np.clip(proba, 1e-12, None)
    proba = proba / proba.sum(axis=1, keepdims=True)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        quality = get_label_quality_scores(y, proba)
        issues = find_label_issues(y, proba)
    return 1 - quality, np.asarray(issues), pca_seconds + time.perf_counter() - t0


def easy_metrics(flipped: np.ndarray, easy: np.ndarray) -> dict:
    """Share of Easy-to-learn cells and of unflipped cells among them."""
    easy = np.asarray(easy, dtype=bool)
    return {
        "easy_fraction": float(easy.mean()),
        "easy_precision": float(1 - flipped[easy].mean()) if easy.any() else float("nan"),
    }


def metrics(flipped: np.ndarray, score: np.ndarray, flags: np.ndarray | None) -> dict:
    row = {"auroc": float(roc_auc_score(flipped, score))}
    if flags is not None:
        tp = int((flags & flipped).sum())
        row["flagged_fraction"] = float(flags.mean())
        row["flag_precision"] = tp / flags.sum() if flags.any() else float("nan")
        row["flag_recall"] = tp / flipped.sum()
    return row

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from napari_annotatability.core import device_data, dynamics
from napari_annotatability.core.device_data import DeviceMatrix, resolve_device
from napari_annotatability.core.dynamics import (
    MAX_AUTO_LR,
    MIN_AUTO_LR,
    TrainingParams,
    fit_and_predict,
    learning_rate,
    training_dynamics,
)
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.network import build_network
from napari_annotatability.core.sampling import EpochSampler, class_balanced_probabilities
from napari_annotatability.core.scores import confidence_and_variability
from napari_annotatability.datasets import synthetic_tissue


def run(gen):
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


@pytest.fixture(scope="module")
def tissue():
    adata = synthetic_tissue(n_cells=1200, n_genes=60, n_classes=4, seed=1)
    X = adata.X.copy()
    X.data = np.log1p(X.data)
    codes = adata.obs["label"].cat.codes.to_numpy().astype(np.int64)
    return X, codes


def test_class_balanced_probabilities_by_hand():
    p = class_balanced_probabilities(np.array([0, 0, 0, 1]), 2)
    # weights 1/3, 1/3, 1/3, 1 -> / 2
    np.testing.assert_allclose(p, [1 / 6, 1 / 6, 1 / 6, 1 / 2])


def test_sampler_draws_with_the_class_balanced_probabilities():
    codes = np.array([0] * 90 + [1] * 9 + [2] * 1)
    gen = torch.Generator().manual_seed(0)
    sampler = EpochSampler(torch.as_tensor(codes), 4, weighted=True, generator=gen)
    draws = torch.cat([sampler.draw() for _ in range(3000)]).numpy()
    assert draws.size == 300_000
    freq = np.bincount(draws, minlength=100) / draws.size
    expected = class_balanced_probabilities(codes, 4)
    # per class: 1/3 each; per cell within class uniform
    np.testing.assert_allclose(
        np.bincount(codes[draws], minlength=3) / draws.size, 1 / 3, atol=0.005
    )
    np.testing.assert_allclose(freq, expected, rtol=0.15, atol=5e-4)


def test_unweighted_sampler_is_a_permutation():
    gen = torch.Generator().manual_seed(0)
    sampler = EpochSampler(torch.zeros(50, dtype=torch.int64), 1, weighted=False, generator=gen)
    assert sorted(sampler.draw().tolist()) == list(range(50))


def test_automatic_learning_rate_is_one_over_the_mean_squared_norm(tissue, monkeypatch):
    X, _ = tissue
    expected = X.shape[0] / float(X.multiply(X).sum())
    dense = X.toarray()
    monkeypatch.setattr(device_data, "RECORD_BATCH_SIZE", 97)  # dense sums in blocks
    for matrix in (X, dense):
        norm = DeviceMatrix(matrix, torch.device("cpu")).mean_squared_norm()
        assert learning_rate("auto", norm) == pytest.approx(expected, rel=1e-6)
    assert expected > 0.001  # between the bounds
    assert learning_rate(0.003, 123.0) == 0.003
    assert learning_rate("auto", 1e-9) == MAX_AUTO_LR
    assert learning_rate("auto", 5000.0) == MIN_AUTO_LR == 0.001  # never below the reference
    with pytest.raises(AnnotatabilityInputError, match="every value is 0"):
        learning_rate("auto", 0.0)


def test_first_record_is_the_untrained_network(tissue):
    X, codes = tissue
    params = TrainingParams(epochs=3, seed=5)
    record = run(training_dynamics(X, codes, 4, params, device="cpu"))
    net = build_network(X.shape[1], 4, seed=5, min_width=params.min_width)
    with torch.no_grad():
        p0 = net(torch.from_numpy(X.toarray())).exp()[np.arange(len(codes)), codes].numpy()
    np.testing.assert_allclose(record.probabilities[0], p0, rtol=1e-5, atol=1e-6)
    assert record.probabilities.shape == (3, len(codes))
    assert not np.allclose(record.probabilities[1], record.probabilities[0])
    assert len(record.losses) == 3


def test_same_seed_same_result_other_seed_differs(tissue):
    X, codes = tissue
    params = TrainingParams(epochs=4, seed=11)
    a = run(training_dynamics(X, codes, 4, params, device="cpu")).probabilities
    b = run(training_dynamics(X, codes, 4, params, device="cpu")).probabilities
    c = run(training_dynamics(X, codes, 4, TrainingParams(epochs=4, seed=12), device="cpu"))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c.probabilities)


def test_sparse_and_dense_input_agree(tissue):
    X, codes = tissue
    params = TrainingParams(epochs=5, seed=2, weighted_sampler=False)
    sparse = run(training_dynamics(X, codes, 4, params, device="cpu")).probabilities
    dense = run(training_dynamics(X.toarray(), codes, 4, params, device="cpu")).probabilities
    np.testing.assert_allclose(sparse, dense, atol=1e-4)


def test_recording_is_batched(tissue, monkeypatch):
    X, codes = tissue
    params = TrainingParams(epochs=2, seed=0)
    whole = run(training_dynamics(X, codes, 4, params, device="cpu")).probabilities
    monkeypatch.setattr(dynamics, "RECORD_BATCH_SIZE", 97)
    batched = run(training_dynamics(X, codes, 4, params, device="cpu")).probabilities
    np.testing.assert_allclose(batched, whole, atol=1e-6)


def test_generator_yields_progress_and_stops_between_epochs(tissue):
    X, codes = tissue
    gen = training_dynamics(X, codes, 4, TrainingParams(epochs=50), device="cpu")
    first = next(gen)
    assert (first.phase, first.epoch, first.n_epochs) == ("dynamics", 1, 50)
    assert first.loss > 0 and first.elapsed > 0
    assert first.record.shape == (1, len(codes))
    np.testing.assert_allclose(first.running_confidence.mean(), first.mean_confidence, rtol=1e-5)
    second = next(gen)
    assert second.epoch == 2
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)


def test_training_learns_the_labels(tissue):
    X, codes = tissue
    params = TrainingParams(epochs=30, lr=0.01)
    record = run(training_dynamics(X, codes, 4, params, device="cpu"))
    _, var = confidence_and_variability(record.probabilities)
    assert record.probabilities[-1].mean() > 2 * record.probabilities[0].mean()
    assert record.losses[-1] < record.losses[0]
    assert np.all((var >= 0) & (var <= 0.5))


def test_second_annotation_is_recorded(tissue):
    X, codes = tissue
    other = (codes + 1) % 4
    record = run(
        training_dynamics(X, codes, 4, TrainingParams(epochs=3), device="cpu", other_codes=other)
    )
    assert record.other_probabilities.shape == record.probabilities.shape
    # both are probabilities of different classes under one softmax
    assert np.all(record.other_probabilities + record.probabilities <= 1 + 1e-5)


def test_fit_and_predict_returns_codes_for_left_out_cells(tissue):
    X, codes = tissue
    mask = np.ones(len(codes), dtype=bool)
    mask[:40] = False
    predicted = run(
        fit_and_predict(X, codes, 4, mask, TrainingParams(epochs=15, lr=0.01), device="cpu")
    )
    assert predicted.shape == (40,)
    assert predicted.dtype == np.int64
    assert set(predicted) <= {0, 1, 2, 3}


def test_fit_and_predict_needs_training_cells(tissue):
    X, codes = tissue
    with pytest.raises(AnnotatabilityInputError, match="every cell is flagged"):
        next(fit_and_predict(X, codes, 4, np.zeros(len(codes), bool), TrainingParams()))


def test_dense_high_density_sparse_batches(tissue):
    X, codes = tissue
    dense_sparse = sp.csr_matrix(X.toarray() + 1.0)  # 100% non-zeros
    record = run(training_dynamics(dense_sparse, codes, 4, TrainingParams(epochs=2), device="cpu"))
    assert np.isfinite(record.probabilities).all()


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(AnnotatabilityInputError, match="not understood"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(AnnotatabilityInputError, match="0 CUDA device"):
            resolve_device("cuda:1")


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("lr", 0.0), ("lr", "fast"), ("momentum", 1.0), ("batch_size", 0)],
)
def test_bad_hyper_parameters(field, value):
    with pytest.raises(AnnotatabilityInputError, match=field):
        TrainingParams(**{field: value})

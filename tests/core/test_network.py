import numpy as np
import pytest
import scipy.sparse as sp
import torch

from napari_annotatability.core.device_data import DeviceMatrix
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.network import build_network, layer_widths


@pytest.mark.parametrize(
    ("g", "c", "depth", "expected"),
    [
        (100, 7, 3, [100, 50, 25, 7]),
        (100, 7, 4, [100, 50, 25, 12, 7]),
        (100, 7, 5, [100, 50, 25, 12, 6, 7]),
        (33, 25, 5, [33, 16, 8, 4, 2, 25]),
        (479, 7, 3, [479, 239, 119, 7]),
    ],
)
def test_layer_widths_halve_by_integer_division(g, c, depth, expected):
    assert layer_widths(g, c, depth) == expected


def test_hidden_width_below_one_is_a_clear_error():
    with pytest.raises(AnnotatabilityInputError, match=r"hidden widths \[5, 2, 1, 0\].*min_width"):
        layer_widths(10, 3, depth=5)


def test_min_width_extension_raises_narrow_layers():
    assert layer_widths(10, 3, depth=5, min_width=4) == [10, 5, 4, 4, 4, 3]


def test_unsupported_depth():
    with pytest.raises(AnnotatabilityInputError, match="depth must be one of"):
        layer_widths(100, 3, depth=2)


def test_initialisation_matches_nn_linear_and_is_seeded():
    net = build_network(40, 3, depth=3, seed=7)
    torch.manual_seed(7)
    reference = torch.nn.Linear(40, 20)
    assert torch.equal(net.first_weight_t.t(), reference.weight)
    assert torch.equal(net.first_bias, reference.bias)
    again = build_network(40, 3, depth=3, seed=7)
    for a, b in zip(net.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)


def test_global_random_state_is_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_network(20, 2, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_output_is_log_softmax():
    net = build_network(16, 4, seed=0)
    out = net(torch.randn(5, 16))
    assert out.shape == (5, 4)
    assert torch.allclose(out.exp().sum(1), torch.ones(5), atol=1e-6)


@pytest.mark.parametrize("gather_in_torch", [False, True])
def test_sparse_batches_equal_the_rows(gather_in_torch):
    # gather_in_torch=True is the CUDA code path, run here on the CPU
    X = sp.random(200, 30, density=0.2, format="csr", dtype=np.float32, random_state=2)
    data = DeviceMatrix(X, torch.device("cpu"), gather_in_torch=gather_in_torch)
    index = torch.as_tensor([5, 0, 199, 5, 77])
    batch = data.rows(index, for_training=True)
    expected = X[index.numpy()].toarray()
    np.testing.assert_array_equal(batch.to_dense().numpy(), expected)
    transposed = batch.transposed.weighted_sum(torch.eye(len(index)))
    np.testing.assert_array_equal(transposed.numpy(), expected.T)
    block = data.slice(10, 20)
    np.testing.assert_array_equal(block.to_dense().numpy(), X[10:20].toarray())
    assert block.transposed is None
    dense = DeviceMatrix(
        sp.csr_matrix(X.toarray() + 1), torch.device("cpu"), gather_in_torch=gather_in_torch
    )  # above the density limit
    np.testing.assert_array_equal(dense.rows(index, for_training=True).numpy(), expected + 1)


@pytest.mark.parametrize("density", [0.1, 0.9])
def test_an_epoch_of_batches_equals_its_rows_for_every_storage(density, monkeypatch):
    from napari_annotatability.core import device_data

    # blocks of 2 batches of 8: the block-densified path cuts blocks across the epoch
    monkeypatch.setattr(device_data, "RECORD_BATCH_SIZE", 16)
    X = sp.random(300, 20, density=density, format="csr", dtype=np.float32, random_state=4)
    order = torch.as_tensor(np.random.default_rng(0).integers(0, 300, 45))
    for matrix in (X, X.toarray()):
        data = DeviceMatrix(matrix, torch.device("cpu"))
        cut = list(data.batches(order, 8, for_training=True))
        assert [len(index) for index, _ in cut] == [8, 8, 8, 8, 8, 5]
        for index, batch in cut:
            rows = batch.to_dense() if hasattr(batch, "to_dense") else batch
            np.testing.assert_array_equal(rows.numpy(), X[index.numpy()].toarray())
        np.testing.assert_array_equal(torch.cat([i for i, _ in cut]).numpy(), order.numpy())
    block = DeviceMatrix(X, torch.device("cpu")).slice(290, 300)  # the record's row blocks
    dense_block = block.to_dense() if hasattr(block, "to_dense") else block
    np.testing.assert_array_equal(dense_block.numpy(), X[290:300].toarray())


def test_sparse_forward_and_weight_gradient_equal_dense():
    rng = np.random.default_rng(0)
    X = sp.random(300, 64, density=0.1, format="csr", dtype=np.float32, random_state=1)
    data = DeviceMatrix(X, torch.device("cpu"))
    assert data.sparse
    index = torch.as_tensor(rng.integers(0, 300, 50))
    y = torch.as_tensor(rng.integers(0, 3, 50))
    grads = []
    for batch in (
        data.rows(index, for_training=True),
        torch.from_numpy(X[index.numpy()].toarray()),
    ):
        net = build_network(64, 3, seed=3)
        loss = torch.nn.functional.nll_loss(net(batch), y)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in net.parameters()]))
    (loss_s, grad_s), (loss_d, grad_d) = grads
    assert torch.allclose(loss_s, loss_d, atol=1e-6)
    for a, b in zip(grad_s, grad_d, strict=True):
        assert torch.allclose(a, b, atol=1e-6)

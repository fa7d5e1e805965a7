import numpy as np
import pandas as pd
import pytest

from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.scores import (
    AMBIGUOUS,
    EASY,
    FLAG_COLORS,
    HARD,
    Cutoffs,
    assign_flags,
    confidence_and_variability,
    inject_label_noise,
    noise_cutoffs,
)


def test_conf_is_mean_and_var_is_population_std():
    record = np.array([[0.1, 1.0], [0.3, 1.0], [0.5, 1.0], [0.7, 1.0]], dtype=np.float32)
    conf, var = confidence_and_variability(record)
    np.testing.assert_allclose(conf, [0.4, 1.0], atol=1e-7)
    # sqrt(mean((-.3,-.1,.1,.3)^2)) = sqrt(0.05)
    np.testing.assert_allclose(var, [np.sqrt(0.05), 0.0], atol=1e-7)


def test_empty_record_is_an_error():
    with pytest.raises(AnnotatabilityInputError, match="epochs x cells"):
        confidence_and_variability(np.empty((0, 3)))


def test_noise_flips_to_a_different_class_at_the_rate():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, 20000)
    noisy, flipped = inject_label_noise(codes, 4, 0.2, rng)
    assert np.all(noisy[flipped] != codes[flipped])
    assert np.all(noisy[~flipped] == codes[~flipped])
    assert abs(flipped.mean() - 0.2) < 0.01
    # targets uniform over the 3 other classes
    shift = (noisy[flipped] - codes[flipped]) % 4
    assert np.allclose(np.bincount(shift, minlength=4)[1:] / flipped.sum(), 1 / 3, atol=0.02)


def test_noise_flips_follow_the_given_destinations():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 3, 30000)
    # class 0 errors go to 1 (80%) or 2 (20%); class 1 only to 2; class 2 only to 0
    destinations = np.array([[0, 0.8, 0.2], [0, 0, 1.0], [1.0, 0, 0]])
    noisy, flipped = inject_label_noise(codes, 3, 0.3, rng, destinations)
    assert np.all(noisy[~flipped] == codes[~flipped]) and abs(flipped.mean() - 0.3) < 0.01
    moved = pd.crosstab(codes[flipped], noisy[flipped], normalize="index").reindex(
        index=range(3), columns=range(3), fill_value=0
    )
    np.testing.assert_allclose(moved.to_numpy(), destinations, atol=0.02)


def test_noise_flips_at_least_one_cell():
    noisy, flipped = inject_label_noise(
        np.zeros(3, dtype=np.int64), 2, 1e-9, np.random.default_rng(0)
    )
    assert flipped.sum() == 1
    assert noisy[flipped][0] == 1


@pytest.mark.parametrize("rate", [0, 1, -0.1])
def test_noise_rate_out_of_range(rate):
    with pytest.raises(AnnotatabilityInputError, match="noise_rate"):
        inject_label_noise(np.zeros(3, dtype=np.int64), 2, rate, np.random.default_rng(0))


def test_cutoffs_are_percentiles_over_flipped_cells():
    conf = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.9, 0.9])
    var = np.array([0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0])
    flipped = np.array([1, 1, 1, 1, 1, 0, 0], dtype=bool)
    cut = noise_cutoffs(conf, var, flipped, percentile=90, noise_rate=0.05)
    # linear interpolation: position 0.9 * 4 = 3.6 -> 0.3 + 0.6 * 0.1
    assert cut.conf == pytest.approx(0.36)
    assert cut.var == pytest.approx(0.46)
    assert cut.n_flipped == 5
    assert noise_cutoffs(conf, var, flipped, percentile=50).conf == pytest.approx(0.2)


def test_cutoffs_need_flipped_cells():
    with pytest.raises(AnnotatabilityInputError, match="No flipped"):
        noise_cutoffs(np.ones(3), np.ones(3), np.zeros(3, dtype=bool))


def test_flag_rules():
    cut = Cutoffs(conf=0.3, var=0.1, percentile=90, noise_rate=0.05, n_flipped=1)
    conf = np.array([0.30, 0.30, 0.96, 0.96, 0.95, 0.5, 0.1])
    var = np.array([0.10, 0.11, 0.14, 0.15, 0.01, 0.2, 0.05])
    flags = assign_flags(conf, var, cut)
    assert isinstance(flags, pd.Categorical)
    assert list(flags.categories) == [EASY, AMBIGUOUS, HARD]
    assert list(flags) == [HARD, AMBIGUOUS, EASY, AMBIGUOUS, AMBIGUOUS, AMBIGUOUS, HARD]


def test_hard_takes_precedence_and_thresholds_are_parameters():
    cut = Cutoffs(conf=0.99, var=0.2, percentile=90, noise_rate=0.05, n_flipped=1)
    assert list(assign_flags([0.98], [0.1], cut)) == [HARD]
    assert list(assign_flags([0.8], [0.1], None, easy_conf=0.7, easy_var=0.2)) == [EASY]
    assert list(assign_flags([0.01], [0.0], None)) == [AMBIGUOUS]


#: Machado, Oliveira and Fernandes (2009) simulation matrices at full severity (linear RGB).
_DICHROMACY = {
    "protan": [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ],
    "deutan": [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ],
    "tritan": [
        [1.255528, -0.076749, -0.178779],
        [-0.078411, 0.930809, 0.147602],
        [0.004733, 0.691367, 0.303900],
    ],
    "normal": np.eye(3).tolist(),
}


def _lab(hex_colour: str, matrix) -> np.ndarray:
    """CIELAB (D65) of a colour as seen with the given dichromacy."""
    srgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    rgb = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    rgb = np.clip(np.asarray(matrix) @ rgb, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    t = xyz @ rgb / np.array([0.9505, 1.0, 1.089])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("vision", list(_DICHROMACY))
def test_flag_colours_stay_apart_for_colour_blind_eyes_and_ambiguous_is_muted(vision):
    lab = {flag: _lab(colour, _DICHROMACY[vision]) for flag, colour in FLAG_COLORS.items()}
    for a, b in ((EASY, AMBIGUOUS), (EASY, HARD), (AMBIGUOUS, HARD)):
        assert np.linalg.norm(lab[a] - lab[b]) > 30, (vision, a, b)
    chroma = {flag: np.hypot(*values[1:]) for flag, values in lab.items()}
    assert chroma[AMBIGUOUS] < 0.25 * min(chroma[EASY], chroma[HARD])

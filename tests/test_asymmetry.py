import numpy as np
import pytest

from pipeline.analysis.asymmetry import fit_curve, label_sigmas, similarity_curves
from pipeline.core.errors import DataError


def features_with_known_widths(widths, n=6000, seed=0):
    """Features whose cosine similarity to the frontal ones falls off as a Gaussian of each angle
    with the given widths: f = [cos part, sin-like parts] built from exp(-a^2 / 4 s^2)."""
    rng = np.random.default_rng(seed)
    ypr = np.zeros((n, 3))
    axis = rng.integers(0, 3, n)
    ypr[np.arange(n), axis] = rng.uniform(-60, 60, n)
    ypr[: n // 10] = rng.uniform(-1, 1, (n // 10, 3))  # frontal images
    # similarity of unit vectors u(a) = (g(a), sqrt(1 - g^2) e_k) to u(0) = (1, 0) is g(a)
    g = np.prod([np.exp(-(ypr[:, a] ** 2) / (2 * widths[a] ** 2)) for a in range(3)], axis=0)
    feats = np.zeros((n, 4))
    feats[:, 0] = g
    feats[np.arange(n), 1 + axis] = np.sqrt(1 - g**2)
    return feats, ypr


def test_fit_recovers_the_between_angle_widths():
    widths = (15.0, 30.0, 8.0)
    feats, ypr = features_with_known_widths(widths)
    curves = similarity_curves(feats, ypr, bin_width=3, tolerance=2, max_offset=60, centre_images=400)
    assert curves["centre"]["max_abs_angle"] <= 1
    fits = {a: fit_curve(curves[a]["offset"], curves[a]["similarity"]) for a in ("yaw", "pitch", "roll")}
    # the mean of unit vectors shrinks similarities within a bin a little; widths agree to ~10%
    for a, w in zip(("yaw", "pitch", "roll"), widths):
        assert fits[a]["sigma"] == pytest.approx(w, rel=0.12)
        assert abs(fits[a]["mu"]) < 2
    sig = label_sigmas(fits, mean_sigma=1.0)
    assert np.mean(sig) == pytest.approx(1.0) and sig[1] > sig[0] > sig[2]


def test_split_fit_sees_within_angle_asymmetry():
    x = np.arange(-45, 46, 3.0)
    y = np.where(x < 0, np.exp(-x**2 / (2 * 10**2)), np.exp(-x**2 / (2 * 20**2))) * 0.5 + 0.4
    split = fit_curve(x, y)["split"]
    assert split["sigma_left"] == pytest.approx(10, rel=0.05) and split["sigma_right"] == pytest.approx(20, rel=0.05)


def test_too_few_bins_is_a_clear_error():
    with pytest.raises(DataError, match="only 2 bins along an angle"):
        fit_curve([0.0, 6.0], [1.0, 0.9])


def test_moment_widths_when_least_squares_cannot_fit():
    from pipeline.analysis.asymmetry import _moments

    x = np.arange(-30, 31, 6.0)
    fit = _moments(x, np.exp(-x**2 / (2 * 9.0**2)))
    assert fit["method"] == "moments" and fit["mu"] == 0 and fit["sigma"] == pytest.approx(9.0, rel=0.15)
    assert fit["split"]["sigma_left"] == pytest.approx(fit["split"]["sigma_right"])

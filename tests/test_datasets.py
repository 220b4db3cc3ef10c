"""Toy datasets: exact mixtures and reproducible point clouds."""
import numpy as np
import pytest

import diffsde as ds


def test_eight_gaussians_is_an_exact_mixture():
    gm = ds.datasets.eight_gaussians(radius=3.0, std=0.2)
    assert gm.K == 8 and gm.d == 2 and gm.cov_kind == "isotropic"
    np.testing.assert_allclose(np.linalg.norm(gm.means, axis=1), 3.0)
    np.testing.assert_allclose(gm.weights, 1 / 8)
    np.testing.assert_allclose(gm.lambdas, 0.04)


@pytest.mark.parametrize("make", [ds.datasets.two_moons, ds.datasets.swiss_roll, ds.datasets.checkerboard])
def test_point_clouds_are_reproducible_and_shaped(make):
    a = make(1000, rng=3)
    assert a.shape == (1000, 2) and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, make(1000, rng=3))
    assert not np.array_equal(a, make(1000, rng=4))
    np.testing.assert_array_equal(make(10, rng=3), a[:10])  # a prefix: counter-based
    assert make(0, rng=0).shape == (0, 2)
    with pytest.raises(ValueError, match="n must be"):
        make(-1)


def test_two_moons_lie_on_their_half_circles():
    x = ds.datasets.two_moons(20_000, rng=1, noise=0.0)
    upper = np.abs(np.hypot(x[:, 0], x[:, 1]) - 1) < 1e-12
    lower = np.abs(np.hypot(x[:, 0] - 1, x[:, 1] - 0.5) - 1) < 1e-12
    assert np.all(upper | lower)
    assert abs(upper.mean() - 0.5) < 5 * np.sqrt(0.25 / x.shape[0])


def test_checkerboard_points_are_uniform_on_dark_squares():
    x = ds.datasets.checkerboard(40_000, rng=2)
    ij = np.floor((x + 2.0) / 1.0).astype(int)
    assert np.all((ij[:, 0] + ij[:, 1]) % 2 == 0)
    counts = np.bincount(ij[:, 0] * 4 + ij[:, 1], minlength=16)[[i * 4 + j for i in range(4) for j in range(4) if (i + j) % 2 == 0]]
    expected = x.shape[0] / 8
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected * 7 / 8))

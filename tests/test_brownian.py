"""BrownianPath: the Levy construction's increments and bridges."""
import numpy as np
import pytest

import diffsde as ds

from stats import assert_mean, assert_variance

N = 40_000


@pytest.fixture(scope="module")
def path():
    return ds.BrownianPath((N,), depth=8, rng=11)


def test_increments_at_every_level_are_independent_standard(path):
    for level in range(0, 9, 2):
        z = path.normals(2**level)
        assert z.shape == (2**level, N)
        assert_mean(z.ravel(), 0.0, 1.0)
        assert_variance(z.ravel(), 1.0)
        if level:
            r = np.mean(z[:-1] * z[1:])  # neighbouring increments
            assert abs(r) < 5 / np.sqrt(z[:-1].size)
        inc = path.increments(2**level, T=3.0)
        assert_variance(inc.ravel(), 3.0 / 2**level)


def test_coarse_increments_are_sums_of_fine_ones(path):
    fine = path.increments(256)
    for steps in (1, 4, 32, 128):
        coarse = path.increments(steps)
        summed = fine.reshape(steps, 256 // steps, N).sum(axis=1)
        np.testing.assert_allclose(coarse, summed, rtol=0, atol=1e-13)


def test_refining_never_moves_a_point(path):
    coarse = path.values(3)
    fine = path.values(7)
    np.testing.assert_array_equal(fine[:: 2**4], coarse)


def test_midpoints_follow_the_brownian_bridge(path):
    """W(1/2) - (W(0) + W(1))/2 ~ N(0, 1/4), independent of W(1); likewise
    at level 5 between its neighbours, with variance 2^-(l+1)."""
    w = path.values(5)
    h = 1 / 32
    mid = w[1::2] - 0.5 * (w[0:-1:2] + w[2::2])
    assert_mean(mid.ravel(), 0.0, np.sqrt(h / 2))
    assert_variance(mid.ravel(), h / 2)
    half = path.values(1)
    bridge = half[1] - 0.5 * (half[0] + half[2])
    assert_variance(bridge, 0.25)
    assert abs(np.corrcoef(bridge, half[2])[0, 1]) < 5 / np.sqrt(N)


def test_the_path_is_a_function_of_rng_and_shape_matters_not_for_values():
    a = ds.BrownianPath((5, 2), 4, rng=3).values(4)
    b = ds.BrownianPath((5, 2), 4, rng=3).values(4)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (17, 5, 2)
    assert not np.array_equal(a, ds.BrownianPath((5, 2), 4, rng=4).values(4))


def test_bad_arguments():
    p = ds.BrownianPath((3,), 4, rng=0)
    with pytest.raises(ValueError, match="power-of-two"):
        p.normals(12)
    with pytest.raises(ValueError, match="finer than this path's depth 4"):
        p.normals(32)
    with pytest.raises(ValueError, match="depth must be an int in"):
        ds.BrownianPath((3,), 40)

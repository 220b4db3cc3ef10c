"""The built-in score kernels' algorithms: full covariances through the
precision matrices, large dimensions one row at a time, the blocked
empirical kernel. Bits against the NumPy twins (tests/reference_scores.py)
on every SIMD path, accuracy against closed forms, and the workspace the
memory pre-check counts."""
import numpy as np
import pytest
from scipy.special import logsumexp

import diffsde as ds
from diffsde import _core

import reference
import reference_scores as twins
from conftest import on_every_simd_path


def random_full(K, d, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((K, d, d))
    covs = scale * (A @ A.transpose(0, 2, 1) / d + 0.3 * np.eye(d))
    w = rng.uniform(0.5, 1.5, K)
    return ds.GaussianMixture(w / w.sum(), 2 * rng.standard_normal((K, d)), covs)


def closed_form_mixture_score(gm, x, m, s):
    """sum_k gamma_k C_k^{-1} (m mu_k - x), C_k = m^2 Sigma_k + s^2 I, with
    solves and SciPy's logsumexp (no eigenvectors, no precision matrices)."""
    logits, per = [], []
    for k in range(gm.K):
        C = m * m * gm.covariance(k) + s * s * np.eye(gm.d)
        diff = m * gm.means[k] - x
        sol = np.linalg.solve(C, diff.T).T
        _, logdet = np.linalg.slogdet(2 * np.pi * C)
        logits.append(np.log(gm.weights[k]) - 0.5 * (logdet + np.sum(diff * sol, axis=1)))
        per.append(sol)
    logits = np.array(logits)
    gamma = np.exp(logits - logsumexp(logits, axis=0))
    return np.einsum("kn,knj->nj", gamma, np.array(per))


@pytest.mark.parametrize("d", [3, 4, 8, 9, 32, 33])
def test_full_covariance_kernels_equal_their_twins(d):
    """d = 4, 8, 32: whole blocks of four rows of P; 3, 9: a remainder; 33:
    the row kernel. 70 rows: full vectors of eight rows and a tail."""
    gm = random_full(3, d, seed=d)
    x = np.random.default_rng(100 + d).standard_normal((70, d)) * 2
    for m, s in ((0.8, 0.6), (1.0, 1e-3)):
        for dtype in (np.float64, np.float32):
            xs = x.astype(dtype)
            twin = twins.mixture_score(gm, xs, m, s)
            for path, got in on_every_simd_path(lambda: reference.score_in_c(gm, xs, m, s, dtype)).items():
                np.testing.assert_array_equal(got, twin, err_msg=f"{path}, d={d}, {np.dtype(dtype)}")


@pytest.mark.parametrize("d", [2, 8, 32, 33])
def test_full_covariance_scores_match_the_closed_form(d):
    """The precision-matrix kernel (d <= 32) and the row kernel (d = 33)
    against linear solves: the covariances have condition numbers below
    ~100, so forming P_k loses at most a few hundred ulp."""
    gm = random_full(4, d, seed=7 + d, scale=0.5)
    rng = np.random.default_rng(8 + d)
    x = gm.sample(200, rng=9).reshape(200, d) + 0.5 * rng.standard_normal((200, d))
    for m, s in ((1.0, 0.0), (0.7, 0.5), (0.1, 0.99)):
        expected = closed_form_mixture_score(gm, x, m, s)
        got = reference.score_in_c(gm, x, m, s)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-11 * scale)


def test_large_dimension_rows_equal_the_twin_with_repeated_and_distinct_variances():
    """d = 3003: the driver's blocks hold one row, which the kernel scores
    vectorized over the coordinates, forming 1/c itself (once for the
    isotropic component); the log-normalizers reuse the log of a repeated
    variance. Runs of equal variances next to distinct ones, an
    isotropic component, and blocks of 1, 7, 8 and 9 rows (the row kernel
    below 8, tiles from 8): every row equals the twin on every path."""
    rng = np.random.default_rng(21)
    d, K = 3003, 3  # 375 vectors of eight coordinates and a tail of three
    covs = np.empty((K, d))
    covs[0] = 0.5
    covs[1] = np.repeat(rng.uniform(0.1, 2.0, 31), 100)[:d]
    covs[2] = rng.uniform(0.1, 2.0, d)
    covs[2, 1000:1400] = 0.7
    gm = ds.GaussianMixture([0.2, 0.3, 0.5], rng.standard_normal((K, d)), covs)
    x = gm.with_marginal(0.8, 0.6).sample(10, rng=3)
    twin = twins.mixture_score(gm, x, 0.8, 0.6)
    table = ds.StepTable.affine([0.0], 1.0, 0.0, t=0.5, m=0.8, sd=0.6)
    for block_rows in (None, 1, 7, 8, 9):
        got = on_every_simd_path(lambda: ds.run_steps(x, table, score=gm, block_rows=block_rows).x)
        for path, out in got.items():
            np.testing.assert_array_equal(out, twin, err_msg=f"{path}, block_rows={block_rows}")


def test_empirical_bits_do_not_depend_on_threads_blocks_or_offsets():
    """Groups of four rows, a short last group, one or two threads, blocks
    of 1, 3, 5 rows or the default, and a batch scored from row 1 on: every
    row has the twin's bits."""
    rng = np.random.default_rng(5)
    data = ds.EmpiricalData(rng.standard_normal((700, 6)))
    x = rng.standard_normal((43, 6))
    twin = twins.empirical_score(data, x, 0.7, 0.3)
    table = ds.StepTable.affine([0.0], 1.0, 0.0, t=0.5, m=0.7, sd=0.3)
    try:
        for threads in (1, 2):
            ds.set_num_threads(threads)
            for block_rows in (1, 3, 5, None):
                got = ds.run_steps(x, table, score=data, block_rows=block_rows).x
                np.testing.assert_array_equal(got, twin, err_msg=f"{threads} threads, block_rows={block_rows}")
        np.testing.assert_array_equal(ds.run_steps(x[1:], table, score=data).x, twin[1:])
    finally:
        ds.set_num_threads(None)


def test_empirical_score_keeps_its_accuracy_far_from_the_origin_at_small_noise():
    """The kernel expands |x - m y|^2 around the data's centre: data 1000
    away from the origin with unit spread, at s = 1e-3 (logits ~ 1e6),
    still agrees with the difference form in NumPy to 1e-7 relative (the
    expansion about the origin would lose the logits' last ~6 digits
    there: |x|^2 eps / s^2 ~ 1e-4)."""
    rng = np.random.default_rng(6)
    points = 1000.0 + rng.standard_normal((300, 4))
    data = ds.EmpiricalData(points)
    for m, s in ((1.0, 1e-3), (0.999, 0.03), (0.9, 0.5)):
        x = m * points[rng.integers(0, 300, 50)] + s * rng.standard_normal((50, 4))
        expected = data.score_at(x, m, s)
        got = reference.score_in_c(data, x, m, s)
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7 * np.abs(expected).max())


def test_empirical_weights_of_far_points_are_zero_and_skipped_exactly():
    """At tiny s most weights underflow to 0 and the kernel skips their
    points; one point sits exactly on a row (its score is then exactly 0
    in every coordinate: +0, never -0) and the rest equal the twin."""
    rng = np.random.default_rng(7)
    points = rng.standard_normal((1000, 3)) * 5
    data = ds.EmpiricalData(points)
    _, (_, _, _, center) = data.c_params(3)
    x = np.concatenate([points[:20] + 1e-4 * rng.standard_normal((20, 3)), center[None]])
    for path, got in on_every_simd_path(lambda: reference.score_in_c(data, x, 1.0, 1e-3)).items():
        np.testing.assert_array_equal(got, twins.empirical_score(data, x, 1.0, 1e-3), err_msg=path)


def test_workspace_follows_the_block_not_the_data():
    """The empirical kernel needs the same workspace for a block of 1 row or
    of 4096 rows, and none of it grows with the number of points; the
    mixture at d = 65,536 asks for 1/c (K d) and one row."""
    data = ds.EmpiricalData(np.zeros((5000, 64)))
    kind, params = data.c_params(64)
    sizes = {rows: _core.score_work_size(kind, params, 64, rows) for rows in (1, 4, 64, 4096)}
    assert len(set(sizes.values())) == 1, sizes
    assert sizes[1] < 4 * (4 * 64 + 256 + 8) + 256 + 1
    d, K = 65_536, 8
    gm = ds.GaussianMixture(np.full(K, 1 / K), np.zeros((K, d)), np.full(K, 0.5))
    kind, params = gm.c_params(d)
    assert _core.score_work_size(kind, params, d, 1) <= K * d + 2 * d + 2 * K + 2


@pytest.mark.parametrize("d", [1, 2, 3, 1000, 4097, 65_536])
def test_isotropic_log_normalizers_have_the_bits_of_the_sequential_sum(d):
    """A component with one variance sums its d equal log terms in a few
    steps per binade (csrc/scores.c, repeat_add) instead of d additions;
    the twin adds them one by one. Terms of both signs, one near 0 (c near
    1/(2 pi)), one large; two components with a common mean whose
    responsibilities are near 1/2 at the rows chosen, so that one ulp of a
    log-normalizer moves the output's last bits."""
    rng = np.random.default_rng(d)
    for v1, v2 in ((1.0, 1.3), (1e-3, 2e-3), (1 / (2 * np.pi), 0.2), (1e4, 3e4), (0.15915, 7.0)):
        gm = ds.GaussianMixture([0.5, 0.5], np.zeros((2, d)), [v1, v2])
        # |x|^2 where the two log densities cross, spread a little
        r2 = d * np.log(v2 / v1) / (1 / v1 - 1 / v2)
        dirs = rng.standard_normal((20, d))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        x = dirs * np.sqrt(r2 * rng.uniform(0.999, 1.001, 20))[:, None]
        twin = twins.mixture_score(gm, x, 1.0, 0.0)
        for path, got in on_every_simd_path(lambda: reference.score_in_c(gm, x, 1.0, 0.0)).items():
            np.testing.assert_array_equal(got, twin, err_msg=f"{path}, v = {v1}, {v2}")


@pytest.mark.parametrize("d", [8, 13, 64])
def test_empirical_kernel_equals_its_twin_with_vectors_of_coordinates(d):
    """d >= 8: the weighted sums run eight coordinates at a time in vector
    registers (then a tail of d mod 8); 600 points cross a pass of 256 and
    end in a partial vector of points; 23 rows end in a short group."""
    rng = np.random.default_rng(40 + d)
    data = ds.EmpiricalData(rng.standard_normal((600, d)) + 3.0)
    for m, s in ((0.9, 0.2), (0.5, 0.9)):
        x = m * data.points[rng.integers(0, 600, 23)] + s * rng.standard_normal((23, d))
        for dtype in (np.float64, np.float32):
            xs = x.astype(dtype)
            twin = twins.empirical_score(data, xs, m, s)
            for path, got in on_every_simd_path(lambda: reference.score_in_c(data, xs, m, s, dtype)).items():
                np.testing.assert_array_equal(got, twin, err_msg=f"{path}, d={d}, {np.dtype(dtype)}")

"""The built-in mixture and empirical scores against their NumPy twins
(tests/reference_scores.py), bit for bit, on every SIMD path and in float64
and float32.

The C score is read through one affine row x <- 0 x + 1 score(x) + 0 z
(``reference.score_in_c``): both products are exact and the sum adds 0, so
the state after the row is the kernel's output itself. Nothing here is
compared to a tolerance: the twins repeat the kernels' double arithmetic in
the kernels' order and call the same exp and log (the table exp of
csrc/fastmath.h for the isotropic/diagonal weights; the C library's exp and
log, through Python's math module, elsewhere), so any change to a kernel's
formula, order or exp shows up as changed bits.
"""
import math

import numpy as np
import pytest

import diffsde as ds
from diffsde._rng import key_from_rng

from conftest import on_every_simd_path

import reference
import reference_scores as twins

DTYPES = (np.float64, np.float32)
# (m, s): the data law itself (s = 0), mid-diffusion, near the prior, and a
# tiny noise level (sharp responsibilities)
MARGINALS = ((1.0, 0.0), (0.8, 0.6), (0.05, 0.9987492177719088), (1.0, 1e-3))
ROWS = 131  # two full tiles of 64 rows and a short one


def make_mixture(kind, K, d, separated, seed):
    """A random mixture: well separated (means ~ 8 apart, variances ~ 0.05)
    or overlapping (means ~ 0.5 apart, variances ~ 1); with K >= 3 one
    weight is 1e-300 and one 1e-9, with K = 8 one weight is exactly 0."""
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(K))
    if K >= 3:
        w[0], w[1] = 1e-300, 1e-9
    if K == 8:
        w[2] = 0.0
    w /= w.sum()
    spread, var = (8.0, 0.05) if separated else (0.5, 1.0)
    means = rng.standard_normal((K, d)) * spread
    if kind == "isotropic":
        covs = var * rng.uniform(0.5, 2.0, K)
    elif kind == "diagonal":
        covs = var * rng.uniform(0.2, 3.0, (K, d))
    else:
        A = rng.standard_normal((K, d, d))
        covs = var * (A @ A.transpose(0, 2, 1) / d + 0.2 * np.eye(d))
    return ds.GaussianMixture(w, means, covs)


def states(gm, m, s, seed):
    """ROWS states: draws of the marginal (near the components), the same
    moved 30 times further out (far: responsibilities 0 or 1, weights
    clamped at -750), and a few rows very far away."""
    rng = np.random.default_rng(seed)
    near = gm.with_marginal(m, max(s, 1e-3)).sample(ROWS // 2, rng=seed).reshape(-1, gm.d)
    far = 30.0 * near[: ROWS - ROWS // 2 - 5] + rng.standard_normal((ROWS - ROWS // 2 - 5, gm.d))
    very_far = rng.standard_normal((5, gm.d)) * 1e4
    return np.concatenate([near, far, very_far])


@pytest.mark.parametrize("separated", [True, False], ids=["separated", "overlapping"])
@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("K", [1, 3, 8])
@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
def test_mixture_score_equals_its_twin_bit_for_bit(kind, K, d, separated):
    seed = 1000 * K + 10 * d + separated + {"isotropic": 0, "diagonal": 300, "full": 600}[kind]
    gm = make_mixture(kind, K, d, separated, seed)
    for i, (m, s) in enumerate(MARGINALS):
        x = states(gm, m, s, seed + i)
        for dtype in DTYPES:
            xs = x.astype(dtype)
            twin = twins.mixture_score(gm, xs, m, s)
            assert twin.dtype == dtype
            runs = on_every_simd_path(lambda: reference.score_in_c(gm, xs, m, s, dtype))
            for path, got in runs.items():
                np.testing.assert_array_equal(got, twin, err_msg=f"{path}, {np.dtype(dtype)}, m={m}, s={s}")


def test_mixture_bits_do_not_depend_on_the_block_or_the_tile_width():
    """Blocks of 1, 5 and 64 rows give tiles of those widths (one copy of
    the kernel with a constant trip count, the others sized to the block):
    each row still equals its twin."""
    gm = make_mixture("diagonal", 3, 2, False, 7)
    x = states(gm, 0.8, 0.6, 8)
    twin = twins.mixture_score(gm, x, 0.8, 0.6)
    table = ds.StepTable.affine([0.0], 1.0, 0.0, t=0.5, m=0.8, sd=0.6)
    for block_rows in (1, 5, 64, None):
        got = on_every_simd_path(lambda: ds.run_steps(x, table, score=gm, block_rows=block_rows).x)
        for path, out in got.items():
            np.testing.assert_array_equal(out, twin, err_msg=f"{path}, block_rows={block_rows}")


def test_the_mixture_weights_go_through_the_table_exp():
    """The table exp of csrc/fastmath.h, seen through the C mixture score.

    - sweep: two unit components 40 apart; the logit gap 40 x - 800 sweeps
      [-800, 0] over x in [0, 20], through the clamp at -750 and the
      subnormal weights;
    - cancel: two unit components at -1 and 1, x in [-1/2, 1/2], where the
      score -x + tanh(x) cancels, so a 1-ulp change of a weight changes the
      output (about 1 row in 10 differs between the table exp and libm's exp);
    - subnormal: a component of weight 1e-300 and variance 1e-300 next to a
      broad one (variance 1e300, whose own score underflows to 0), with
      logit gaps in [-745, -708]: the output is the subnormal weight times a
      score near 1e151, so the subnormal's bits are the output's bits.

    The C output equals the twin with the table exp on every path and, for
    the last two, differs from the same twin with libm's exp in many rows:
    the comparison sees which exp the kernel evaluates."""
    rng = np.random.default_rng(31)
    cases = (
        (ds.GaussianMixture([0.5, 0.5], [[0.0], [40.0]], [1.0, 1.0]), np.linspace(0.0, 20.0, 4001), 0),
        (ds.GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [1.0, 1.0]), rng.uniform(-0.5, 0.5, 4000), 200),
        (ds.GaussianMixture([1 - 1e-300, 1e-300], [[0.0], [38.6e-150]], [1e300, 1e-300]),
         38.6e-150 - rng.uniform(37.6e-150, 38.6e-150, 1000), 10),
    )
    for gm, x, min_differ in cases:
        table = twins.mixture_score(gm, x, 1.0, 0.0)
        libm = twins.mixture_score(gm, x, 1.0, 0.0, exp=twins.libm_exp)
        assert np.count_nonzero(table != libm) >= min_differ
        for path, got in on_every_simd_path(lambda: reference.score_in_c(gm, x, 1.0, 0.0)).items():
            np.testing.assert_array_equal(got, table, err_msg=path)


@pytest.mark.parametrize("kind", ["diagonal", "full", "empirical"])
def test_blocks_whose_weights_all_stay_above_e_to_the_minus_708_keep_the_bits(kind):
    """The kernels weigh a block whose log-weights are all >= -708 with a
    shorter exp (one scaling by 2^e instead of two factors) and any other
    block with the full one: the bits must be the twin's either way. Two
    equal-weight points 40 apart with unit variances, so the log-weight gap
    of a row at (x, 0) is 40 x - 800; for full covariances R diag(1, 4) R^T
    (R a rotation, not diagonal in the axes) and points 56 apart, the gap is
    0.52 (56 x - 56^2/2). The first x range puts every gap in [-708, 0] (the
    short exp in every block: scaling bias or shift mistakes change bits);
    the second every gap in [-738, -710] (the full exp in every block: a
    lower floor would feed them to the short exp, whose 2^e is no double
    there); the third crosses -708 inside blocks (both exps)."""
    rng = np.random.default_rng(17)
    ranges = ((2.3, 20.0), (1.55, 2.25), (1.3, 2.5))
    m, s = 1.0, 0.0
    if kind == "empirical":
        score = ds.EmpiricalData([[0.0, 0.0], [40.0, 0.0]])
        m, s = 1.0, 1.0  # s^2 = 1: the same gaps
    elif kind == "full":
        rotation = np.array([[0.6, -0.8], [0.8, 0.6]])
        cov = rotation @ np.diag([1.0, 4.0]) @ rotation.T
        score = ds.GaussianMixture([0.5, 0.5], [[0.0, 0.0], [56.0, 0.0]], [cov, cov])
        ranges = ((3.7, 28.0), (2.67, 3.62), (2.5, 4.5))
    else:
        score = ds.GaussianMixture([0.5, 0.5], [[0.0, 0.0], [40.0, 0.0]], [1.0, 1.0])
    assert kind != "full" or score.vectors is not None
    twin_of = twins.empirical_score if kind == "empirical" else twins.mixture_score
    for low, high in ranges:
        x = np.column_stack([rng.uniform(low, high, 5000), np.zeros(5000)])
        twin = twin_of(score, x, m, s)
        runs = on_every_simd_path(lambda: reference.score_in_c(score, x, m, s))
        for path, got in runs.items():
            np.testing.assert_array_equal(got, twin, err_msg=f"{path}, x in [{low}, {high}]")


def test_full_covariance_weights_use_the_table_exp_in_the_tile_kernel_and_libm_above():
    """Full covariances up to d = 32 go through the precision matrices and the
    tile kernel, which weighs with the table exp; larger ones stay with the
    row kernel and the C library's exp. Two rotated components at -u/2 and u/2
    (u = (1, ..., 1)) with x between them (the score cancels, so a 1-ulp
    change of a weight shows): the C output equals the twin with the exp of
    its kernel and differs from the twin with the other exp in many rows, on
    every SIMD path."""
    rng = np.random.default_rng(13)
    for d, own, other in ((2, reference.exp_nonpositive, twins.libm_exp),
                          (33, twins.libm_exp, reference.exp_nonpositive)):
        A = rng.standard_normal((d, d))
        cov = A @ A.T / d + 0.5 * np.eye(d)
        gm = ds.GaussianMixture([0.5, 0.5], [-0.5 * np.ones(d), 0.5 * np.ones(d)], [cov, cov])
        x = rng.uniform(-0.5, 0.5, (4000 if d == 2 else 300, d))
        expected = twins.mixture_score(gm, x, 1.0, 0.0, exp=own)
        swapped = twins.mixture_score(gm, x, 1.0, 0.0, exp=other)
        assert np.count_nonzero(np.any(swapped != expected, axis=1)) >= x.shape[0] // 20
        np.testing.assert_array_equal(twins.mixture_score(gm, x, 1.0, 0.0), expected)
        for path, got in on_every_simd_path(lambda: reference.score_in_c(gm, x, 1.0, 0.0)).items():
            np.testing.assert_array_equal(got, expected, err_msg=f"{path}, d={d}")


@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("n", [1, 7, 300, 600])
def test_empirical_score_equals_its_twin_bit_for_bit(n, d):
    """Points streamed in passes of 256 (n = 300, 600 cross a pass); a small
    s makes the running log-sum-exp rescale often."""
    rng = np.random.default_rng(100 * n + d)
    data = ds.EmpiricalData(rng.standard_normal((n, d)) * 2)
    for i, (m, s) in enumerate(((0.9, 0.05), (0.7, 0.7), (0.01, 1.0))):
        near = m * data.points[rng.integers(0, n, 40)] + s * rng.standard_normal((40, d))
        x = np.concatenate([near, rng.standard_normal((30, d)) * 20])
        for dtype in DTYPES:
            xs = x.astype(dtype)
            twin = twins.empirical_score(data, xs, m, s)
            for path, got in on_every_simd_path(lambda: reference.score_in_c(data, xs, m, s, dtype)).items():
                np.testing.assert_array_equal(got, twin, err_msg=f"{path}, {np.dtype(dtype)}, m={m}, s={s}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_whole_run_with_mixture_and_empirical_scores_equals_the_twins(dtype):
    """Affine rows with noise, a Heun pair and a Langevin corrector, driven
    by the built-in scores, against reference.run_table calling the twins."""
    n = 5
    h = 1.0 / n
    t = 1.0 - h * np.arange(n)
    m, s = np.exp(-t), np.sqrt(1 - np.exp(-2 * t))
    te = t - 0.5 * h  # s(te) > 0: the empirical score needs it
    m_end, s_end = np.exp(-te), np.sqrt(1 - np.exp(-2 * te))
    affine = ds.StepTable.affine(1 + 0.5 * h, h, np.sqrt(h), t=t, m=m, sd=s)
    heun = ds.StepTable.heun(1 + 0.5 * h, 0.5 * h, 1 + 0.4 * h, 0.5 * h, t=t, t_end=te,
                             m=m, sd=s, m_end=m_end, sd_end=s_end)
    langevin = ds.StepTable.langevin(0.9, 0.16, t=te, m=m_end, sd=s_end, interval=np.arange(n))
    table = ds.StepTable.concat(ds.StepTable.interleave(affine, langevin), heun)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((70, 2)).astype(dtype)
    gm = make_mixture("diagonal", 3, 2, False, 21)
    data = ds.EmpiricalData(rng.standard_normal((40, 2)))
    for score, twin in ((gm, twins.mixture_score), (data, twins.empirical_score)):
        expected = reference.run_table(x, table, key_from_rng(9),
                                       score=lambda v, t_, m_, s_: twin(score, v, m_, s_))[-1]
        for path, got in on_every_simd_path(lambda: ds.run_steps(x, table, score=score, rng=9).x).items():
            np.testing.assert_array_equal(got, expected, err_msg=path)


@pytest.mark.parametrize("key, stream, k, j0, n", [(0, 0, 0, 0, 1), (2**64 - 1, 1, 1, 1, 257),
                                                  (123456789, 7, 2**32 - 1, 2**40 + 1, 64)])
def test_uniforms_equal_their_twin_bit_for_bit(key, stream, k, j0, n):
    """The float64 uniforms (mixture sampling, datasets) against a twin
    built on the independent Philox of tests/reference_rng.py; odd j0 starts
    in the middle of a Philox block."""
    from diffsde import _core

    got = np.empty(n)
    _core.fill_uniform(got, key, stream, k, j0)
    np.testing.assert_array_equal(got, reference.uniforms(key, stream, k, np.arange(j0, j0 + n, dtype=np.uint64)))

"""Exact scores of known data: Gaussian mixtures and empirical data, in NumPy
and fused in C, against SciPy, finite differences, slow twins and sampling."""
import numpy as np
import pytest
from scipy import stats as sps

import diffsde as ds

import reference
from conftest import SUB, VP
from stats import assert_mean, assert_variance, sliced_wasserstein

VE = ds.VESDE(0.05, 10.0)


def random_spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.3 * np.eye(d)


def mixture(kind, d, K=3, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 1.5, K)
    w /= w.sum()
    means = 2 * rng.standard_normal((K, d))
    covs = {"isotropic": rng.uniform(0.2, 1.0, K), "diagonal": rng.uniform(0.2, 1.0, (K, d)),
            "full": np.stack([random_spd(rng, d) for _ in range(K)])}[kind]
    return ds.GaussianMixture(w, means, covs)


KINDS = ["isotropic", "diagonal", "full"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", [1, 2, 5])
def test_single_component_logpdf_and_score_match_scipy(kind, d):
    gm = mixture(kind, d, K=1)
    x = gm.means[0] + np.random.default_rng(1).standard_normal((20, d))
    ref = sps.multivariate_normal(gm.means[0], gm.covariance(0))
    np.testing.assert_allclose(gm.logpdf(x), ref.logpdf(x), rtol=1e-12)
    m, s = 0.7, 0.4
    cov_t = m * m * gm.covariance(0) + s * s * np.eye(d)
    expected = np.linalg.solve(cov_t, (m * gm.means[0] - x).T).T
    np.testing.assert_allclose(gm.score_at(x, m, s).reshape(20, d), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", [1, 2, 5])
def test_scores_are_gradients_of_the_marginal_logpdf(kind, d):
    gm = mixture(kind, d)
    x = np.random.default_rng(2).standard_normal((10, d)) * 2
    for process, t in ((VP, 0.3), (VE, 0.6), (SUB, 0.8)):
        m, s = process.marginal_coefficients(t)
        marg = gm.marginal_law(process, t)
        h = 1e-5
        fd = np.stack([(marg.logpdf(x + h * e) - marg.logpdf(x - h * e)) / (2 * h) for e in np.eye(d)], axis=1)
        exact = gm.score(process)(x if d > 1 else x[:, 0], t).reshape(10, d)
        np.testing.assert_allclose(exact, fd, rtol=1e-6, atol=1e-7)
        in_c = reference.score_in_c(gm.score(process), x if d > 1 else x[:, 0], m, s).reshape(10, d)
        np.testing.assert_allclose(in_c, exact, rtol=1e-12, atol=1e-12)
        in_c32 = reference.score_in_c(gm.score(process), x if d > 1 else x[:, 0], m, s, np.float32)
        np.testing.assert_allclose(in_c32.reshape(10, d), exact, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("process", [VP, VE, SUB, ds.DDPM.from_sde(VP, 50), ds.SMLD.from_sde(VE, 50)],
                         ids=["vp", "ve", "subvp", "ddpm", "smld"])
def test_marginal_matches_perturbed_samples(process):
    gm = mixture("full", 2, seed=3)
    n = 200_000
    x0 = gm.sample(n, rng=4)
    t = 25 if isinstance(process, (ds.DDPM, ds.SMLD)) else 0.5
    if isinstance(process, (ds.DDPM, ds.SMLD)):
        m, s = process.marginal_coefficients(t)
        xt = m * x0 + s * ds.standard_normal(x0.shape, rng=5)
    else:
        xt = process.perturb(x0, t, rng=5)
    marg = gm.marginal_law(process, t)
    mean = marg.weights @ marg.means
    second = sum(w * (marg.covariance(k) + np.outer(mu, mu)) for k, (w, mu) in enumerate(zip(marg.weights, marg.means)))
    cov = second - np.outer(mean, mean)
    assert_mean(xt, mean, np.sqrt(np.diag(cov)))
    assert_variance(xt @ [1.0, 0.0], cov[0, 0] * 1.0, z=5 * np.sqrt(1.5))  # mixtures: kurtosis > 3
    assert_variance(xt @ [0.0, 1.0], cov[1, 1], z=5 * np.sqrt(1.5))


def test_samples_have_the_mixture_law():
    gm = mixture("full", 2, seed=6)
    x = gm.sample(200_000, rng=7)
    mean = gm.weights @ gm.means
    second = sum(w * (gm.covariance(k) + np.outer(mu, mu)) for k, (w, mu) in enumerate(zip(gm.weights, gm.means)))
    cov = second - np.outer(mean, mean)
    assert_mean(x, mean, np.sqrt(np.diag(cov)))
    assert_variance(x[:, 0], cov[0, 0], z=5 * np.sqrt(1.5))
    assert_variance(x[:, 1], cov[1, 1], z=5 * np.sqrt(1.5))
    bimodal = ds.datasets.bimodal_1d()
    y = bimodal.sample(100_000, rng=8)
    assert y.shape == (100_000,)
    p = np.mean(y > 0)
    assert abs(p - 0.5) < 5 * np.sqrt(0.25 / y.size)
    np.testing.assert_array_equal(gm.sample(10, rng=9), gm.sample(10, rng=9))


def test_reverse_sampling_of_eight_gaussians_with_the_exact_score():
    gm = ds.datasets.eight_gaussians()
    n = 40_000
    x_T = gm.marginal_law(VP, 1.0).sample(n, rng=10)
    tr = ds.reverse(VP, gm, x_T, 500, rng=11)
    comp = np.linalg.norm(tr.x[:, None, :] - gm.means[None], axis=2).argmin(axis=1)
    share = np.bincount(comp, minlength=8) / n
    assert np.all(np.abs(share - 1 / 8) < 5 * np.sqrt((1 / 8) * (7 / 8) / n))
    radius = np.linalg.norm(tr.x, axis=1)
    assert abs(radius.mean() - 2.0) < 0.02
    floors = [sliced_wasserstein(gm.sample(n, rng=20 + i), gm.sample(n, rng=30 + i)) for i in range(3)]
    distance = sliced_wasserstein(tr.x, gm.sample(n, rng=12))
    # The components sit 0.77 apart with std 0.1, so near the end each sample
    # follows its own component's linear score: the within-component std is
    # then that of reverse EM on one Gaussian N(mu, 0.1^2), whose variance the
    # moment recursion v <- (a + b l)^2 v + c^2 gives exactly (a, b, c written
    # out here from the reverse SDE, not taken from the package). The allowance
    # comes from theory and the sample size, never from the output under test.
    predicted = _reverse_em_std_of_one_gaussian(std=0.1, steps=500)
    within = np.std(tr.x - gm.means[comp])
    assert abs(within - predicted) < 5 * 0.1 / np.sqrt(2 * tr.x.size)
    assert distance < 2 * max(floors) + abs(predicted - 0.1)


def _reverse_em_std_of_one_gaussian(std, steps, beta_min=0.1, beta_max=20.0):
    """Std after reverse EM (alpha = 1) on VP from the exact marginal at T, for data N(0, std^2)."""
    t = np.arange(steps + 1) / steps
    beta = beta_min + (beta_max - beta_min) * t
    big_b = beta_min * t + 0.5 * (beta_max - beta_min) * t * t
    m2, s2 = np.exp(-big_b), -np.expm1(-big_b)
    var = m2[-1] * std**2 + s2[-1]
    for k in range(steps, 0, -1):
        h = t[k] - t[k - 1]
        slope = -1.0 / (m2[k] * std**2 + s2[k])  # the score's slope in x
        a = 1 + 0.5 * beta[k] * h + beta[k] * h * slope
        var = a * a * var + beta[k] * h
    return np.sqrt(var)


def test_empirical_score_matches_the_slow_twin_and_collapses_onto_the_data():
    points = ds.datasets.two_moons(300, rng=13)
    data = ds.EmpiricalData(points)
    x = np.random.default_rng(14).standard_normal((50, 2))
    for m, s in ((1.0, 0.05), (0.6, 0.8), (0.01, 1.0)):
        twin = reference.empirical_score(x, points, m, s)
        np.testing.assert_allclose(data.score_at(x, m, s), twin, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(reference.score_in_c(data, x, m, s), twin, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(reference.score_in_c(data, x, m, s, np.float32), twin, rtol=1e-4, atol=1e-4)
    # Reverse to t = 1e-4 on a geometric grid: p_t there is the data blurred
    # by s(t) ~ 3e-3, so the distance to the nearest point is Rayleigh, with
    # median s sqrt(2 log 2), ten times below the spacing of the points.
    x_T = VP.prior_sample((2000, 2), rng=15)
    tr = ds.reverse(VP, data, x_T, ts=np.geomspace(1.0, 1e-4, 200), method="em", alpha=0.0)
    nearest = np.min(np.linalg.norm(tr.x[:, None, :] - points[None], axis=2), axis=1)
    spacing = np.median(np.sort(np.linalg.norm(points[:, None] - points[None], axis=2), axis=1)[:, 1])
    rayleigh_median = VP.marginal_coefficients(1e-4)[1] * np.sqrt(2 * np.log(2))
    assert 0.8 * rayleigh_median < np.median(nearest) < 1.5 * rayleigh_median < spacing / 4


def test_stability_far_away_tiny_covariances_and_many_components():
    gm = mixture("full", 2, seed=16)
    far = gm.means[0] + 1e3 * np.array([[1.0, -1.0], [50.0, 3.0]])
    for x in (far, far.astype(np.float32)):
        s = reference.score_in_c(gm.score(VP), x, *VP.marginal_coefficients(0.4), x.dtype)
        assert np.all(np.isfinite(s))
    np.testing.assert_allclose(gm.score_at(far, 1.0, 0.0), reference.score_in_c(gm, far, 1.0, 0.0), rtol=1e-9)
    tiny = ds.GaussianMixture([0.5, 0.5], [[0.0], [1.0]], [1e-6, 1e-6])
    x = np.array([0.0, 1e-3, 0.5, 1.0, 2.0])
    for got in (tiny.score_at(x, 1.0, 0.0), reference.score_in_c(tiny, x, 1.0, 0.0)):
        assert np.all(np.isfinite(got))
        assert got[1] == pytest.approx(-1e-3 / 1e-6, rel=1e-9)
    rng = np.random.default_rng(17)
    many = ds.GaussianMixture(np.full(100, 0.01), rng.standard_normal((100, 3)) * 5, rng.uniform(0.1, 1, 100))
    x = rng.standard_normal((30, 3)) * 10
    np.testing.assert_allclose(reference.score_in_c(many, x, 0.8, 0.3), many.score_at(x, 0.8, 0.3), rtol=1e-9, atol=1e-12)


def test_bad_mixtures_and_bindings_raise_clear_errors():
    with pytest.raises(ValueError, match="weights must be >= 0"):
        ds.GaussianMixture([-0.1, 1.1], [[0.0], [1.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="sum to 1"):
        ds.GaussianMixture([0.5, 0.6], [[0.0], [1.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"covs\[1\] is not positive definite"):
        ds.GaussianMixture([0.5, 0.5], [[0.0, 0], [1.0, 0]], [np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match=r"covs\[0\] is not symmetric"):
        ds.GaussianMixture([1.0], [[0.0, 0]], [[[1.0, 0.5], [0.0, 1.0]]])
    with pytest.raises(ValueError, match=r"covs\[1\] is not positive definite"):
        ds.GaussianMixture([0.5, 0.5], [[0.0], [1.0]], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"means must have shape \(K, d\)"):
        ds.GaussianMixture([0.5, 0.5], [0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"diagonal covs must have shape"):
        ds.GaussianMixture([0.5, 0.5], [[0.0, 0], [1.0, 0]], np.ones((2, 3)))
    gm = mixture("diagonal", 2)
    with pytest.raises(ValueError, match="bound to"):
        ds.reverse(VE, gm.score(VP), np.zeros((3, 2)), 5)
    with pytest.raises(ValueError, match="d = 2"):
        ds.reverse(VP, gm, np.zeros((3, 3)), 5)
    with pytest.raises(ValueError, match="needs s\\(t\\) > 0"):
        ds.run_steps(np.zeros((2, 2)), ds.StepTable.affine([1.0], 0.1, 0.0, m=1.0, sd=0.0),
                     score=ds.EmpiricalData(np.zeros((3, 2))))


def test_every_simd_path_gives_the_same_mixture_bits():
    gm = ds.datasets.eight_gaussians()
    x_T = gm.marginal_law(VP, 1.0).sample(3001, rng=40)  # not a multiple of the tile
    diag = mixture("diagonal", 3, K=5, seed=41)
    y = np.random.default_rng(42).standard_normal((777, 3)) * 3
    before = ds.get_simd_path()
    runs = {}
    try:
        for path in ds.simd_paths():
            ds.set_simd_path(path)
            runs[path] = (ds.reverse(VP, gm, x_T, 50, rng=43).x,
                          reference.score_in_c(diag, y, 0.6, 0.5),
                          reference.score_in_c(diag, y.astype(np.float32), 0.6, 0.5, np.float32))
    finally:
        ds.set_simd_path(before)
    for path, result in runs.items():
        for got, base in zip(result, runs["baseline"]):
            np.testing.assert_array_equal(got, base)


def test_the_table_exp_is_within_one_ulp_of_the_correctly_rounded_value():
    # the long-double exp rounded once to double: the nearest double to e^x but
    # in the rare case of a long-double result on a tie (below 2^-60 relative)
    x = np.concatenate([np.linspace(-708, 0, 200_001), -np.logspace(-300, 2.85, 100_000)])
    ours = reference.exp_nonpositive(x)
    rounded = np.exp(x.astype(np.longdouble)).astype(np.float64)
    ulps = np.abs(ours - rounded) / np.spacing(rounded)
    assert np.max(ulps) <= 1
    assert np.mean(ulps == 0) > 0.8  # measured 0.83: T_j's rounding and the last sum's


def test_the_exp_table_in_csrc_is_the_generated_one():
    """csrc/exp2_table.h is tools/make_exp_table.py's output, and its values are
    2^(j/128) correctly rounded, computed again here (reference.exp2_table)."""
    import importlib.util
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("make_exp_table", root / "tools" / "make_exp_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = (root / "csrc" / "exp2_table.h").read_text()
    assert text == tool.header_text()
    values = [float.fromhex(v) for v in re.findall(r"0x[0-9a-f.]+p[+-]\d+", text)]
    np.testing.assert_array_equal(values, reference.exp2_table())
    exact = np.exp2(np.arange(128, dtype=np.longdouble) / 128)
    assert np.max(np.abs(np.array(values) - exact) / np.spacing(np.array(values))) <= 0.5 + 1e-3

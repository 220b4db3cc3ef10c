"""Issue 14 (first contact), the API part: argument errors that name the
argument, consistent option handling, and the conventions where diffsde
follows a peer (Ho et al. 2020 / diffusers, score_sde) by default."""
import math

import numpy as np
import pytest

import diffsde as ds

import reference
from stats import assert_mean, assert_variance, fitted_slope

MU, V0 = 1.5, 0.25
VP, VE = ds.VPSDE(0.1, 20.0), ds.VESDE(0.01, 20.0)
X = np.linspace(-2.0, 2.0, 8)


def exact_score(v, t):
    """The VP score of N(MU, V0) data as a plain callable (t as given)."""
    m, s = VP.marginal_coefficients(t)
    return (m * MU - v) / (m * m * V0 + s * s)


# ---- 1. every real keyword goes through one check that names it ----------------

SMLD_20 = ds.SMLD.from_sde(VE, 20)
GM = ds.GaussianMixture([1.0], [[0.0]], [1.0])

KEYWORDS = [
    # (label, call taking the bad value, argument name, bad values that must raise)
    ("reverse alpha", lambda v: ds.reverse(VP, exact_score, X, 4, alpha=v), "alpha", ["fast", None, math.nan, math.inf, -1.0, 1j]),
    ("reverse eta", lambda v: ds.reverse(VP, exact_score, X, 4, method="ddim", eta=v), "eta", ["x", math.nan, math.inf, -0.5]),
    ("reverse t_start", lambda v: ds.reverse(VP, exact_score, X, 4, t_start=v), "t_start", ["a", math.nan, math.inf, -1.0, 0.0]),
    ("reverse t_end", lambda v: ds.reverse(VP, exact_score, X, 4, t_end=v), "t_end", ["a", math.nan, math.inf, -1.0]),
    ("reverse snr", lambda v: ds.reverse(VP, exact_score, X, 4, corrector="langevin", snr=v), "snr", ["a", math.nan, math.inf, -1.0, 0.0]),
    ("reverse n_corrector_steps", lambda v: ds.reverse(VP, exact_score, X, 4, corrector="langevin", n_corrector_steps=v), "n_corrector_steps", ["a", 1.5, -1, 0]),
    ("reverse steps", lambda v: ds.reverse(VP, exact_score, X, v), "steps", ["a", 2.0, -1, 0]),
    ("reverse last_step_noise", lambda v: ds.reverse(VP, exact_score, X, 4, method="ancestral", last_step_noise=v), "last_step_noise", ["yes", None, 1]),
    ("reverse corrector_at_start", lambda v: ds.reverse(VP, exact_score, X, 4, corrector="langevin", corrector_at_start=v), "corrector_at_start", ["yes", None, 0]),
    ("reverse shape", lambda v: ds.reverse(VP, exact_score, shape=v, steps=4), "shape", ["a", (2.5,), (4, None), (-1,)]),
    ("reverse ts", lambda v: ds.reverse(VP, exact_score, X, ts=v), "ts", [["a", "b"], [1.0, None, 0.0], [1.0, math.nan, 0.0]]),
    ("forward ts", lambda v: ds.forward(VP, X, ts=v), "ts", [["a", "b"], [0.0, math.nan, 1.0], [0.0, math.inf]]),
    ("forward t0", lambda v: ds.forward(VP, X, 4, t0=v), "t0", ["a", None, math.nan, math.inf, -1.0]),
    ("forward t1", lambda v: ds.forward(VP, X, 4, t1=v), "t1", ["a", math.nan, math.inf, -1.0]),
    ("forward steps", lambda v: ds.forward(VP, X, v), "steps", ["a", 2.0, -1, 0]),
    ("VPSDE beta_min", lambda v: ds.VPSDE(beta_min=v), "beta_min", ["a", None, math.nan, math.inf, -1.0, 0.0]),
    ("VPSDE beta_max", lambda v: ds.VPSDE(beta_max=v), "beta_max", ["a", None, math.nan, math.inf, -1.0]),
    ("VPSDE T", lambda v: ds.VPSDE(T=v), "T", ["a", None, math.nan, math.inf, -1.0, 0.0]),
    ("cosine s", lambda v: ds.VPSDE.cosine(s=v), "s", ["a", None, math.nan, math.inf, -1.0]),
    ("cosine max_beta", lambda v: ds.VPSDE.cosine(max_beta=v), "max_beta", ["a", None, math.nan, -1.0]),
    ("VESDE sigma_min", lambda v: ds.VESDE(sigma_min=v), "sigma_min", ["a", None, math.nan, math.inf, -1.0]),
    ("VESDE sigma_max", lambda v: ds.VESDE(sigma_max=v), "sigma_max", ["a", None, math.nan, math.inf]),
    ("SubVPSDE beta_min", lambda v: ds.SubVPSDE(beta_min=v), "beta_min", ["a", None, math.nan]),
    ("SMLD sigma0", lambda v: ds.SMLD([0.1, 0.2], sigma0=v), "sigma0", ["a", None, math.nan, math.inf, -1.0, 1j]),
    ("SMLD T", lambda v: ds.SMLD([0.1, 0.2], T=v), "T", ["a", None, math.nan, 0.0]),
    ("DDPM T", lambda v: ds.DDPM([0.1, 0.2], T=v), "T", ["a", None, math.nan, -1.0]),
    ("DDPM.from_sde N", lambda v: ds.DDPM.from_sde(VP, v), "N", ["a", None, 10.0, 0, -3]),
    ("DDPM.from_sde rule", lambda v: ds.DDPM.from_sde(VP, 100, rule=v), "rule", ["simpson", None]),
    ("DDPM.linear beta_start", lambda v: ds.DDPM.linear(10, beta_start=v), "beta_start", ["a", None, math.nan, 0.0, 1.5]),
    ("DDPM.linear N", lambda v: ds.DDPM.linear(v), "N", ["a", None, 0]),
    ("SMLD.from_sde N", lambda v: ds.SMLD.from_sde(VE, v), "N", ["a", None, 0]),
    ("respace M", lambda v: SMLD_20.respace(v), "M", ["a", None, 2.0, 0, 21]),
    ("ReverseSDE alpha", lambda v: VP.reverse(exact_score, alpha=v), "alpha", ["fast", None, math.nan, -1.0]),
    ("log_likelihood t_end", lambda v: ds.log_likelihood(VP, GM, X, 4, t_end=v), "t_end", ["a", None, math.nan, -1.0]),
    ("log_likelihood steps", lambda v: ds.log_likelihood(VP, GM, X, v), "steps", ["a", 0]),
    ("log_likelihood n_probes", lambda v: ds.log_likelihood(VP, lambda y, t: -y, X, 4, n_probes=v), "n_probes", ["a", 0, 2.0]),
    ("log_likelihood prior", lambda v: ds.log_likelihood(VP, GM, X, 4, prior=v), "prior", [3, "normal"]),
    ("log_likelihood delta", lambda v: ds.log_likelihood(VP, lambda y, t: -y, X, 4, delta=v), "delta", ["a", None, 0.0, -1e-4, math.nan, math.inf]),
]
KEYWORD_CASES = [(label, call, name, v) for label, call, name, values in KEYWORDS for v in values]


@pytest.mark.parametrize("label,call,name,value", KEYWORD_CASES,
                         ids=[f"{c[0]}={c[3]!r}" for c in KEYWORD_CASES])
def test_a_bad_keyword_raises_an_error_that_names_it(label, call, name, value):
    """Non-numbers, None, NaN, inf and out-of-range values raise TypeError
    or ValueError whose message names the argument (not float()'s bare
    "could not convert string to float") and shows numbers without NumPy
    reprs; nothing returns NaN."""
    with pytest.raises((TypeError, ValueError)) as info:
        call(value)
    message = str(info.value)
    assert name in message, message
    assert "np." not in message and "float()" not in message, message


@pytest.mark.parametrize("call,shown", [
    (lambda: ds.VPSDE(beta_min=np.float64(-2.0)), "-2.0"),
    (lambda: ds.SMLD([0.1, 0.2], sigma0=np.float64(-2.0)), "-2.0"),
    (lambda: ds.reverse(VP, exact_score, X, 4, alpha=np.float32(-1.5)), "-1.5"),
    (lambda: ds.reverse(VP, exact_score, X, 4, t_start=np.float64(2.0)), "2.0"),
    (lambda: ds.DDPM.from_sde(VP, np.int64(0)), "got 0"),
    (lambda: SMLD_20.respace(np.int64(30)), "got 30"),
    (lambda: SMLD_20.marginal_coefficients(np.int64(30)), "got 30"),
])
def test_messages_show_numbers_as_plain_python_numbers(call, shown):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert shown in str(info.value) and "np." not in str(info.value), str(info.value)


def test_log_likelihood_delta_zero_raises_instead_of_returning_nan():
    """delta is the central-difference step of the Hutchinson trace
    e^T (s(x + delta e) - s(x - delta e)) / (2 delta): 0 divided by 0 gave
    NaN rows silently. A valid delta still gives the exact answer for a
    linear score (central differences are exact on linear maps)."""
    with pytest.raises(ValueError, match=r"delta must be finite and > 0; got 0$"):
        ds.log_likelihood(VP, lambda y, t: -y, X, 4, delta=0)
    var_data = 1.0
    score = ds.GaussianMixture([1.0], [[0.0]], [var_data])
    x = X[:, None]
    exact = ds.log_likelihood(VP, score, x, 50)
    hutch = ds.log_likelihood(VP, lambda y, t: score.score(VP)(y, t), x, 50, delta=1e-3, rng=1)
    np.testing.assert_allclose(hutch, exact, rtol=1e-9, atol=1e-9)


def test_a_vp_chain_method_names_the_step_where_beta_rounds_to_one():
    """VPSDE(beta_max=2000) on 10 steps: beta integrates to 190 over the last
    step, so beta_k = 1 - e^{-190} is 1.0 in float64 and the ancestral step
    divides by zero. The error says which step and what to do (it used to
    say "StepTable column a is inf")."""
    vp = ds.VPSDE(beta_max=2000.0)
    for method in ("ancestral", "ddim", "reverse_diffusion"):
        with pytest.raises(ValueError) as info:
            ds.reverse(vp, exact_score, X, 10, method=method)
        message = str(info.value)
        for part in (f"method={method!r}", "beta_k", ">= 1", "step k = 10", "t = 1 -> 0.9", "more steps",
                     "method='em'"):
            assert part in message, (part, message)
        assert "StepTable" not in message
    tr = ds.reverse(vp, exact_score, X, 64, method="ancestral", rng=1)  # the suggested count runs
    assert np.all(np.isfinite(tr.x))


# ---- 2. consistency ----------------------------------------------------------------

def test_a_decreasing_positive_beta_is_a_valid_vp_but_a_decreasing_sigma_is_not_a_ve():
    """beta(t) = 20 - 19.9 t is positive, so B(t) = 20 t - 9.95 t^2 increases
    and the variance 1 - e^{-B} grows: a VP SDE. A decreasing sigma would
    need g^2 = d sigma^2/dt < 0: no SDE, so VESDE(10, 1) raises."""
    dec = ds.VPSDE(beta_min=20.0, beta_max=0.1)
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(dec.integrated_beta(t), 20 * t - 9.95 * t * t, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(dec.beta(t), 20 - 19.9 * t, rtol=1e-14)
    assert np.all(np.diff(dec.marginal_coefficients(t)[1]) > 0)
    x0 = np.full(200_000, MU)
    out = ds.forward(dec, x0, 20, method="exact", rng=3).x
    m, s = dec.marginal_coefficients(1.0)
    assert_mean(out, m * MU, s)
    assert_variance(out, s * s)
    assert "decreasing" in ds.VPSDE.__doc__ and "must increase" in ds.VESDE.__doc__
    with pytest.raises(ValueError, match="sigma_max must exceed sigma_min"):
        ds.VESDE(10.0, 1.0)


@pytest.mark.parametrize("process,method", [(VE, "ancestral"), (SMLD_20, "ancestral"), (VP, "em"),
                                            (VP, "reverse_diffusion"), (ds.DDPM.from_sde(VP, 40), "ddim")])
def test_variance_posterior_raises_where_it_does_not_apply(process, method):
    """It was silently ignored for VE/SMLD ancestral (identical output), while
    a misplaced alpha or eta raised."""
    with pytest.raises(ValueError, match=r"variance='posterior' applies to method='ancestral' on DDPM or VPSDE"):
        ds.reverse(process, exact_score, X, None if method == "ddim" or process is SMLD_20 else 20,
                   method=method, variance="posterior")


def test_misplaced_options_name_the_method_and_process():
    with pytest.raises(ValueError, match=r"eta=0.5 applies to method='ddim' or 'euler_ancestral' or .* only; got method='em' on VPSDE"):
        ds.reverse(VP, exact_score, X, 4, eta=0.5)
    with pytest.raises(ValueError, match=r"last_step_noise=True applies to method='ancestral' only; got method='em'"):
        ds.reverse(VP, exact_score, X, 4, last_step_noise=True)


def test_from_sde_with_too_few_steps_mentions_rule_exact_which_works():
    with pytest.raises(ValueError, match=r"beta_4 = 1.256 >= 1 .*rule='exact'"):
        ds.DDPM.from_sde(VP, 8)
    chain = ds.DDPM.from_sde(VP, 8, rule="exact")
    np.testing.assert_allclose(np.log(chain.alpha_bar), -VP.integrated_beta(chain.t), rtol=1e-13)


def test_respace_has_a_docstring_saying_how_indices_are_chosen():
    for cls in (ds.DDPM, ds.SMLD):
        doc = cls.respace.__doc__
        assert doc and r"\mathrm{round}(j N / M)" in doc and "Parameters" in doc
    chain = ds.DDPM.from_sde(VP, 10, rule="exact")
    short = chain.respace(4)  # i_j = round(2.5 j) = 0, 2, 5, 8, 10 (half to even)
    np.testing.assert_allclose(short.alpha_bar, chain.alpha_bar[[0, 2, 5, 8, 10]], rtol=1e-13)


# ---- 3. conventions ---------------------------------------------------------------

def ho_algorithm_2(chain, x, z, variance, last_step_noise=False):
    """NumPy twin of Ho et al. (2020) Algorithm 2 with eps = -sqrt(1 - abar) s:
    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sigma_t z,
    z = 0 at t = 1 (diffusers: noise only for its t > 0)."""
    abar, betas = chain.alpha_bar, chain.betas
    for i in range(chain.N, 0, -1):
        b = betas[i - 1]
        eps = -np.sqrt(1 - abar[i]) * exact_score_chain(chain, x, i)
        mean = (x - b / np.sqrt(1 - abar[i]) * eps) / np.sqrt(1 - b)
        var = b if variance == "beta" else b * (1 - abar[i - 1]) / (1 - abar[i])
        x = mean + (np.sqrt(var) * z[i - 1] if (i > 1 or last_step_noise) else 0.0)
    return x


def exact_score_chain(chain, v, i):
    m, s = chain.marginal_coefficients(i)
    return (m * MU - v) / (m * m * V0 + s * s)


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_ddpm_ancestral_follows_ho_algorithm_2_no_noise_at_the_last_step(variance):
    chain = ds.DDPM.from_sde(VP, 30)
    x = np.linspace(-3, 3, 1000)
    z = ds.standard_normal((30, 1000), rng=11)
    score = ds.LinearScore(MU, V0)
    got = ds.reverse(chain, score, x, method="ancestral", variance=variance, noise=z).x
    np.testing.assert_allclose(got, ho_algorithm_2(chain, x, z, variance), rtol=1e-12, atol=1e-12)
    kept = ds.reverse(chain, score, x, method="ancestral", variance=variance, noise=z, last_step_noise=True).x
    np.testing.assert_allclose(kept, ho_algorithm_2(chain, x, z, variance, True), rtol=1e-12, atol=1e-12)
    if variance == "beta":  # the option adds exactly sqrt(beta_1) z_0
        np.testing.assert_allclose(kept - got, np.sqrt(chain.betas[0]) * z[0], rtol=1e-9, atol=1e-13)
    else:  # beta~_1 = beta_1 (1 - abar_0)/(1 - abar_1) = 0: nothing to drop
        np.testing.assert_array_equal(kept, got)


def test_vp_ancestral_last_step_ignores_its_noise_unless_asked():
    """On an SDE with t_end > 0 the posterior variance of the last step is
    not 0; by default it is dropped all the same (same convention)."""
    x = np.linspace(-3, 3, 500)
    z = ds.standard_normal((20, 500), rng=12)
    z2 = z.copy()
    z2[0] = 5.0  # interval 0 drives the last step (t_1 -> t_0)
    kw = dict(method="ancestral", variance="posterior", t_end=0.1)
    a = ds.reverse(VP, exact_score, x, 20, noise=z, **kw).x
    b = ds.reverse(VP, exact_score, x, 20, noise=z2, **kw).x
    np.testing.assert_array_equal(a, b)
    c = ds.reverse(VP, exact_score, x, 20, noise=z, last_step_noise=True, **kw).x
    d = ds.reverse(VP, exact_score, x, 20, noise=z2, last_step_noise=True, **kw).x
    assert np.all(c != d)


@pytest.mark.parametrize("method,n_corr", [("reverse_diffusion", 1), ("ancestral", 2), ("em", 3)])
def test_langevin_corrector_runs_before_every_predictor_step_as_score_sde(method, n_corr):
    """score_sde's PC sampler: for each t_k (k = N..1) n corrector steps at
    t_k, then the predictor from t_k. The score times, in call order, are
    t_N (n + 1 times), t_{N-1} (n + 1 times), ..., t_1; never t_0.
    nfe = N (1 + n); with corrector_at_start=False one corrector fewer per
    sub-step (the old behaviour)."""
    n = 12
    calls = []

    def score(v, t):
        calls.append(t)
        return exact_score(v, t)

    x = np.linspace(-2, 2, 64)[:, None] * np.ones((1, 8))
    tr = ds.reverse(VP, score, x, n, method=method, corrector="langevin", n_corrector_steps=n_corr, rng=5)
    grid = np.linspace(0, 1, n + 1)
    assert tr.nfe == n * (1 + n_corr) == len(calls)
    np.testing.assert_allclose(calls, np.repeat(grid[n:0:-1], 1 + n_corr), rtol=0, atol=1e-15)
    calls.clear()
    old = ds.reverse(VP, score, x, n, method=method, corrector="langevin", n_corrector_steps=n_corr, rng=5,
                     corrector_at_start=False)
    assert old.nfe == n + (n - 1) * n_corr == len(calls)
    np.testing.assert_allclose(calls, np.r_[1.0, np.repeat(grid[n - 1:0:-1], 1 + n_corr)], rtol=0, atol=1e-15)


def test_corrector_at_t_start_matches_a_numpy_twin_of_score_sde_pc():
    """The whole default PC run, path by path, against a NumPy loop in
    score_sde's order (corrector, then predictor, per time), with per-row
    norms and r = 1 - beta_k, using the counter normals of each row."""
    n, snr = 6, 0.16
    x = ds.standard_normal((50, 16), rng=21)
    tr = ds.reverse(VP, exact_score, x, n, method="reverse_diffusion", corrector="langevin", snr=snr, rng=22)
    key = ds._rng.key_from_rng(22)
    grid = np.linspace(0, 1, n + 1)
    big_b = VP.integrated_beta(grid)
    y = x.copy()
    for k in range(n, 0, -1):
        beta = -np.expm1(-(big_b[k] - big_b[k - 1]))
        s = exact_score(y, grid[k])
        z = reference.normals(key, 2, k, y.shape, np.float64)
        eps = 2 * (1 - beta) * (snr * np.linalg.norm(z, axis=1) / np.linalg.norm(s, axis=1)) ** 2
        y = y + eps[:, None] * s + np.sqrt(2 * eps)[:, None] * z
        s = exact_score(y, grid[k])
        y = (2 - np.sqrt(1 - beta)) * y + beta * s + np.sqrt(beta) * reference.normals(key, 0, k - 1, y.shape,
                                                                                          np.float64)
    np.testing.assert_allclose(tr.x, y, rtol=1e-10, atol=1e-10)


def test_linear_rule_is_score_sde_and_diffusers_linear_schedule():
    """beta_k = beta_min/N + (k - 1)/(N - 1) (beta_max - beta_min)/N:
    score_sde's VPSDE.discrete_betas = linspace(beta_min/N, beta_max/N, N)
    and diffusers' beta_schedule="linear" (1e-4 ... 0.02 at N = 1000)."""
    N = 1000
    k = np.arange(1, N + 1)
    formula = 0.1 / N + (k - 1) / (N - 1) * (20.0 - 0.1) / N
    chain = ds.DDPM.from_sde(VP, N, rule="linear")
    np.testing.assert_allclose(chain.betas, formula, rtol=1e-13)
    score_sde_betas = np.linspace(0.1 / N, 20.0 / N, N)  # score_sde's discrete_betas, in float64
    np.testing.assert_allclose(chain.betas, score_sde_betas, rtol=1e-15)
    assert chain.betas[0] == pytest.approx(1e-4, rel=1e-15) and chain.betas[-1] == pytest.approx(0.02, rel=1e-15)
    diffusers = ds.DDPM.linear(1000, 1e-4, 0.02)
    np.testing.assert_allclose(diffusers.betas, np.linspace(1e-4, 0.02, 1000), rtol=0, atol=0)
    np.testing.assert_allclose(diffusers.betas, chain.betas, rtol=1e-14)
    # it differs from the default Riemann rule beta(t_i) T / N by O(beta_max/N^2) per step
    riemann = ds.DDPM.from_sde(VP, N).betas
    assert 0 < np.max(np.abs(riemann - chain.betas)) < 20.0 / N**2
    for N in (1, 2, 7):
        np.testing.assert_allclose(ds.DDPM.from_sde(ds.VPSDE(0.3, 5.0, T=0.2), N, rule="linear").betas,
                                   0.2 / N * (0.3 + np.arange(N) / max(N - 1, 1) * 4.7), rtol=1e-14)
    with pytest.raises(ValueError, match="rule='linear' needs a linear beta"):
        ds.DDPM.from_sde(ds.VPSDE.cosine(), 100, rule="linear")


@pytest.mark.parametrize("method", ["ancestral", "reverse_diffusion", "ddim"])
def test_reverse_on_vp_with_a_chain_method_is_the_exact_rule_chain_bit_for_bit(method):
    """The docs say which chain: DDPM.from_sde(vp, N, rule="exact"), not the
    default rule. Same grid (N a power of two: k/N exact), same rng: the same
    bits; the default-rule chain gives other numbers."""
    x = np.linspace(-3, 3, 301)
    for n in (16, 64):
        sde_run = ds.reverse(VP, exact_score, x, n, method=method, rng=13, save_every=1)
        chain_run = ds.reverse(ds.DDPM.from_sde(VP, n, rule="exact"), exact_score, x, method=method, rng=13,
                               save_every=1)
        np.testing.assert_array_equal(sde_run.xs, chain_run.xs)
        np.testing.assert_array_equal(sde_run.ts, chain_run.ts)
        if n == 64:  # (with 16 steps the default rule has beta_13 > 1)
            riemann = ds.reverse(ds.DDPM.from_sde(VP, n), exact_score, x, method=method, rng=13)
            assert np.max(np.abs(riemann.x - sde_run.x)) > 1e-3
    ten = ds.reverse(VP, exact_score, x, 10, method=method, rng=13).x  # k/10 vs k*(1/10): rounding only
    np.testing.assert_allclose(ten, ds.reverse(ds.DDPM.from_sde(VP, 10, rule="exact"), exact_score, x,
                                               method=method, rng=13).x, rtol=1e-12, atol=1e-12)


def test_reverse_on_ve_with_a_chain_method_is_smld_from_sde():
    x = np.linspace(-30, 30, 301)
    score = ds.LinearScore(MU, V0)
    for method in ("ancestral", "reverse_diffusion"):
        a = ds.reverse(VE, score, x, 16, method=method, rng=14).x
        b = ds.reverse(ds.SMLD.from_sde(VE, 16), score, x, method=method, rng=14).x
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_smld_from_sde_ancestral_variance_is_the_chain_posterior():
    """SMLD.from_sde has sigma_0 = sigma_min; its marginal is
    x_i = x_0 + s_i z with s_i^2 = sigma_i^2 - sigma_0^2, so the Gaussian
    posterior q(x_{i-1} | x_i, x_0) has variance
    s_{i-1}^2 (sigma_i^2 - sigma_{i-1}^2) / s_i^2, 0 at i = 1. The absolute
    sigma_{i-1}^2 used before added noise of std ~1.3e-3 at the last step."""
    ve = ds.VESDE(0.01, 50.0)
    chain = ds.SMLD.from_sde(ve, 100)
    full = np.r_[chain.sigma0, chain.sigmas]
    i = np.arange(100, 0, -1)
    want = (full[i - 1] ** 2 - full[0] ** 2) * (full[i] ** 2 - full[i - 1] ** 2) / (full[i] ** 2 - full[0] ** 2)
    for proc in (chain, ve):
        table = ds.methods.table(proc, "ancestral", None if proc is chain else 100,
                                 last_step_noise=True)  # even with the last step's noise kept
        c = table.affine_coefficients()["c"]
        np.testing.assert_allclose(c ** 2, want, rtol=1e-9, atol=1e-300)
        assert c[-1] == 0.0
    # Point-mass data: x_0 is recovered exactly by the score, every step
    # samples the exact posterior, and the moment recursion
    # m <- (a + b l) m + b r, v <- (a + b l)^2 v + c^2 retraces the chain's
    # marginals (mean MU, variance s_i^2) at every i, ending at variance 0.
    point = ds.LinearScore(MU, 0.0)
    table = ds.methods.table(chain, "ancestral")
    s_all = chain.marginal_coefficients(np.arange(101))[1]
    history = reference.table_moments(table, MU, s_all[-1] ** 2, MU, 0.0, every_step=True)
    np.testing.assert_allclose([h[1] for h in history], s_all[::-1] ** 2, rtol=1e-9, atol=1e-24)
    x = MU + s_all[-1] * ds.standard_normal(50_000, rng=15)
    tr = ds.reverse(chain, point, x, method="ancestral", rng=16, save_at=[50, 1, 0])
    assert_variance(tr.xs[0], s_all[50] ** 2)
    assert_variance(tr.xs[1], s_all[1] ** 2)
    assert np.max(np.abs(tr.x - MU)) < 1e-9  # was ~5e-3 (std 1.3e-3) before
    # Gaussian data N(MU, V0): Monte Carlo agrees with the same recursion.
    gauss = ds.LinearScore(MU, V0)
    mean0, var0 = MU, V0 + s_all[-1] ** 2
    mean, var = reference.table_moments(table, mean0, var0, MU, V0)
    y = mean0 + np.sqrt(var0) * ds.standard_normal(200_000, rng=17)
    out = ds.reverse(chain, gauss, y, method="ancestral", rng=18).x
    assert_mean(out, mean, np.sqrt(var))
    assert_variance(out, var)


def test_ve_ancestral_bias_is_order_log_n_over_n():
    """With the chain's posterior variance, ancestral sampling of Gaussian
    data N(MU, V0) misses the Tweedie estimate's uncertainty: step i loses
    about (d_i / s_i^2)^2 Var(x_0 | x_i) ~ delta / i near s^2 = i delta,
    delta = 2 log(sigma_max/sigma_min) sigma_min^2 / N, so the bias is
    ~ delta log(V0 / delta): first order up to a logarithm. (The old formula
    had the same order, with a compensating error that made it exact only
    at sigma_min^2 = V0.)"""
    ve = ds.VESDE(1.0, 10.0)
    ns = np.array([64, 128, 256, 512, 1024])
    errors = []
    for n in ns:
        law = ds.methods.view(ve, "ancestral", int(n))
        table = ds.methods.table(ve, "ancestral", int(n))
        mean, var = reference.table_moments(table, MU, V0 + law.sd[-1] ** 2, MU, V0)
        errors.append(abs(mean - MU) + abs(var - V0))
    delta = 2 * np.log(10.0) / ns
    assert fitted_slope(ns, np.array(errors) / np.log(V0 / delta)) == pytest.approx(-1.0, abs=0.15)
    assert np.all(np.array(errors) < 2 * delta * np.log(V0 / delta))

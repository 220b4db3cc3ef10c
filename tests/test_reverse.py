"""ds.reverse: every sampler against its exact moment recursion on Gaussian
data, its convergence order, and the promises of the alpha-family."""
import numpy as np
import pytest

import diffsde as ds

import reference
from conftest import GAUSS_SCORE as SCORE, MU, SUB, V0, VP
from stats import assert_mean, assert_variance, fitted_slope

VE = ds.VESDE(0.01, 20.0)

CASES = [
    ("vp", "em", {}), ("vp", "em", {"alpha": 0.0}), ("vp", "em", {"alpha": 0.5}), ("vp", "em", {"alpha": 2.0}),
    ("vp", "ode_heun", {}), ("vp", "reverse_diffusion", {}), ("vp", "ancestral", {}),
    ("vp", "ancestral", {"variance": "posterior"}), ("vp", "ddim", {}), ("vp", "ddim", {"eta": 1.0}),
    ("ve", "em", {}), ("ve", "ode_heun", {}), ("ve", "reverse_diffusion", {}), ("ve", "ancestral", {}),
    ("subvp", "em", {}), ("subvp", "ode_heun", {}),
    ("ddpm", "ancestral", {}), ("ddpm", "reverse_diffusion", {}), ("ddpm", "ddim", {}), ("ddpm", "em", {}),
    ("ddpm", "ode_heun", {}),
    ("smld", "ancestral", {}), ("smld", "reverse_diffusion", {}), ("smld", "em", {}), ("smld", "ode_heun", {}),
]


# With sigma_min far below the data's scale the first-order error term of VE
# samplers is tiny and a second-order one dominates up to N ~ 10^3 (measured:
# slope -2.0 for em with sigma_min = 0.01), and at sigma_min^2 = var(data) SMLD
# ancestral is exact; the order fits use sigma_min = 1 with var(data) = 0.25.
VE_ORDER = ds.VESDE(1.0, 10.0)


def process(name, n):
    return {"vp": VP, "ve": VE, "ve_order": VE_ORDER, "subvp": SUB, "ddpm": ds.DDPM.from_sde(VP, n),
            "smld": ds.SMLD.from_sde(VE, n)}[name]


def table_of(proc, method, n, **kw):
    grid = None if "chain" in proc.capabilities else n
    return ds.methods.table(proc, method, grid, **kw), ds.methods.view(proc, method, grid)


def start_law(law):
    """The exact marginal at t_start, so no prior mismatch hides in the figures."""
    m, s = law.m[-1], law.sd[-1]
    return m * MU, m * m * V0 + s * s


def target_law(law):
    m, s = law.m[0], law.sd[0]
    return m * MU, m * m * V0 + s * s


@pytest.mark.parametrize("name,method,kw", CASES, ids=[f"{p}-{m}-{kw}" for p, m, kw in CASES])
def test_monte_carlo_matches_the_exact_moment_recursion(name, method, kw):
    n_paths, n = 100_000, 40
    proc = process(name, n)
    table, law = table_of(proc, method, n, **kw)
    mean0, var0 = start_law(law)
    x = mean0 + np.sqrt(var0) * ds.standard_normal(n_paths, rng=1)
    tr = ds.reverse(proc, SCORE, x, None if name in ("ddpm", "smld") else n, method=method, rng=2, **kw)
    mean, var = reference.table_moments(table, mean0, var0, MU, V0)
    assert_mean(tr.x, mean, np.sqrt(var))
    assert_variance(tr.x, var)
    assert tr.nfe == table.nfe
    np.testing.assert_allclose(tr.ts[[0, -1]], [law.t[-1], law.t[0]])


ORDER_CASES = [
    ("vp", "em", {}, 1), ("vp", "em", {"alpha": 0.0}, 1), ("vp", "em", {"alpha": 0.5}, 1),
    ("vp", "em", {"alpha": 2.0}, 1), ("vp", "ode_heun", {}, 2), ("vp", "reverse_diffusion", {}, 1),
    ("vp", "ancestral", {}, 1), ("vp", "ddim", {}, 1), ("vp", "ddim", {"eta": 1.0}, 1),
    ("ve_order", "em", {}, 1), ("ve_order", "ode_heun", {}, 2), ("ve_order", "reverse_diffusion", {}, 1),
    ("subvp", "em", {}, 1), ("subvp", "ode_heun", {}, 2),
]


@pytest.mark.parametrize("name,method,kw,order", ORDER_CASES,
                         ids=[f"{p}-{m}-{kw}" for p, m, kw, _ in ORDER_CASES])
def test_bias_against_the_target_law_has_the_method_s_order(name, method, kw, order):
    ns = np.array([64, 128, 256, 512, 1024])
    errors = []
    for n in ns:
        table, law = table_of(process(name, int(n)), method, int(n), **kw)
        mean, var = reference.table_moments(table, *start_law(law), MU, V0)
        t_mean, t_var = target_law(law)
        errors.append(abs(mean - t_mean) + abs(var - t_var))
    assert fitted_slope(ns, errors) == pytest.approx(-order, abs=0.15)


def test_every_alpha_reaches_the_same_law():
    n = 2000
    laws = []
    for alpha in (0.0, 0.5, 1.0, 2.0):
        table, law = table_of(VP, "em", n, alpha=alpha)
        laws.append(reference.table_moments(table, *start_law(law), MU, V0))
    target = target_law(law)
    for mean, var in laws:
        assert mean == pytest.approx(target[0], abs=5e-3)
        assert var == pytest.approx(target[1], rel=2e-2)


@pytest.mark.parametrize("method,kw", [("em", {"alpha": 0.0}), ("ode_heun", {}), ("ddim", {})])
def test_deterministic_samplers_ignore_the_key(method, kw):
    x = np.linspace(-2, 2, 100)
    a = ds.reverse(VP, SCORE, x, 30, method=method, rng=1, **kw).x
    b = ds.reverse(VP, SCORE, x, 30, method=method, rng=2, **kw).x
    np.testing.assert_array_equal(a, b)
    c = ds.reverse(VP, SCORE, x, 30, method="em", rng=1).x
    assert not np.array_equal(a, c)


def test_ddim_eta_one_is_ancestral_with_posterior_variance():
    chain = ds.DDPM.from_sde(VP, 100)
    ddim, _ = table_of(chain, "ddim", 100, eta=1.0)
    post, _ = table_of(chain, "ancestral", 100, variance="posterior")
    ddim, post = ddim.affine_coefficients(), post.affine_coefficients()
    for col in ("a", "b", "c", "t", "m", "sd", "interval"):
        np.testing.assert_allclose(ddim[col], post[col], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("case", ["ddpm-beta-unit-variance", "ddpm-posterior-point", "smld-point"])
def test_a_chain_reverse_matches_its_forward_marginals_step_by_step(case):
    """Where the chain's reverse step is the exact posterior for Gaussian
    data, reversing with the chain.marginal score retraces the forward
    marginals exactly at every step."""
    if case == "ddpm-beta-unit-variance":
        # exact only with the noise of the last step kept (the option; Ho et
        # al.'s Algorithm 2 drops it)
        chain, v0, kw = ds.DDPM.from_sde(VP, 50), 1.0, {"variance": "beta", "last_step_noise": True}
    elif case == "ddpm-posterior-point":
        chain, v0, kw = ds.DDPM.from_sde(VP, 50), 0.0, {"variance": "posterior"}
    else:
        chain, v0, kw = ds.SMLD.from_sde(ds.VESDE(0.05, 5.0), 50), 0.0, {}
        chain = ds.SMLD(chain.sigmas, 0.0)
    score = ds.LinearScore(MU, v0)
    table, law = table_of(chain, "ancestral", 50, **kw)
    mean0, var0 = law.m[-1] * MU, law.m[-1] ** 2 * v0 + law.sd[-1] ** 2
    history = reference.table_moments(table, mean0, var0, MU, v0, every_step=True)
    m, s = chain.marginal_coefficients(np.arange(50, -1, -1))
    np.testing.assert_allclose([h[0] for h in history], m * MU, rtol=1e-12)
    np.testing.assert_allclose([h[1] for h in history], m**2 * v0 + s**2, rtol=1e-10, atol=1e-14)
    x = mean0 + np.sqrt(var0) * ds.standard_normal(100_000, rng=3)
    tr = ds.reverse(chain, score, x, method="ancestral", rng=4, save_at=[40, 20, 1], **kw)
    for k, i in enumerate([40, 20, 1]):
        assert_mean(tr.xs[k], m[50 - i] * MU, np.sqrt(m[50 - i] ** 2 * v0 + s[50 - i] ** 2))
        assert_variance(tr.xs[k], m[50 - i] ** 2 * v0 + s[50 - i] ** 2)
    np.testing.assert_allclose(tr.ts, chain.t[[40, 20, 1]])


def test_prior_start_from_shape():
    tr = ds.reverse(VP, SCORE, shape=(100_000,), steps=20, rng=5, save_every=20)
    s_T = VP.marginal_coefficients(1.0)[1]
    assert_mean(tr.xs[0], 0.0, s_T)
    assert_variance(tr.xs[0], s_T**2)
    again = ds.reverse(VP, SCORE, shape=(100_000,), steps=20, rng=5)
    np.testing.assert_array_equal(again.x, tr.x)
    assert ds.reverse(VP, SCORE, shape=(4, 2), steps=2, rng=0, dtype=np.float32).x.dtype == np.float32


def test_langevin_corrector_after_every_step_but_the_last():
    """corrector_at_start=False: no corrector at t = T (the option; the
    default follows score_sde, see test_api_regressions)."""
    n, d, snr = 60, 64, 0.16
    m, s = VE.marginal_coefficients(1.0)
    x = m * MU + np.sqrt(m * m * V0 + s * s) * ds.standard_normal((4000, d), rng=6)
    plain = ds.reverse(VE, SCORE, x, n, method="reverse_diffusion", rng=7)
    pc = ds.reverse(VE, SCORE, x, n, method="reverse_diffusion", corrector="langevin", snr=snr,
                    n_corrector_steps=2, corrector_at_start=False, rng=7)
    assert plain.nfe == n and pc.nfe == n + 2 * (n - 1)
    # The table: after predictor step j (landing at t_{k-1}, k = n - j), two
    # Langevin rows at t_{k-1} with streams 2, 3 and interval k - 1; none
    # after the last step, so the score is never evaluated at t_end.
    table, law = table_of(VE, "reverse_diffusion", n)
    corrector = ds.methods.get("langevin", "corrector").build(law, snr=snr, n_corrector_steps=2,
                                                             corrector_at_start=False)
    pc_table = ds.StepTable.interleave(table, *corrector)
    lang = pc_table.kind == ds.StepTable.ROW_KINDS["langevin"]
    noise = np.flatnonzero(lang) - 1  # each langevin row follows its noise row
    np.testing.assert_array_equal(pc_table.stream[noise], np.tile([2, 3], n - 1))
    np.testing.assert_array_equal(pc_table.t[lang], np.repeat(law.t[n - 1:0:-1], 2))
    np.testing.assert_array_equal(pc_table.interval[noise], np.repeat(np.arange(n - 1, 0, -1), 2))
    assert pc_table.kind[-1] == ds.StepTable.ROW_KINDS["combine"] and pc_table.dst[-1] == 0
    assert np.all(pc_table.w[lang, 1] == snr) and np.all(pc_table.w[lang, 0] == 1.0)
    np.testing.assert_array_equal(ds.run_steps(x, pc_table, score=SCORE, rng=7).x, pc.x)
    # The corrector pulls the predictor's biased law toward p_t: the
    # predictor alone ends with variance ~0.284 at N = 60 (its recursion),
    # the corrector removes most of that excess (standard error ~ 7e-4).
    target = V0
    assert abs(pc.x.var() - target) < 0.8 * abs(plain.x.var() - target)
    assert abs(pc.x.mean() - MU) < 5 * np.sqrt(V0 / x.size) + 1e-3


def test_python_score_equals_the_builtin_and_score_from_eps():
    n = 25
    x = np.linspace(-3, 3, 500)

    def score(v, t):
        m, s = VP.marginal_coefficients(t)
        return (m * MU - v) / (m * m * V0 + s * s)

    builtin = ds.reverse(VP, SCORE, x, n, rng=8).x
    python = ds.reverse(VP, score, x, n, rng=8).x
    np.testing.assert_allclose(python, builtin, rtol=1e-12, atol=1e-12)
    eps = ds.score_from_eps(lambda v, t: -VP.marginal_coefficients(t)[1] * score(v, t), VP)
    np.testing.assert_allclose(ds.reverse(VP, eps, x, n, rng=8).x, builtin, rtol=1e-10, atol=1e-12)
    chain = ds.DDPM.from_sde(VP, 50)
    eps_chain = ds.score_from_eps(lambda v, t: v, chain)
    np.testing.assert_allclose(eps_chain(np.ones(3), chain.t[7]), -1 / chain.marginal_coefficients(7)[1])
    with pytest.raises(ValueError, match="undefined at t = 0"):
        eps(np.ones(3), 0.0)


def test_callable_score_errors():
    x = np.ones((8, 2))
    with pytest.raises(ValueError, match=r"shape \(8,\) at step 0 of 5 \(t = 1\)"):
        ds.reverse(VP, lambda v, t: v[:, 0], x, 5)
    with pytest.raises(FloatingPointError, match="non-finite value nan"):
        ds.reverse(VP, lambda v, t: v * np.nan, x, 5)
    with pytest.raises(ValueError, match=r"returned shape \(\)"):
        ds.reverse(VP, lambda v, t: None, x, 5)
    with pytest.raises(TypeError, match="dtype <U"):
        ds.reverse(VP, lambda v, t: np.full(v.shape, "a"), x, 5)

    def failing(v, t):
        if t < 0.5:
            raise KeyError("no score here")
        return -v

    with pytest.raises(KeyError) as info:
        ds.reverse(VP, failing, x, 5)
    assert any("step 3 of 5 (t = 0.4)" in note for note in info.value.__notes__)
    np.testing.assert_array_equal(ds.reverse(VP, lambda v, t: (-v).tolist(), x, 2, rng=0).x,
                                  ds.reverse(VP, lambda v, t: -v, x, 2, rng=0).x)


def test_bad_input_gets_a_clear_error():
    x = np.ones(4)
    with pytest.raises(ValueError, match="valid: em, ode_heun, rk45, euler, .*, reverse_diffusion, ancestral, ddim"):
        ds.reverse(VP, SCORE, x, method="euler2")
    with pytest.raises(ValueError, match="valid: em, ode_heun, .*, reverse_diffusion, ancestral, ddim$"):
        ds.reverse(VE, SCORE, x, method="ddim2")
    with pytest.raises(ValueError, match="alpha must be finite and >= 0"):
        ds.reverse(VP, SCORE, x, alpha=-1.0)
    with pytest.raises(ValueError, match="applies to method='em' only"):
        ds.reverse(VP, SCORE, x, method="ode_heun", alpha=0.0)
    with pytest.raises(ValueError, match=r"t_end must lie in \[0, t_start\)"):
        ds.reverse(VP, SCORE, x, t_end=1.0)
    with pytest.raises(ValueError, match=r"t_end must lie in \[0, t_start\)"):
        ds.reverse(VP, SCORE, x, t_start=0.5, t_end=0.7)
    with pytest.raises(ValueError, match="pass x .* or shape"):
        ds.reverse(VP, SCORE)
    with pytest.raises(ValueError, match="does not match x.shape"):
        ds.reverse(VP, SCORE, x, shape=(5,))
    with pytest.raises(ValueError, match="eta=0.5 applies to method='ddim'"):
        ds.reverse(VP, SCORE, x, eta=0.5)
    with pytest.raises(ValueError, match="variance must be"):
        ds.reverse(VP, SCORE, x, method="ancestral", variance="large")
    with pytest.raises(ValueError, match="corrector must be"):
        ds.reverse(VP, SCORE, x, corrector="annealed")
    with pytest.raises(ValueError, match="decrease strictly"):
        ds.reverse(VP, SCORE, x, ts=[0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="own grid"):
        ds.reverse(ds.DDPM([0.1, 0.2]), SCORE, x, t_end=0.5)
    with pytest.raises(TypeError, match="needs a score"):
        ds.reverse(VP, None, x)


def test_user_grids_partial_spans_and_saving():
    ts = np.array([1.0, 0.6, 0.3, 0.1, 0.03, 0.01])
    m, s = VP.marginal_coefficients(1.0)
    x = m * MU + np.sqrt(m * m * V0 + s * s) * ds.standard_normal(100_000, rng=9)
    tr = ds.reverse(VP, SCORE, x, ts=ts, rng=10, save_every=1)
    np.testing.assert_array_equal(tr.ts, ts)
    table = ds.methods.table(VP, "em", ts)
    history = reference.table_moments(table, m * MU, m * m * V0 + s * s, MU, V0, every_step=True)
    for k, (mean, var) in enumerate(history):
        assert_mean(tr.xs[k], mean, np.sqrt(var))
        assert_variance(tr.xs[k], var)
    part = ds.reverse(VP, SCORE, x, 10, t_start=0.8, t_end=0.2, rng=11, save_at=[0.8, 0.5, 0.2])
    np.testing.assert_allclose(part.ts, [0.8, 0.5, 0.2])
    np.testing.assert_array_equal(part.xs[0], x)
    by_index = ds.reverse(VP, SCORE, x, 10, t_start=0.8, t_end=0.2, rng=11, save_at=[10, 5, 0])
    np.testing.assert_array_equal(by_index.xs, part.xs)
    every = ds.reverse(VP, SCORE, x, 10, t_start=0.8, t_end=0.2, rng=11, save_every=5)
    np.testing.assert_array_equal(every.xs, part.xs)


def test_noise_arrays_brownian_paths_out_progress_and_dtype():
    n = 16
    x = np.linspace(-1, 1, 50)
    path = ds.BrownianPath((50,), 6, rng=1)
    via_path = ds.reverse(VP, SCORE, x, n, noise=path, rng=0).x
    via_array = ds.reverse(VP, SCORE, x, n, noise=path.normals(n), rng=0).x
    np.testing.assert_array_equal(via_path, via_array)
    out = np.empty(50)
    tr = ds.reverse(VP, SCORE, x, n, noise=path, out=out, progress=True)
    assert tr.x is out
    np.testing.assert_array_equal(out, via_path)
    f32 = ds.reverse(VP, SCORE, x.astype(np.float32), n, noise=path).x
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, via_path, rtol=1e-4, atol=1e-5)


def test_deterministic_samplers_accept_and_ignore_noise():
    x = np.linspace(-1, 1, 40)
    path = ds.BrownianPath((40,), 5, rng=1)
    plain = ds.reverse(VP, SCORE, x, 16, alpha=0.0).x
    np.testing.assert_array_equal(ds.reverse(VP, SCORE, x, 16, alpha=0.0, noise=path).x, plain)
    np.testing.assert_array_equal(ds.reverse(VP, SCORE, x, 16, alpha=0.0, noise=np.ones((16, 40))).x, plain)
    with pytest.raises(ValueError, match="noise must have shape"):
        ds.reverse(VP, SCORE, x, 16, alpha=0.0, noise=np.ones((15, 40)))


def test_langevin_corrector_on_vp_uses_r_equal_one_minus_beta_at_the_landing_time():
    """score_sde's VP corrector scales the step by alpha_i = 1 - beta_i of the
    time the corrector runs at: here abar_k / abar_{k-1} at landing index k."""
    n, d, snr = 40, 64, 0.16
    table, law = table_of(VP, "reverse_diffusion", n)
    corrector = ds.methods.get("langevin", "corrector").build(law, snr=snr, n_corrector_steps=1,
                                                             corrector_at_start=False)
    pc_table = ds.StepTable.interleave(table, *corrector)
    lang = pc_table.kind == ds.StepTable.ROW_KINDS["langevin"]
    landing = np.arange(n - 1, 0, -1)
    r = pc_table.w[lang, 0]
    np.testing.assert_allclose(r, np.exp(law.log_abar[landing] - law.log_abar[landing - 1]), rtol=1e-15)
    assert np.all((r > 0.5) & (r < 1))
    np.testing.assert_array_equal(pc_table.t[lang], law.t[landing])
    # and the corrector pulls the predictor's biased law toward p_t
    m, s = VP.marginal_coefficients(1.0)
    x = m * MU + np.sqrt(m * m * V0 + s * s) * ds.standard_normal((4000, d), rng=8)
    plain = ds.reverse(VP, SCORE, x, n, method="reverse_diffusion", rng=9)
    pc = ds.reverse(VP, SCORE, x, n, method="reverse_diffusion", corrector="langevin", snr=snr,
                    corrector_at_start=False, rng=9)
    np.testing.assert_array_equal(ds.run_steps(x, pc_table, score=SCORE, rng=9).x, pc.x)
    assert abs(pc.x.var() - V0) < 0.8 * abs(plain.x.var() - V0)

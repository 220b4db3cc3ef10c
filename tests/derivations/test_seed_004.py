r"""Derivation 004, "Simple Reverse-Time SDE Derivation for Diffusion Models", step by step
(docs/derivations/004-fokker-planck-alpha-family.md; "the seed" is the original text
that page corrects).

The seed (i) states the Fokker-Planck equation (FPE) of dX = mu dt + sigma dW
and says it is the law of "a million very tiny marbles"; (ii) reverses time
with tau(t) = 1 - t and reads off a reverse drift -mu + sigma^2/2 grad log p;
(iii) adds and subtracts alpha^2/2 sigma^2 d_x^2 p to get the alpha-family

    dX(tau) = {-mu + (1 + alpha^2)/2 sigma^2 grad log p} d tau + alpha sigma dW(tau).

Its slips (the page's "Where the original is loose"): d/dt and d/dtau trade places in the
reverse-time manipulation, and the displayed reverse SDE runs in tau with
d tau > 0 (the first display even writes "... d t"). Each test below checks
one step numerically, on the exact bimodal mixture whose marginals, scores
and CDFs are known in closed form.

Distances are one-sample Wasserstein-1 distances W1 = int |F_n - F| dx
between particles and a CDF, computed exactly (F piecewise linear between
grid points, F_n a step function). Their noise floor is measured: mean + 5 SD
of the same statistic over replicate exact samples of the same size.
Discretization biases are measured without the answer being tested (exact
Gaussian-mixture law of forward EM; coupled runs at 4x the steps for reverse
EM; Richardson estimates or fitted orders for the Fokker-Planck solver) and
added, by the triangle inequality.
"""
import functools

import numpy as np
import pytest
from scipy.special import ndtr

import diffsde as ds
from diffsde import fokker_planck as fp
from diffsde.analysis import moment_errors

from conftest import BIMODAL as DATA, VE_FP as VE, VP
from stats import Z, fitted_slope

SCORE = DATA.score(VP)
ALPHAS = (0.0, 0.5, 1.0, 2.0)
N = 100_000  # particles
N_FWD = 1024  # forward EM steps and FP steps
N_REV = 1024  # reverse EM steps (a power of two: the bias runs share one BrownianPath)
FLOOR_REPLICATES = 10
HALF_WIDTH = {"vp": 6.0, "ve": 25.0}  # FP domains: > 4.5 marginal std beyond the outer mode
SDES = {"vp": VP, "ve": VE}


# ---- exact distances -------------------------------------------------------------

def mixture_cdf(mix, x):
    """CDF of a 1-D GaussianMixture at x."""
    sd = np.sqrt(mix.lambdas[:, 0])
    return np.sum(mix.weights * ndtr((x[:, None] - mix.means[:, 0]) / sd), axis=1)


def _segment_integral(length, d1, d2):
    """int |d| over segments where d is linear from d1 to d2: exact, sign changes included."""
    a1, a2 = np.abs(d1), np.abs(d2)
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = (d1**2 + d2**2) / (2 * (a1 + a2))
    return float(np.sum(length * np.where(d1 * d2 >= 0, 0.5 * (a1 + a2), crossing)))


def w1_to_cdf(sample, grid, F):
    """Exact W1 = int |F_n - F| between the empirical law of `sample` and the CDF
    that is linear between the points of `grid` (0 to the left, F[-1] to the right)."""
    s = np.sort(np.asarray(sample, dtype=np.float64))
    if not np.all(np.isfinite(s)):
        return np.inf
    pts = np.sort(np.concatenate([s, grid]))
    Fn = np.searchsorted(s, pts[:-1], side="right") / s.size  # constant on [pts_i, pts_i+1)
    Fa = np.interp(pts[:-1], grid, F, left=0.0)
    Fb = np.interp(pts[1:], grid, F, left=0.0)
    return _segment_integral(np.diff(pts), Fa - Fn, Fb - Fn)


def w1_between_cdfs(grid, F, G):
    """Exact W1 between two CDFs linear between the points of one grid."""
    d = F - G
    return _segment_integral(np.diff(grid), d[:-1], d[1:])


def fine_grid(name):
    """Where exact CDFs are evaluated: spacing ~1e-3, so linear interpolation of
    a CDF is off by < dx^2/8 int|p'| ~ 1e-6 in W1."""
    hw = HALF_WIDTH[name] + 5.0
    return np.linspace(-hw, hw, int(2 * hw / 1e-3) + 1)


def faces_of(x):
    dx = x[1] - x[0]
    return np.concatenate([[x[0] - dx / 2], x + dx / 2])


@functools.lru_cache(maxsize=None)
def noise_floor(name, t, n=N):
    """W1 between n exact samples of the marginal at t and its CDF: mean + 5 SD
    over replicates. Particles of a law L (here L is the EM law, within its
    measured bias of the exact one) are at W1 from L with this distribution."""
    mix = DATA.marginal_law(SDES[name], t)
    grid = fine_grid(name)
    F = mixture_cdf(mix, grid)
    w = [w1_to_cdf(mix.sample(n, rng=1000 + r), grid, F) for r in range(FLOOR_REPLICATES)]
    return float(np.mean(w) + Z * np.std(w, ddof=1))


def mixture_moments(mix):
    w, mu, lam = mix.weights, mix.means[:, 0], mix.lambdas[:, 0]
    mean = np.sum(w * mu)
    return mean, np.sum(w * (lam + mu**2)) - mean**2


def em_forward_laws(sde, steps, save_every):
    """The exact law of forward Euler-Maruyama from the data: each step
    x <- (1 + f(t_k) h) x + g(t_k) sqrt(h) z is affine and Gaussian, so the
    law after k steps is the mixture of a_k x_0 + sqrt(v_k) z."""
    h = sde.T / steps
    a, v, laws = 1.0, 0.0, [DATA]
    for k in range(steps):
        lin = 1.0 + float(sde.drift_coefficient(k * h)) * h
        a, v = lin * a, lin * lin * v + float(sde.diffusion(k * h)) ** 2 * h
        if (k + 1) % save_every == 0:
            laws.append(DATA.with_marginal(a, np.sqrt(v)))
    return laws


# ---- the reverse alpha-family -------------------------------------------------------

@functools.lru_cache(maxsize=None)
def start_particles():
    """Exact samples of p_T, the marginal at T = 1."""
    return DATA.marginal_law(VP, 1.0).sample(N, rng=3)


@functools.lru_cache(maxsize=None)
def reverse_particles(alpha):
    tr = ds.reverse(VP, SCORE, start_particles(), N_REV, method="em", alpha=alpha, rng=4,
                    save_every=N_REV // 4)
    np.testing.assert_allclose(tr.ts, [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-12)
    return tr


@functools.lru_cache(maxsize=None)
def reverse_bias(alpha, m=10_000):
    """Measured bias of reverse EM at N_REV steps, per saved time.

    Runs at N and 4N steps on one BrownianPath (coupled). W1(law_N, law) <=
    E|X^N - X| (a coupling) and, at strong order 1, E|X^N - X| ~ C/N, so
    E|X^N - X| <= (4/3) E|X^N - X^4N| (with 5 SE of the coupled estimate).
    The mean's bias is (4/3) times the coupled mean difference E[X^N - X^4N]
    plus 5 SE (far tighter than the W1 bound, which also bounds it, but has
    no power to see a shifted mean); the variance's bias is (4/3) times the
    coupled variance difference plus 5 SE."""
    x = start_particles()[:m]
    path = ds.BrownianPath((m,), (4 * N_REV).bit_length() - 1, rng=21) if alpha > 0 else None
    a = ds.reverse(VP, SCORE, x, N_REV, alpha=alpha, noise=path, save_every=N_REV // 4).xs
    b = ds.reverse(VP, SCORE, x, 4 * N_REV, alpha=alpha, noise=path, save_every=N_REV).xs
    d = np.abs(a - b)
    w1 = 4 / 3 * (d.mean(axis=1) + Z * d.std(axis=1, ddof=1) / np.sqrt(m))
    diff = a - b
    mean = 4 / 3 * (np.abs(diff.mean(axis=1)) + Z * diff.std(axis=1, ddof=1) / np.sqrt(m))
    q = (a - a.mean(axis=1, keepdims=True)) ** 2 - (b - b.mean(axis=1, keepdims=True)) ** 2
    var = 4 / 3 * (np.abs(q.mean(axis=1)) + Z * q.std(axis=1, ddof=1) / np.sqrt(m))
    return w1, mean, var


def tau_table(sde, steps, alpha, factor=None, sign=1.0):
    r"""The seed's display, Euler-Maruyama forward in tau = T - t, tau_j = j h:

        x_{j+1} = x_j + sign * h [-f(t) x_j + factor g(t)^2 s(x_j, t)] + alpha g(t) sqrt(h) z,

    t = T - tau_j, factor (1 + alpha^2)/2 by default, sign = -1 the "dt"
    reading. Step j uses noise interval N - 1 - j: the interval ds.reverse
    gives its step from t_k = T - tau_j (k = N - j, interval k - 1)."""
    factor = 0.5 * (1 + alpha**2) if factor is None else factor
    h = sde.T / steps
    j = np.arange(steps)
    t = sde.T - j * h
    f, g2 = sde.drift_coefficient(t), sde.diffusion(t) ** 2
    m, s = sde.marginal_coefficients(t)
    return ds.StepTable.affine(1 - sign * h * f, sign * factor * g2 * h, alpha * np.sqrt(g2 * h),
                               t=t, m=m, sd=s, interval=steps - 1 - j)


def reverse_tolerance(alpha, k):
    """W1 tolerance at saved index k (t = 1 - k/4) of the alpha run."""
    t = 1.0 - 0.25 * k
    return noise_floor("vp", t) + reverse_bias(alpha)[0][k]


# ---- the tests -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vp", "ve"])
def test_fokker_planck_equation_matches_particles(name):
    """"The individual trajectory of a marble is the SDE whereas the FPE tells
    us in an aggregate fashion where the marbles will be": 10^5 EM particles
    from the bimodal data against the FP solver's density at t = 1/4 .. 1.

    Tolerance (triangle inequality): W1(particles, FP) <= W1(particles, EM law)
    + W1(EM law, exact) + W1(exact, FP).
    * sampling noise: mean + 5 SD of the same statistic over exact replicates;
    * EM bias: exact, since EM on a linear SDE keeps the mixture Gaussian;
    * solver error, bounded without the exact answer (so that a wrong solver
      cannot widen its own tolerance): twice the Richardson estimate
      W1(p_{N/2}, p_N) of the first-order time error, plus the W1 error of the
      cell-centre initial density (the FP flow does not expand W1: VE is a
      convolution, VP a contraction and a convolution). The solver's actual
      distance to the exact marginal is asserted to lie within that bound."""
    sde = SDES[name]
    x = np.linspace(-HALF_WIDTH[name], HALF_WIDTH[name], 2001)
    faces, fine = faces_of(x), fine_grid(name)
    p0 = np.exp(DATA.logpdf(x))
    e_initial = w1_between_cdfs(fine, np.interp(fine, faces, np.r_[0.0, np.cumsum(p0)] * (x[1] - x[0]),
                                                left=0.0), mixture_cdf(DATA, fine))
    tr = ds.forward(sde, DATA.sample(N, rng=11), N_FWD, method="em", rng=12, save_every=N_FWD // 4)
    sol = fp.solve_forward(sde, p0, x, steps=N_FWD, save_every=N_FWD // 4)
    half = fp.solve_forward(sde, p0, x, steps=N_FWD // 2, save_every=N_FWD // 8)
    np.testing.assert_allclose(tr.ts, sol.ts, atol=1e-12)
    np.testing.assert_allclose(half.ts, sol.ts, atol=1e-12)
    np.testing.assert_array_equal(sol.p[0], p0)
    assert np.max(np.abs(sol.mass() - sol.mass()[0])) < 1e-10 and sol.p.min() >= 0
    laws = em_forward_laws(sde, N_FWD, N_FWD // 4)
    resolved = 0
    for k in range(1, len(sol.ts)):
        t = sol.ts[k]
        F_exact = mixture_cdf(DATA.marginal_law(sde, t), fine)
        F_fp = np.interp(fine, faces, sol.cdf(k), left=0.0)
        fp_bound = 2 * w1_between_cdfs(fine, np.interp(fine, faces, half.cdf(k), left=0.0), F_fp) + e_initial
        e_fp = w1_between_cdfs(fine, F_fp, F_exact)
        assert e_fp <= fp_bound, (t, e_fp, fp_bound)
        e_em = w1_between_cdfs(fine, mixture_cdf(laws[k], fine), F_exact)
        tol = noise_floor(name, t) + e_em + fp_bound
        w = w1_to_cdf(tr.xs[k], faces, sol.cdf(k))
        assert w <= tol, (t, w, tol, e_em, fp_bound)
        # power: where the exact marginals one saved time apart differ by more
        # than 2 tol, the FP density of the earlier time is told apart
        gap = w1_between_cdfs(fine, mixture_cdf(DATA.marginal_law(sde, sol.ts[k - 1]), fine), F_exact)
        if gap > 2 * tol:
            resolved += 1
            assert w1_to_cdf(tr.xs[k], faces, sol.cdf(k - 1)) > tol, (t, gap, tol)
    assert resolved >= 2


def test_reverse_fokker_planck_equation_in_tau():
    r"""The seed's manipulation, checked as a PDE identity on the exact VP
    marginals p(x, t) of the mixture. With q(x, tau) = p(x, T - tau),

        d_tau q = -d_x[(-f x + (1 + alpha^2)/2 g^2 d_x log p) q] + alpha^2 g^2/2 d_x^2 q

    for every alpha: the central-difference residual (step delta in x and t)
    vanishes at order 2 +- 0.15. The seed's first display, "d_t p(x, tau(t)) =
    -d_x[mu p] + 1/2 d_x^2[sigma^2 p]", puts d/dt where the forward FPE has
    d/dtau: after its chain rule it claims -d_s p(x, s) = (forward FPE right
    side) at s = tau, whose residual -2 d_s p does not shrink with delta."""
    xs = np.linspace(-4.0, 4.0, 161)
    deltas = np.array([4e-3, 2e-3, 1e-3])

    def p(x, t):
        return np.exp(DATA.marginal_law(VP, t).logpdf(x))

    for s in (0.1, 0.4, 0.8):  # forward time s = tau(t)
        f, g2 = float(VP.drift_coefficient(s)), float(VP.diffusion(s)) ** 2

        def reverse_flux(x, alpha):
            return (-f * x + 0.5 * (1 + alpha**2) * g2 * SCORE(x, s)) * p(x, s)

        ds_p = [(p(xs, s + d) - p(xs, s - d)) / (2 * d) for d in deltas]
        lap = [(p(xs + d, s) - 2 * p(xs, s) + p(xs - d, s)) / d**2 for d in deltas]
        scale = np.max(np.abs(ds_p[-1]))
        for alpha in ALPHAS:
            residuals = []
            for d, dp, lp in zip(deltas, ds_p, lap):
                div = (reverse_flux(xs + d, alpha) - reverse_flux(xs - d, alpha)) / (2 * d)
                diffusion = 0.5 * alpha**2 * g2 * lp
                residuals.append(np.max(np.abs(-dp + div - diffusion)))  # d_tau q = -d_s p
            terms = max(scale, np.max(np.abs(div)), np.max(np.abs(diffusion)))
            assert fitted_slope(deltas, residuals) == pytest.approx(2.0, abs=0.15), (s, alpha, residuals)
            assert residuals[-1] < 1e-3 * terms, (s, alpha, residuals, terms)
        literal = []
        for d, dp, lp in zip(deltas, ds_p, lap):
            rhs = -(f * (xs + d) * p(xs + d, s) - f * (xs - d) * p(xs - d, s)) / (2 * d) + 0.5 * g2 * lp
            literal.append(np.max(np.abs(-dp - rhs)))
        assert abs(fitted_slope(deltas, literal)) < 0.15, (s, literal)
        assert min(literal) > 1.5 * scale, (s, literal, scale)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_alpha_family_carries_pT_back_to_data(alpha):
    """"dX(tau) = {-mu + 1/2 sigma^2 (1 + alpha^2) d_x log p} d tau + alpha sigma
    dW(tau)": 10^5 exact samples of p_T (T = 1) run back with ds.reverse(em,
    alpha) have the exact marginals at t = 3/4, 1/2, 1/4 and the data law at 0.

    W1 against the exact CDF <= floor (mean + 5 SD of exact replicates) +
    measured EM bias; mean and variance within 5 SE + measured bias."""
    tr = reverse_particles(alpha)
    _, mean_bias, var_bias = reverse_bias(alpha)
    fine = fine_grid("vp")
    np.testing.assert_array_equal(tr.xs[0], start_particles())
    for k in range(1, len(tr.ts)):
        t = tr.ts[k]
        exact = DATA.marginal_law(VP, t)
        w = w1_to_cdf(tr.xs[k], fine, mixture_cdf(exact, fine))
        assert w <= reverse_tolerance(alpha, k), (t, w, reverse_tolerance(alpha, k))
        mean, var = mixture_moments(exact)
        err = moment_errors(tr.xs[k], mean, var)
        assert abs(err["mean_error"][0]) <= Z * err["mean_stderr"][0] + mean_bias[k], (t, err)
        assert abs(err["var_error"][0]) <= Z * err["var_stderr"][0] + var_bias[k], (t, err)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_alpha_family_fokker_planck_carries_pT_back_to_data(alpha):
    """The same claim for densities: fp.solve_reverse from the exact p_T with
    the exact score. Refining time and space together (N = 64, 128, 256 steps
    on 1201, 2401, 4801 cells; backward Euler is first order in time, the
    upwind flux of alpha = 0 first order in space), W1 to the exact marginal
    at t = 3/4 .. 0 falls at order 1 +- 0.15: the solver converges to p_t, not
    to a neighbour. Then the 10^5 particles of the alpha run match the finest
    density within floor + EM bias + the solver's own W1 error."""
    steps, cells = [64, 128, 256], [1201, 2401, 4801]
    p_T = DATA.marginal_law(VP, 1.0)
    errors = []
    for n, nx in zip(steps, cells):
        x = np.linspace(-HALF_WIDTH["vp"], HALF_WIDTH["vp"], nx)
        faces = faces_of(x)
        sol = fp.solve_reverse(VP, SCORE, np.exp(p_T.logpdf(x)), x, alpha=alpha, steps=n, save_every=n // 4)
        np.testing.assert_allclose(sol.ts, [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-12)
        assert np.max(np.abs(sol.mass() - sol.mass()[0])) < 1e-10 and sol.p.min() >= 0
        errors.append([w1_between_cdfs(faces, sol.cdf(k), mixture_cdf(DATA.marginal_law(VP, t), faces))
                       for k, t in enumerate(sol.ts)])
    errors, finest, finest_faces = np.array(errors), sol, faces
    for k in range(1, 5):
        assert fitted_slope(steps, errors[:, k]) == pytest.approx(-1.0, abs=0.15), (k, errors[:, k])
    tr = reverse_particles(alpha)
    for k in range(1, 5):
        w = w1_to_cdf(tr.xs[k], finest_faces, finest.cdf(k))
        assert w <= reverse_tolerance(alpha, k) + errors[-1, k], (k, w)


def test_probability_flow_alpha_zero_is_deterministic():
    """alpha = 0: "there is no diffusion term occurring in this formulation": the
    output does not depend on rng (bit for bit), while alpha = 0.5 does."""
    x = start_particles()[:2000]
    run = functools.partial(ds.reverse, VP, SCORE, x, 128, method="em")
    np.testing.assert_array_equal(run(alpha=0.0, rng=1).x, run(alpha=0.0, rng=2).x)
    assert np.all(run(alpha=0.5, rng=1).x != run(alpha=0.5, rng=2).x)


@pytest.mark.parametrize("name", ["vp", "ve"])
@pytest.mark.parametrize("alpha", ALPHAS)
def test_reverse_time_drift_in_tau(name, alpha):
    """"the displayed reverse SDE runs in tau with d tau > 0": the seed's
    drift -f + (1 + alpha^2)/2 g^2 s, integrated *forward* in tau = T - t by
    a NumPy Euler-Maruyama loop, is ds.reverse in t (same normals: step j of
    the tau loop uses the noise ds.reverse gives its step from t = T - tau_j).
    The tau-table run by the C driver with the fused score agrees too."""
    sde = SDES[name]
    score = DATA.score(sde)
    steps, m = 200, 2000
    x0 = DATA.marginal_law(sde, 1.0).sample(m, rng=31)
    z = ds.standard_normal((steps, m), rng=32)
    h = sde.T / steps
    x = x0.copy()
    for j in range(steps):  # tau_j = j h, t = T - tau_j
        t = sde.T - j * h
        g = float(sde.diffusion(t))
        drift_tau = -sde.drift(x, t) + 0.5 * (1 + alpha**2) * g**2 * score(x, t)
        x = x + drift_tau * h + alpha * g * np.sqrt(h) * z[steps - 1 - j]
    kw = {"noise": z} if alpha > 0 else {}
    ref = ds.reverse(sde, score, x0, steps, method="em", alpha=alpha, **kw).x
    np.testing.assert_allclose(x, ref, rtol=0, atol=1e-9)
    assert np.max(np.abs(ref - x0)) > 0.1  # the runs move
    table_run = ds.run_steps(x0, tau_table(sde, steps, alpha), score=score, **kw).x
    np.testing.assert_allclose(table_run, ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_reverse_drift_read_with_dt_does_not_reach_data(alpha):
    """The seed's first display ends "... } dt": read in forward time t, run from
    T down to 0 (dt = -h), the drift's sign flips, x <- x - h[-f x + (1 +
    alpha^2)/2 g^2 s] + noise. The same 10^5 starts, normals and C driver as
    the alpha run: W1 to the data law is over 10x that run's tolerance (the
    particles move against the score: alpha = 0 ends with spread ~0.5 against
    the data's 1.55, alpha = 1 with spread ~10^3)."""
    table = tau_table(VP, N_REV, alpha, sign=-1.0)
    xs = ds.run_steps(start_particles(), table, score=SCORE, rng=4, nonfinite="ignore").x
    fine = fine_grid("vp")
    tol = reverse_tolerance(alpha, 4)
    w = w1_to_cdf(xs, fine, mixture_cdf(DATA, fine))
    assert w > 10 * tol, (w, tol)
    # the correct sign through the same table and key is ds.reverse
    good = ds.run_steps(start_particles()[:5000], tau_table(VP, N_REV, alpha), score=SCORE, rng=4).x
    np.testing.assert_allclose(good, reverse_particles(alpha).x[:5000], rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["vp", "ve"])
@pytest.mark.parametrize("alpha", ALPHAS)
def test_reverse_sde_object_is_seed_formula_in_forward_time(name, alpha):
    """sde.reverse(score, alpha) gives the seed's SDE written in forward time:
    drift = -(seed's tau-drift) = f - (1 + alpha^2)/2 g^2 s, diffusion alpha g;
    and one ds.reverse step from t to t - h is x - h drift + diffusion sqrt(h) z."""
    sde = SDES[name]
    score = DATA.score(sde)
    rsde = sde.reverse(score, alpha)
    x = np.linspace(-4.0, 4.0, 41)
    for t in (0.9, 0.5, 0.1):
        g = float(sde.diffusion(t))
        seed_tau_drift = -sde.drift(x, t) + 0.5 * (1 + alpha**2) * g**2 * score(x, t)
        np.testing.assert_allclose(rsde.drift(x, t), -seed_tau_drift, rtol=1e-12, atol=1e-12)
        assert rsde.diffusion(t) == pytest.approx(alpha * g, rel=1e-14, abs=0)
        h = 1e-3
        z = ds.standard_normal((1, x.size), rng=41)
        kw = {"noise": z} if alpha > 0 else {}
        step = ds.reverse(sde, score, x, 1, method="em", alpha=alpha, t_start=t, t_end=t - h, **kw).x
        np.testing.assert_allclose(step, x - h * rsde.drift(x, t) + rsde.diffusion(t) * np.sqrt(h) * z[0],
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha, factor", [(1.0, 0.5), (1.0, 1.0), (2.0, 1.0), (2.0, 2.5)])
def test_diffusion_correction_factor(alpha, factor):
    """"diffusion correction" 1/2 sigma^2 (1 + alpha^2): with alpha = 1 the score
    term needs factor 1, not the probability-flow 1/2; with alpha = 2 it needs
    5/2, not Anderson's 1. Same starts, normals and driver as the alpha run
    (tau-table, fused score); only the factor differs. A wrong factor leaves
    the particles over-dispersed: W1 to the data law far above the correct
    run's tolerance and the variance above the data's by far more than 5 SE +
    bias. The right factor passes the same checks (positive control)."""
    table = tau_table(VP, N_REV, alpha, factor=factor)
    xs = ds.run_steps(start_particles(), table, score=SCORE, rng=4).x
    fine = fine_grid("vp")
    tol = reverse_tolerance(alpha, 4)
    w = w1_to_cdf(xs, fine, mixture_cdf(DATA, fine))
    mean, var = mixture_moments(DATA)
    err = moment_errors(xs, mean, var)
    var_tol = Z * err["var_stderr"][0] + reverse_bias(alpha)[2][4]
    if factor == 0.5 * (1 + alpha**2):
        assert w <= tol and abs(err["var_error"][0]) <= var_tol, (w, tol, err)
    else:
        assert w > 5 * tol, (w, tol)
        assert err["var_error"][0] > 5 * var_tol, (err, var_tol)

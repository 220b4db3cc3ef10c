"""The process protocol: AffineSDE from (m, s), the built-ins as instances of
it, EDM and RectifiedFlow, and a user's own process in ds.forward/ds.reverse."""
import pathlib
import re

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import diffsde as ds
from diffsde import analysis

ROOT = pathlib.Path(__file__).resolve().parents[1]


def by_hand(sde, derivatives=False):
    """An AffineSDE from a built-in's own m and s (and, optionally, its
    closed-form dm/dt and d s^2/dt)."""
    extra = dict(dmean=sde.dmean, dvar=sde.dvar) if derivatives else {}
    return ds.AffineSDE(lambda t: sde.marginal_coefficients(t)[0], lambda t: sde.marginal_coefficients(t)[1], sde.T, **extra)


BUILT_INS = {
    "vp": ds.VPSDE(0.1, 20.0),
    "vp_T2_decreasing": ds.VPSDE(15.0, 0.5, T=2.0),
    "subvp": ds.SubVPSDE(0.1, 20.0),
    "ve": ds.VESDE(0.01, 50.0),
    "ve_T3": ds.VESDE(0.1, 10.0, T=3.0),
}


def closed_forms(sde, t):
    """dm/dt, d s^2/dt, f and g^2 from the schedules' formulas (Song et al. 2021)."""
    if isinstance(sde, ds.VPSDE):
        beta, big_b = sde.beta(t), sde.integrated_beta(t)
        m = np.exp(-big_b / 2)
        if isinstance(sde, ds.SubVPSDE):
            dvar = 2 * -np.expm1(-big_b) * beta * np.exp(-big_b)
            g2 = beta * -np.expm1(-2 * big_b)
        else:
            dvar, g2 = beta * np.exp(-big_b), beta
        return -beta / 2 * m, dvar, -beta / 2, g2
    r = sde.schedule.sigma_max / sde.schedule.sigma_min
    dsig2 = 2 * np.log(r) / sde.T * sde.sigma(t) ** 2
    return np.zeros_like(t), dsig2, np.zeros_like(t), dsig2


TIMES = {name: np.r_[np.linspace(0.0, sde.T, 401), sde.T * np.array([1e-9, 1e-6, 1e-3, 1 - 1e-3, 1 - 1e-9])]
         for name, sde in BUILT_INS.items()}


@pytest.mark.parametrize("name", BUILT_INS)
def test_numerical_derivatives_match_the_closed_forms(name):
    """Ridders' differences (one-sided at the ends) give dm/dt, f and g^2 to
    1e-10 relative, and d s^2/dt to 1e-10 relative to |d s^2/dt| + s^2/T
    plus 1e-14 of its largest value (where s^2 is near its plateau, the
    derivative is small beside s^2 and differences of s^2 lose relative
    precision there; at t = 0 both vanish), at 406 times including both ends."""
    sde, t = BUILT_INS[name], TIMES[name]
    aff = by_hand(sde)
    dmean, dvar, f, g2 = closed_forms(sde, t)
    _, s = sde.marginal_coefficients(t)
    np.testing.assert_allclose(aff.dmean(t), dmean, rtol=1e-10, atol=0)
    assert np.all(np.abs(aff.dvar(t) - dvar) <= 1e-10 * (np.abs(dvar) + s * s / sde.T)
                  + 1e-14 * np.max(np.abs(dvar)))
    np.testing.assert_allclose(aff.drift_coefficient(t), f, rtol=1e-10, atol=1e-14)
    # sub-VP's g^2 vanishes at t = 0: there the accuracy is 1e-14 of its largest value
    np.testing.assert_allclose(aff.diffusion(t) ** 2, g2, rtol=1e-10, atol=1e-14 * np.max(g2))
    # the built-ins' own closed forms agree with the formulas too
    np.testing.assert_allclose(sde.dmean(t), dmean, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(sde.dvar(t), dvar, rtol=1e-13)


@pytest.mark.parametrize("name", BUILT_INS)
def test_sigma_and_lambda_and_their_inverses(name):
    sde, t = BUILT_INS[name], np.linspace(0.0, BUILT_INS[name].T, 101)[1:]
    m, s = sde.marginal_coefficients(t)
    np.testing.assert_allclose(sde.sigma_of_t(t), s / m, rtol=1e-15)
    np.testing.assert_allclose(sde.lambda_of_t(t), np.log(m / s), rtol=1e-13)
    aff = by_hand(sde)
    for proc in (sde, aff):  # closed form, then the bracketed bisection
        np.testing.assert_allclose(proc.t_of_sigma(s / m), t, rtol=1e-12, atol=1e-14 * sde.T)
        np.testing.assert_allclose(proc.t_of_lambda(np.log(m) - np.log(s)), t, rtol=1e-12, atol=1e-14 * sde.T)
    assert isinstance(sde.t_of_sigma(float(s[3] / m[3])), float)


def test_edm_and_rectified_flow_closed_forms():
    edm = ds.EDM()
    t = np.linspace(0.0, 80.0, 81)
    m, s = edm.marginal_coefficients(t)
    assert edm.T == 80.0 and edm.prior_std() == 80.0
    np.testing.assert_array_equal(m, 1.0)
    np.testing.assert_array_equal(s, t)
    np.testing.assert_array_equal(edm.drift_coefficient(t), 0.0)
    np.testing.assert_allclose(edm.diffusion(t) ** 2, 2 * t, rtol=1e-15)
    np.testing.assert_allclose(edm.t_of_sigma(t), t)
    np.testing.assert_allclose(edm.t_of_lambda(-np.log(t[1:])), t[1:], rtol=1e-15)
    # the numerical protocol agrees with the closed forms
    aff = ds.AffineSDE(lambda u: np.ones_like(u), lambda u: u, T=80.0)
    np.testing.assert_allclose(aff.diffusion(t) ** 2, 2 * t, rtol=1e-10, atol=1e-12)

    rf = ds.RectifiedFlow()
    u = np.linspace(0.0, 0.99, 100)
    m, s = rf.marginal_coefficients(u)
    np.testing.assert_allclose(m, 1 - u)
    np.testing.assert_allclose(s, u)
    np.testing.assert_allclose(rf.drift_coefficient(u), -1 / (1 - u), rtol=1e-15)
    np.testing.assert_allclose(rf.diffusion(u) ** 2, 2 * u / (1 - u), rtol=1e-14)
    np.testing.assert_allclose(rf.t_of_sigma(u / (1 - u)), u, rtol=1e-15, atol=1e-17)
    np.testing.assert_allclose(rf.t_of_lambda(np.log((1 - u[1:]) / u[1:])), u[1:], rtol=1e-14)
    assert rf.t_of_sigma(np.inf) == 1.0
    assert rf.default_t_start == 1 - 1e-3 and ds.VPSDE().default_t_start == 1.0
    num = ds.AffineSDE(lambda v: 1 - v, lambda v: v)
    np.testing.assert_allclose(num.drift_coefficient(u), -1 / (1 - u), rtol=1e-10)
    np.testing.assert_allclose(num.diffusion(u) ** 2, 2 * u / (1 - u), rtol=1e-10)


def test_rectified_flow_reverse_starts_below_its_singular_end():
    rf = ds.RectifiedFlow()
    tr = ds.reverse(rf, ds.LinearScore(0.5, 0.25), None, 100, shape=(4, 1), rng=0, save_every=100)
    assert tr.ts[0] == rf.default_t_start and np.all(np.isfinite(tr.x))
    # the prior is N(0, s(t_start)^2): the exact marginal's std up to m(t_start) = 1e-3 of the data
    big = ds.reverse(rf, ds.LinearScore(0.5, 0.25), None, 1, shape=(20000, 1), rng=1, method="em", alpha=0.0,
                     save_at=[1])
    start = big.xs[0]
    assert abs(start.std() - rf.marginal_coefficients(rf.default_t_start)[1]) < 5 * 0.999 / np.sqrt(2 * 20000)


# ---- the invariant: VPSDE's own (m, s) reproduce VPSDE -------------------------------

VP = ds.VPSDE(0.1, 20.0)
GM = ds.datasets.bimodal_1d()


def _callable_score(x, t):
    return GM.score(VP)(x, t)


@pytest.mark.parametrize("derivatives", [False, True], ids=["numerical", "given"])
@pytest.mark.parametrize("run", [
    "forward-em", "forward-exact", "reverse-em-alpha1-mixture", "reverse-em-alpha0-mixture",
    "reverse-ode_heun-mixture", "reverse-em-alpha1-callable", "reverse-ode_heun-callable"])
def test_affine_sde_from_vp_reproduces_vpsde(run, derivatives):
    aff = by_hand(VP, derivatives)
    x = np.random.default_rng(3).standard_normal((64, 1))
    kind, method, *rest = run.split("-")

    def go(proc):
        if kind == "forward":
            return ds.forward(proc, x, 200, method=method, rng=5, save_every=50)
        alpha = 0.0 if "alpha0" in rest else 1.0
        score = GM if "mixture" in rest else _callable_score
        kw = dict(alpha=alpha) if method == "em" else {}
        return ds.reverse(proc, score, x, 200, method=method, rng=5, save_every=50, **kw)

    ours, theirs = go(aff), go(VP)
    np.testing.assert_array_equal(ours.ts, theirs.ts)
    assert ours.nfe == theirs.nfe
    np.testing.assert_allclose(ours.xs, theirs.xs, rtol=1e-9, atol=1e-9 * np.abs(theirs.xs).max())


# ---- a user's own process ------------------------------------------------------------

class CosineVP(ds.AffineSDE):
    """A cosine VP schedule given by m and s only (Nichol & Dhariwal 2021,
    without the clip): m = cos(theta(t)) / cos(theta(0)), s = sqrt(1 - m^2),
    theta(t) = (t + c) / (1 + c) pi / 2, on [0, 0.9]."""

    c = 0.008

    def __init__(self):
        super().__init__(T=0.9, name="CosineVP()")

    def _theta(self, t):
        return (t + self.c) / (1 + self.c) * np.pi / 2

    def mean(self, t):
        return np.cos(self._theta(t)) / np.cos(self._theta(0.0))

    def std(self, t):
        return np.sqrt(1 - self.mean(t) ** 2)


DATA_MEAN, DATA_VAR = 0.5, 0.25


def _exact_mean_path(proc, x_start, t_start, alpha):
    """The mean of the reverse alpha-SDE from x_start with the exact linear
    score of N(DATA_MEAN, DATA_VAR): dmu/dt = f mu - (1 + alpha^2)/2 g^2 (m mu_0 - mu)/(m^2 v_0 + s^2)."""

    def rhs(t, mu):
        m, s = proc.marginal_coefficients(t)
        f, g2 = proc.drift_coefficient(t), proc.diffusion(t) ** 2
        return f * mu - 0.5 * (1 + alpha**2) * g2 * (m * DATA_MEAN - mu) / (m * m * DATA_VAR + s * s)

    sol = solve_ivp(rhs, (t_start, 0.0), x_start, method="DOP853", rtol=1e-13, atol=1e-13)
    return sol.y[:, -1]


def test_user_process_runs_every_applicable_method():
    proc = CosineVP()
    x = np.random.default_rng(0).standard_normal((8, 1))
    score = ds.LinearScore(DATA_MEAN, DATA_VAR)
    for method in ("em", "exact"):
        tr = ds.forward(proc, x, 16, method=method, rng=1)
        assert np.all(np.isfinite(tr.x))
    for kw in (dict(method="em"), dict(method="em", alpha=0.0), dict(method="ode_heun"),
               dict(method="em", corrector="langevin"), dict(method="dpm_solver"), dict(method="unipc"),
               dict(method="plms")):
        for sc in (score, ds.GaussianMixture([1.0], [[DATA_MEAN]], [DATA_VAR]), lambda v, t: -v):
            tr = ds.reverse(proc, sc, x, 16, rng=1, **kw)
            assert np.all(np.isfinite(tr.x))
    # and every other method available on it (the k-diffusion samplers, ddim in sigma-space)
    for method in [m for m in ds.methods.available(proc) if m != "rk45"]:
        assert np.all(np.isfinite(ds.reverse(proc, score, x, 16, method=method, rng=1).x)), method
    for sc in (score, ds.GaussianMixture([1.0], [[DATA_MEAN]], [DATA_VAR]), lambda v, t: -v):
        tr = ds.reverse(proc, sc, x, method="rk45")  # adaptive: it chooses its own steps
        assert np.all(np.isfinite(tr.x)) and tr.accepted > 0
    with pytest.raises(ValueError, match=re.escape("method 'ancestral' is not available for CosineVP in reverse")
                       + ".*valid: em, ode_heun, rk45, euler, .*, plms, ddim$"):
        ds.reverse(proc, score, x, 16, method="ancestral")
    # forward exact samples the marginal: mean m x0 and variance s^2 at T
    x0 = np.full((40000, 1), 0.7)
    tr = ds.forward(proc, x0, 4, method="exact", rng=2)
    m, s = proc.marginal_coefficients(proc.T)
    n = x0.shape[0]
    assert abs(tr.x.mean() - m * 0.7) < 5 * s / np.sqrt(n)
    assert abs(tr.x.var() / s**2 - 1) < 5 * np.sqrt(2 / n)


@pytest.mark.parametrize("method, alpha, order", [("em", 1.0, 1.0), ("em", 0.0, 1.0), ("ode_heun", 0.0, 2.0)])
def test_user_process_converges_at_the_expected_order(method, alpha, order):
    """With the exact score of Gaussian data the reverse drift is linear, so a
    run with zero noise follows the mean of the Euler-Maruyama iterates: its
    error against the exact mean path (SciPy, DOP853) falls as N^-1 for EM
    (weak order 1 in the mean; alpha = 0 is Euler on the ODE) and N^-2 for
    Heun on the probability-flow ODE."""
    proc = CosineVP()
    score = ds.LinearScore(DATA_MEAN, DATA_VAR)
    x = np.array([[-1.5], [0.3], [2.0]])
    exact = _exact_mean_path(proc, x[:, 0], proc.T, alpha)
    steps = np.array([32, 64, 128, 256, 512])
    errors = []
    for n in steps:
        kw = dict(alpha=alpha) if method == "em" else {}
        tr = ds.reverse(proc, score, x, int(n), method=method, noise=np.zeros((n, 3, 1)), **kw)
        errors.append(np.max(np.abs(tr.x[:, 0] - exact)))
    fit = analysis.fit_order(steps, np.array(errors))
    assert fit.ci is not None
    assert fit.ci[0] <= order <= fit.ci[1] or abs(fit.order - order) < 0.05, (fit, errors)
    assert abs(fit.order - order) < 0.1, (fit, errors)


def test_docs_processes_example_runs():
    """The runnable example of docs/processes.md."""
    text = (ROOT / "docs" / "processes.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/processes.md", "exec"), {})


def test_the_issue_example_runs_on_a_user_subclass():
    """A user's own process used to be refused with 'process must be a VPSDE,
    VESDE, SubVPSDE, DDPM or SMLD; got EDMLike'; now it runs, and the built-in
    scores bind to it through its marginal."""

    class EDMLike(ds.AffineSDE):
        def __init__(self):
            super().__init__(T=10.0)

        def mean(self, t):
            return np.ones_like(t)

        def std(self, t):
            return t

    data = ds.datasets.eight_gaussians()
    proc = EDMLike()
    tr = ds.reverse(proc, data, shape=(200, 2), steps=64, method="ode_heun", rng=0)
    assert tr.x.shape == (200, 2) and np.all(np.isfinite(tr.x))
    emp = ds.EmpiricalData(np.array([[0.0, 1.0], [2.0, -1.0]]))
    tr = ds.reverse(proc, emp, shape=(50, 2), steps=64, rng=0)
    assert np.all(np.isfinite(tr.x))
    # the numerical f and g^2 are EDM's closed forms
    t = np.linspace(0.0, 10.0, 41)
    np.testing.assert_allclose(proc.diffusion(t) ** 2, 2 * t, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(proc.drift_coefficient(t), 0.0)


def test_user_process_inverse_maps_match_the_cosine_closed_form():
    proc = CosineVP()
    t = np.linspace(0.01, proc.T, 50)
    sigma = proc.sigma_of_t(t)
    # m = 1 / sqrt(1 + sigma^2) = cos(theta) / cos(theta_0)
    theta = np.arccos(np.cos(proc._theta(0.0)) / np.sqrt(1 + sigma**2))
    closed = theta * 2 / np.pi * (1 + proc.c) - proc.c
    np.testing.assert_allclose(proc.t_of_sigma(sigma), closed, rtol=1e-12)
    np.testing.assert_allclose(proc.t_of_lambda(-np.log(sigma)), closed, rtol=1e-12)
    with pytest.raises(ValueError, match=r"sigma must lie in \[0, "):
        proc.t_of_sigma(1e6)


def test_numerical_derivatives_do_not_depend_on_the_block_size(monkeypatch):
    """Long grids are differentiated in blocks (bounded memory); each time's
    estimate is chosen per element, so blocks change no bit."""
    from diffsde import sde as sde_module

    aff = by_hand(ds.SubVPSDE())
    t = np.linspace(0.0, 1.0, 1001)
    whole = aff.diffusion(t)
    monkeypatch.setattr(sde_module, "DERIVATIVE_BLOCK", 7)
    np.testing.assert_array_equal(aff.diffusion(t), whole)
    np.testing.assert_array_equal(aff.dvar(t.reshape(7, 143)), aff.dvar(t).reshape(7, 143))


def test_likelihood_fokker_planck_and_analysis_take_any_affine_sde():
    """The consumers of the protocol see the same numbers from VPSDE and from
    an AffineSDE of its (m, s)."""
    from diffsde import fokker_planck

    aff = by_hand(VP)
    x = GM.sample(5, rng=0)
    np.testing.assert_allclose(ds.log_likelihood(aff, GM.score(aff), x, steps=200),
                               ds.log_likelihood(VP, GM.score(VP), x, steps=200), rtol=1e-9)
    grid = np.linspace(-5.0, 5.0, 201)
    p0 = np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi)
    ours = fokker_planck.solve_forward(aff, p0, grid, steps=100)
    theirs = fokker_planck.solve_forward(VP, p0, grid, steps=100)
    np.testing.assert_allclose(ours.p, theirs.p, rtol=1e-9, atol=1e-14)
    x0 = np.random.default_rng(1).standard_normal(200)
    study_aff = analysis.strong_error(aff, x0, [4, 8, 16], rng=0)
    study_vp = analysis.strong_error(VP, x0, [4, 8, 16], rng=0)
    np.testing.assert_allclose(study_aff.errors, study_vp.errors, rtol=1e-8)


def test_a_subclass_defining_marginal_drift_and_diffusion_runs():
    """The issue's example: a subclass that defines marginal(t),
    drift_coefficient(t) and diffusion(t) in closed form (EDM's), with or
    without calling AffineSDE.__init__, runs reverse like the built-in EDM."""

    class MyEDM(ds.sde.SDE):
        T = 80.0

        def marginal(self, t):
            t = np.asarray(self._check_t(t), dtype=np.float64)
            return np.ones_like(t)[()], t[()]

        def drift_coefficient(self, t):
            return 0.0 * np.asarray(self._check_t(t))

        def diffusion(self, t):
            return np.sqrt(2 * np.asarray(self._check_t(t)))

    class MyEDMInit(MyEDM):
        def __init__(self):
            super().__init__(T=80.0)

    gm = ds.datasets.bimodal_1d()
    ref = ds.reverse(ds.EDM(), gm, None, 50, shape=(16, 1), rng=3, method="ode_heun")
    for proc in (MyEDM(), MyEDMInit()):
        tr = ds.reverse(proc, gm, None, 50, shape=(16, 1), rng=3, method="ode_heun")
        np.testing.assert_array_equal(tr.x, ref.x)
        np.testing.assert_allclose(proc.t_of_sigma([1.0, 40.0]), [1.0, 40.0], rtol=1e-12)


def test_marginal_names_say_what_they_take_and_the_old_ones_warn():
    """SDE.marginal_coefficients(t), Chain.marginal_coefficients(i) and GaussianMixture.marginal_coefficients(process, t)
    shared one name; the new names are marginal_coefficients(t),
    marginal_coefficients(i) and marginal_law(process, t), and the old ones
    are deprecated aliases returning the same values."""
    ddpm = ds.DDPM.from_sde(VP, 8, rule="exact")
    t = np.linspace(0.0, 1.0, 5)
    for proc, arg in ((VP, t), (ds.EDM(), t), (by_hand(VP), t), (ddpm, np.arange(9)), (ds.SMLD([1.0, 2.0]), 2)):
        new = proc.marginal_coefficients(arg)
        with pytest.warns(DeprecationWarning, match="marginal_coefficients"):
            old = proc.marginal(arg)
        np.testing.assert_array_equal(new[0], old[0])
        np.testing.assert_array_equal(new[1], old[1])
    law = GM.marginal_law(VP, 0.5)
    with pytest.warns(DeprecationWarning, match="marginal_law"):
        old = GM.marginal(VP, 0.5)
    np.testing.assert_array_equal(law.covs, old.covs)
    np.testing.assert_array_equal(law.means, old.means)
    # the package itself calls only the new names: a run warns nothing
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        ds.reverse(VP, GM, None, 8, shape=(4, 1), rng=0, corrector="langevin")
        ds.reverse(ddpm, GM, None, shape=(4, 1), rng=0)
        ds.reverse(ddpm, ds.score_from_eps(lambda x, t: 0 * x, ddpm), None, shape=(4, 1), rng=0)
        ds.forward(ds.EDM(), np.zeros((4, 1)), 8, rng=0)

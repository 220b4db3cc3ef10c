"""Every public entry point answers bad input with a clear error that names
the argument, and leaves its inputs unchanged (table-driven).

The first word of a case's id is the public name it exercises (a method
counts for its class); ``test_every_public_entry_point_has_a_bad_input_case``
derives the names from ``diffsde.__all__``, so a new entry point without a
case fails it.
"""
import inspect
import re
import types

import numpy as np
import pytest

import diffsde as ds
from diffsde import _threads, analysis, fokker_planck

# Bad input to the deprecated ``marginal`` aliases is checked like any other.
pytestmark = pytest.mark.filterwarnings("ignore:.*marginal.*is deprecated:DeprecationWarning")

VP, VE = ds.VPSDE(), ds.VESDE()
AFF = ds.AffineSDE(lambda t: 1 - 0.5 * t, lambda t: t)
GM = ds.datasets.eight_gaussians()
X = np.random.default_rng(0).standard_normal((16, 2))
X1 = np.random.default_rng(1).standard_normal(16)
TABLE = ds.StepTable.affine(np.full(4, 0.9), 0.1, 0.2)
NAN_X = X.copy()
NAN_X[3, 1] = np.nan
SCORE = ds.LinearScore()
#: The k-diffusion samplers, listed after the SDE methods on every process.
K_SAMPLERS = ("euler, euler_ancestral, heun, dpm_2, dpm_2_ancestral, lms, dpmpp_2s_ancestral, dpmpp_sde, "
              "dpmpp_2m, dpmpp_2m_sde, dpmpp_3m_sde")


def _readonly(shape):
    out = np.empty(shape)
    out.flags.writeable = False
    return out


def _restoring_threads(call):
    """Run ``call`` and put the thread setting back, even if ``call`` was
    wrongly accepted."""
    def run():
        saved = _threads._requested
        try:
            return call()
        finally:
            _threads._requested = saved
    return run


def _table(step):
    """A StepTable built column by column, with the given step column."""
    n = len(step)
    floats = {name: np.full(n, 0.5) for name in ("t", "m", "sd")}
    src = np.full((n, ds.StepTable.MAX_TERMS), -1, np.int32)
    src[:, 0] = 0
    w = np.zeros((n, ds.StepTable.MAX_TERMS))
    w[:, 0] = 0.5
    return ds.StepTable(kind=np.full(n, ds.StepTable.ROW_KINDS["combine"], np.int32), dst=np.zeros(n, np.int32),
                        src=src, w=w, interval=np.arange(n), stream=np.zeros(n, np.int64),
                        step=np.asarray(step, np.int64), **floats)


# (id, call, exception type, regex that names the argument and what is wrong)
def _record(**changes):
    """A user's reverse method 'mine' (Euler-Maruyama's builder), with changes."""
    fields = dict(name="mine", direction="reverse", build=ds.methods.get("em").build, requires=("affine",),
                  kind="sde", deterministic=False, nfe_per_step=1, summary="", paper="")
    return ds.methods.Method(**dict(fields, **changes))


CASES = [
    # ---- simulation -----------------------------------------------------------
    ("forward x0 string", lambda: ds.forward(VP, "abc"), TypeError, "x0 has dtype <U3"),
    ("forward x0 None", lambda: ds.forward(VP, None), TypeError, "x0 has dtype object"),
    ("forward x0 complex", lambda: ds.forward(VP, X + 0j), TypeError, "x0 has dtype complex128"),
    ("forward x0 float16", lambda: ds.forward(VP, X.astype(np.float16)), TypeError, "x0 has dtype float16"),
    ("forward x0 longdouble", lambda: ds.forward(VP, X.astype(np.longdouble)), TypeError, "longdouble|float128"),
    ("forward x0 scalar", lambda: ds.forward(VP, 1.0), ValueError, "x0 must have a batch axis"),
    ("forward x0 nan", lambda: ds.forward(VP, NAN_X), ValueError, r"x0 contains a non-finite value nan at index \(3, 1\)"),
    ("forward steps 0", lambda: ds.forward(VP, X, 0), ValueError, "steps must be an int >= 1; got 0"),
    ("forward steps -3", lambda: ds.forward(VP, X, -3), ValueError, "steps must be an int >= 1; got -3"),
    ("forward steps float", lambda: ds.forward(VP, X, 2.5), TypeError, "steps must be an int"),
    ("forward steps huge", lambda: ds.forward(VP, X, 10**15), MemoryError, "steps .*bytes"),
    ("forward method", lambda: ds.forward(VP, X, 4, method="heun"), ValueError, "method 'heun'.*valid: em, exact"),
    ("forward t1 > T", lambda: ds.forward(VP, X, 4, t1=2.0), ValueError, "t1 <= T"),
    ("forward t0 >= t1", lambda: ds.forward(VP, X, 4, t0=0.5, t1=0.5), ValueError, "t0 < t1"),
    ("forward ts unsorted", lambda: ds.forward(VP, X, ts=[0, 0.5, 0.2]), ValueError, "ts must increase strictly"),
    ("forward ts and steps", lambda: ds.forward(VP, X, 4, ts=[0, 1.0]), ValueError, "either ts or steps"),
    ("forward noise shape", lambda: ds.forward(VP, X, 4, noise=np.zeros((3, 16, 2))), ValueError, r"noise must have shape .*\(4, 16, 2\)"),
    ("forward noise nan", lambda: ds.forward(VP, X, 4, noise=np.full((4, 16, 2), np.nan)), ValueError, "noise contains non-finite"),
    ("forward noise complex", lambda: ds.forward(VP, X, 4, noise=np.zeros((4, 16, 2), complex)), TypeError, "noise must be real"),
    ("forward save_every 0", lambda: ds.forward(VP, X, 4, save_every=0), ValueError, "save_every must be an int >= 1"),
    ("forward save_at range", lambda: ds.forward(VP, X, 4, save_at=[9]), ValueError, r"save_at grid indices must lie in \[0, 4\]"),
    ("forward save_at off grid", lambda: ds.forward(VP, X, 4, save_at=[0.3]), ValueError, "save_at time 0.3 is not on the run's grid"),
    ("forward save both", lambda: ds.forward(VP, X, 4, save_at=[1], save_every=1), ValueError, "save_every or save_at"),
    ("forward dtype int", lambda: ds.forward(VP, X, 4, dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    ("forward out shape", lambda: ds.forward(VP, X, 4, out=np.empty((16, 3))), ValueError, r"out must have shape \(16, 2\)"),
    ("forward out readonly", lambda: ds.forward(VP, X, 4, out=_readonly((16, 2))), ValueError, "out is read-only"),
    ("forward out list", lambda: ds.forward(VP, X, 4, out=[0.0]), TypeError, "out must be a NumPy array"),
    ("forward nonfinite", lambda: ds.forward(VP, X, 4, nonfinite="skip"), ValueError, "nonfinite must be one of"),
    ("forward process", lambda: ds.forward("vp", X), TypeError, "process must be a VPSDE"),
    ("forward chain steps", lambda: ds.forward(ds.DDPM([0.1, 0.2]), X, 3), ValueError, r"steps must be None or N = 2"),
    ("forward rng", lambda: ds.forward(VP, X, 4, rng="seed"), TypeError, "rng must be None, an int"),
    ("forward path shape", lambda: ds.forward(VP, X, 4, noise=ds.BrownianPath((16,), 3)), ValueError, "BrownianPath has shape"),
    ("reverse score None", lambda: ds.reverse(VP, None, X), TypeError, "reverse needs a score"),
    ("reverse score str", lambda: ds.reverse(VP, "gm", X, 4), TypeError, "score must be None, a built-in score or a callable"),
    ("reverse alpha", lambda: ds.reverse(VP, SCORE, X, 4, alpha=np.nan), ValueError, "alpha must be finite and >= 0"),
    ("reverse alpha method", lambda: ds.reverse(VP, SCORE, X, 4, method="ddim", alpha=0.5), ValueError, "alpha=0.5 applies to method='em' only"),
    ("reverse eta", lambda: ds.reverse(VP, SCORE, X, 4, method="ddim", eta=-1), ValueError, "eta must be finite and >= 0"),
    ("reverse snr", lambda: ds.reverse(VP, SCORE, X, 4, corrector="langevin", snr=0), ValueError, "snr must be finite and > 0"),
    ("reverse corrector steps", lambda: ds.reverse(VP, SCORE, X, 4, corrector="langevin", n_corrector_steps=0), ValueError, "n_corrector_steps must be an int >= 1"),
    ("reverse t_start", lambda: ds.reverse(VP, SCORE, X, 4, t_start=1.5), ValueError, r"t_start must lie in \(0, T\]"),
    ("reverse t_end", lambda: ds.reverse(VP, SCORE, X, 4, t_end=-0.1), ValueError, r"t_end must lie in \[0, t_start\)"),
    ("reverse no x no shape", lambda: ds.reverse(VP, SCORE), ValueError, "pass x .* or shape"),
    ("reverse shape mismatch", lambda: ds.reverse(VP, SCORE, X, 4, shape=(3, 2)), ValueError, "shape .* does not match x.shape"),
    ("reverse shape negative", lambda: ds.reverse(VP, SCORE, shape=(-1, 2)), ValueError, "shape must be"),
    ("reverse method", lambda: ds.reverse(ds.SubVPSDE(), SCORE, X, 4, method="ancestral"), ValueError,
     f"valid: em, ode_heun, rk45, {K_SAMPLERS}, dpm_solver, unipc, plms, ddim$"),
    ("reverse bound elsewhere", lambda: ds.reverse(VE, GM.score(VP), X, 4), ValueError, "the score is bound to VPSDE"),
    ("reverse mixture dim", lambda: ds.reverse(VP, GM, np.zeros((4, 3)), 4), ValueError, "d = 2; the states have 3"),
    ("reverse score shape", lambda: ds.reverse(VP, lambda x, t: x[:, :1], X, 4), ValueError, r"the score returned shape \(16, 1\) at step 0 of 4"),
    ("reverse score nan", lambda: ds.reverse(VP, lambda x, t: x * np.nan, X, 4), FloatingPointError, "the score returned a non-finite value"),
    ("reverse built-in event ndim", lambda: ds.reverse(VP, SCORE, np.zeros((4, 2, 2)), 4), ValueError, "built-in scores need states of shape"),
    ("run_steps table", lambda: ds.run_steps(X, [1.0]), TypeError, "table must be a StepTable"),
    ("run_steps score missing", lambda: ds.run_steps(X, TABLE), ValueError, "evaluates a score .* but score=None"),
    ("run_steps block_rows", lambda: ds.run_steps(X, TABLE, score=SCORE, block_rows=0), ValueError, "block_rows must be an int >= 1"),
    ("run_steps save type", lambda: ds.run_steps(X, TABLE, score=SCORE, save=[0.5]), TypeError, "save must be step counts"),
    ("run_steps huge saves", lambda: ds.run_steps(np.broadcast_to(np.zeros(1), (10**7,)), ds.StepTable.affine(np.ones(10**5)),
                                                  save=np.arange(10**5 + 1)), MemoryError, "bytes"),
    ("StepTable nan", lambda: ds.StepTable.affine([1.0, np.nan]), ValueError, "column a is nan at row 1"),
    ("StepTable lengths", lambda: ds.StepTable.affine([1.0, 2.0], [1.0, 2.0, 3.0]), ValueError, "different lengths"),
    ("StepTable complex", lambda: ds.StepTable.affine([1j]), TypeError, "a must be real numbers"),
    ("StepTable negative s", lambda: ds.StepTable.affine([1.0], sd=-1.0), ValueError, "column sd .* < 0"),
    ("StepTable langevin snr", lambda: ds.StepTable.langevin(1.0, -0.1, t=0.5), ValueError, "snr = w1 >= 0; got r = 1.0, snr = -0.1"),
    # ---- processes --------------------------------------------------------------
    ("VPSDE beta_min", lambda: ds.VPSDE(beta_min=-1), ValueError, "beta_min must be finite and > 0"),
    ("VPSDE beta_max str", lambda: ds.VPSDE(beta_max="x"), TypeError, "beta_max must be a real number"),
    ("VPSDE T inf", lambda: ds.VPSDE(T=np.inf), ValueError, "T must be finite and > 0"),
    ("VPSDE cosine s", lambda: ds.VPSDE.cosine(s=-0.1), ValueError, "s must be finite and >= 0"),
    ("VPSDE from_betas", lambda: ds.VPSDE.from_betas([0.1, 0.0]), ValueError, "betas must be a non-empty 1-D array of positive"),
    ("VESDE order", lambda: ds.VESDE(sigma_min=5, sigma_max=1), ValueError, "sigma_max must exceed sigma_min"),
    ("AffineSDE mean", lambda: ds.AffineSDE(3.0, lambda t: t), TypeError, "mean must be a callable of t"),
    ("AffineSDE std missing", lambda: ds.AffineSDE(lambda t: 1 - 0 * t), TypeError, "AffineSDE needs std"),
    ("AffineSDE T", lambda: ds.AffineSDE(lambda t: 1 - 0 * t, lambda t: t, T=-1.0), ValueError,
     "T must be finite and > 0"),
    ("AffineSDE std negative", lambda: ds.AffineSDE(lambda t: 1 + 0 * t, lambda t: t - 0.5), ValueError,
     r"std\(t\) must be >= 0; got -0.5 at t = 0.0"),
    ("AffineSDE mean zero", lambda: ds.AffineSDE(lambda t: 0.5 - t, lambda t: t), ValueError,
     r"mean\(t\) must be > 0 on \[0, T\)"),
    ("AffineSDE not a diffusion", lambda: ds.AffineSDE(lambda t: 1 + 0 * t, lambda t: 2 - t), ValueError,
     r"g\(t\)\^2 = d s\^2/dt - 2 f s\^2 is -4 < 0 at t = 0.0"),
    ("AffineSDE complex output", lambda: ds.AffineSDE(lambda t: 1 + 0j * t, lambda t: t), TypeError,
     r"mean\(t\) must return real numbers"),
    ("AffineSDE.t_of_sigma range", lambda: AFF.t_of_sigma(-1.0), ValueError, r"sigma must lie in \[0, "),
    ("AffineSDE.t_of_sigma not monotone",
     lambda: ds.AffineSDE(lambda t: 1 + 0 * t, lambda t: np.maximum(t - 0.5, 0) ** 2,
                          dmean=lambda t: 0 * t, dvar=lambda t: 4 * np.maximum(t - 0.5, 0) ** 3).t_of_sigma(0.1),
     ValueError, "sigma of t must increase strictly on \\[0, T\\] to be inverted"),
    ("AffineSDE.t_of_lambda range", lambda: AFF.t_of_lambda(np.nan), ValueError, "lam must be finite"),
    ("EDM order", lambda: ds.EDM(sigma_min=5, sigma_max=1), ValueError, "sigma_max must exceed sigma_min"),
    ("EDM sigma_min", lambda: ds.EDM(sigma_min=0), ValueError, "sigma_min must be finite and > 0"),
    ("reverse method user process", lambda: ds.reverse(AFF, SCORE, X, 4, method="ancestral"), ValueError,
     f"method 'ancestral' is not available for AffineSDE in reverse .*chain methods.*; valid: em, ode_heun, rk45, "
     f"{K_SAMPLERS}, dpm_solver, unipc, plms, ddim$"),
    # ---- the method registry ----------------------------------------------------
    ("methods.available process", lambda: ds.methods.available("vp"), TypeError, "process must be a VPSDE, .*; got str$"),
    ("methods.available direction", lambda: ds.methods.available(VP, "sideways"), ValueError,
     "direction must be one of 'forward', 'reverse', 'corrector'; got 'sideways'"),
    ("methods.get unknown", lambda: ds.methods.get("heun2"), ValueError,
     f"no reverse method 'heun2'; known: em, ode_heun, reverse_diffusion, ancestral, ddim, rk45, {K_SAMPLERS}, dpm_solver, unipc, plms"),
    ("methods.records direction", lambda: ds.methods.records("up"), ValueError, "direction must be one of"),
    ("methods.register not a record", lambda: ds.methods.register("em"), TypeError,
     "register takes a diffsde.methods.Method; got str"),
    ("methods.register taken", lambda: ds.methods.register(ds.methods.get("em")), ValueError,
     "a reverse method 'em' is registered already"),
    ("methods.register capability", lambda: ds.methods.register(_record(requires=("gpu",))), ValueError,
     r"requires of method 'mine' must be a non-empty tuple of capabilities .*; got \('gpu',\)"),
    ("methods.register option name", lambda: ds.methods.register(_record(options=(ds.methods.Option("steps", 1, int),))),
     ValueError, "option 'steps' of method 'mine' must be an identifier that is not a parameter of the run"),
    ("methods.register second default", lambda: ds.methods.register(_record(default_on="sde")), ValueError,
     "the default reverse method on sdes is 'em' already"),
    ("methods.register kind", lambda: ds.methods.register(_record(kind="pde")), ValueError,
     "kind of method 'mine' must be one of 'sde', 'ode', 'chain', 'exact'; got 'pde'"),
    ("methods.register nfe", lambda: ds.methods.register(_record(nfe_per_step=-1)), ValueError,
     "nfe_per_step of method 'mine' must be an int >= 0; got -1"),
    ("methods.table misplaced option", lambda: ds.methods.table(VP, "ddim", 4, alpha=0.5), ValueError,
     "^alpha=0.5 applies to method='em' only \\(the alpha-family\\); got method='ddim' on VPSDE$"),
    ("methods.table unknown option", lambda: ds.methods.table(VP, "em", 4, gamma=1.0), TypeError,
     "unexpected option 'gamma' for the reverse methods; they take: alpha, atol, corrector_at_start, eta, "
     "last_step_noise, n_corrector_steps, order, r, rtol, s_churn, s_noise, s_tmax, s_tmin, snr, solver_type, variance, "
     "variant, warmup"),
    ("methods.table chain steps", lambda: ds.methods.table(ds.DDPM([0.1, 0.2]), "ancestral", 4), ValueError,
     "steps must be None or N = 2 for this chain"),
    ("methods.table direction", lambda: ds.methods.table(VP, "em", 4, direction="sideways"), ValueError,
     "direction must be 'reverse' or 'forward'; got 'sideways'"),
    ("methods.table forward corrector", lambda: ds.methods.table(VP, "em", 4, direction="forward",
                                                                 corrector="langevin"), ValueError,
     "corrector applies to reverse runs only"),
    ("methods.unregister built-in", lambda: ds.methods.unregister("ddim"), ValueError,
     "reverse method 'ddim' is one of diffsde's own and cannot be unregistered"),
    ("methods.register summary", lambda: ds.methods.register(_record(summary=None)), TypeError,
     "summary of method 'mine' must be a str; got None"),
    ("methods.unregister unknown", lambda: ds.methods.unregister("heun2"), ValueError, "no reverse method 'heun2'"),
    ("methods.view method", lambda: ds.methods.view(ds.SubVPSDE(), "ancestral", 4), ValueError,
     "method 'ancestral' is not available for SubVPSDE in reverse"),
    ("reverse snr user process", lambda: ds.reverse(AFF, SCORE, X, 4, snr=0.2), ValueError,
     "snr=0.2 applies to corrector='langevin' only; got corrector=None with method='em' on AffineSDE$"),
    ("reverse t_start RectifiedFlow", lambda: ds.reverse(ds.RectifiedFlow(), SCORE, X, 4, t_start=1.5),
     ValueError, r"t_start must lie in \(0, T\] = \(0, 1\]"),
    ("VESDE from_sigmas", lambda: ds.VESDE.from_sigmas([1.0, 0.5]), ValueError, "sigmas must increase strictly"),
    ("VPSDE.marginal t range", lambda: VP.marginal(-0.1), ValueError, r"t must lie in \[0, T\]"),
    ("VPSDE.marginal t nan", lambda: VP.marginal(np.nan), ValueError, "t must be finite"),
    ("VPSDE.marginal t complex", lambda: VP.marginal(1j), TypeError, "t must be real"),
    ("VPSDE.drift t shape", lambda: VP.drift(X, np.ones(3) * 0.5), ValueError, r"t must be a scalar or have shape \(batch,\)"),
    ("VPSDE.perturb x0 complex", lambda: VP.perturb(X + 0j, 0.5), TypeError, "x0 has dtype complex"),
    ("VPSDE.prior_logp scalar", lambda: VP.prior_logp(1.0), ValueError, "x must have a batch axis"),
    ("VPSDE.prior_sample dtype", lambda: VP.prior_sample(3, dtype=np.float16), TypeError, "dtype must be float32 or float64"),
    ("DDPM betas", lambda: ds.DDPM([0.5, 1.5]), ValueError, r"betas must lie in \(0, 1\); betas\[1\] = 1.5"),
    ("DDPM empty", lambda: ds.DDPM([]), ValueError, "betas must hold at least one step"),
    ("DDPM from_sde beta >= 1", lambda: ds.DDPM.from_sde(VP, 5), ValueError, "with N = 5 steps"),
    ("DDPM from_sde N", lambda: ds.DDPM.from_sde(VP, 0), ValueError, "N must be an int >= 1"),
    ("SMLD decreasing", lambda: ds.SMLD([3.0, 2.0, 1.0]), ValueError, r"sigmas\[::-1\]"),
    ("SMLD sigma0", lambda: ds.SMLD([1.0], sigma0=-1), ValueError, "sigma0 must be finite and >= 0"),
    ("DDPM.marginal index", lambda: ds.DDPM([0.1]).marginal(2), ValueError, r"i must lie in \[0, N\]"),
    ("DDPM.respace", lambda: ds.DDPM([0.1]).respace(0), ValueError, r"M must be an int in \[1, N\]"),
    ("BrownianPath depth", lambda: ds.BrownianPath((3,), -1), ValueError, "depth must be an int in"),
    ("BrownianPath shape", lambda: ds.BrownianPath((-2,), 3), ValueError, "shape must be"),
    ("BrownianPath steps", lambda: ds.BrownianPath((3,), 3).normals(6), ValueError, "power-of-two step counts"),
    # ---- time grids (ds.grids) and chain timestep spacings -------------------------
    ("grids.uniform n 0", lambda: ds.grids.uniform(VP, 0), ValueError, r"n must be an int >= 1; got 0"),
    ("grids.logsnr t_end 0", lambda: ds.grids.logsnr(VP, 4, t_end=0.0), ValueError, r"t_end = 0\.0 has lambda"),
    ("grids.exponential t_start", lambda: ds.grids.exponential(VP, 4, t_start=2.0), ValueError,
     r"t_start must lie in \(0, T\]"),
    ("grids.quadratic chain", lambda: ds.grids.quadratic(ds.DDPM.linear(10), 4), TypeError, r"chain\.respace"),
    ("grids.karras rho", lambda: ds.grids.karras(VP, 4, rho=-1.0), ValueError, r"rho must be finite and > 0"),
    ("DDPM.respace spacing", lambda: ds.DDPM.linear(10).respace(5, "even"), ValueError,
     r"spacing must be 'trailing', 'leading' or 'linspace'; got 'even'"),
    # ---- scores and data --------------------------------------------------------
    ("GaussianMixture weights negative", lambda: ds.GaussianMixture([-1, 2], [[0.0], [1.0]], [1.0, 1.0]), ValueError, "weights must be >= 0"),
    ("GaussianMixture weights sum", lambda: ds.GaussianMixture([0.3, 0.3], [[0.0], [1.0]], [1.0, 1.0]), ValueError, "weights must sum to 1"),
    ("GaussianMixture means shape", lambda: ds.GaussianMixture([1.0], [0.0], [1.0]), ValueError, r"means must have shape \(K, d\)"),
    ("GaussianMixture covs ndim", lambda: ds.GaussianMixture([1.0], [[0.0]], np.ones((1, 1, 1, 1))), ValueError, "covs must have 1, 2 or 3 dimensions"),
    ("GaussianMixture covs nan", lambda: ds.GaussianMixture([1.0], [[0.0]], [np.nan]), ValueError, "covs must be finite"),
    ("GaussianMixture covs not SPD", lambda: ds.GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, -1.0]]]), ValueError, r"covs\[0\] is not positive definite"),
    ("GaussianMixture sample n", lambda: GM.sample(-1), ValueError, "n must be an int >= 0"),
    ("GaussianMixture logpdf shape", lambda: GM.logpdf(np.zeros((3, 3))), ValueError, r"x must have shape \(n, 2\)"),
    ("GaussianMixture logpdf complex", lambda: GM.logpdf(np.zeros((3, 2), complex)), TypeError, "x must be real"),
    ("GaussianMixture score process", lambda: GM.score("vp"), TypeError, "process must be an SDE or a chain"),
    ("EmpiricalData empty", lambda: ds.EmpiricalData(np.zeros((0, 2))), ValueError, "points must have shape"),
    ("EmpiricalData nan", lambda: ds.EmpiricalData([[np.nan, 0.0]]), ValueError, "points must be finite"),
    ("EmpiricalData s = 0", lambda: ds.EmpiricalData(X).score_at(X, 1.0, 0.0), ValueError, "needs s > 0"),
    ("LinearScore var", lambda: ds.LinearScore(0.0, -1.0), ValueError, "var must be >= 0"),
    ("LinearScore shape", lambda: ds.LinearScore(np.zeros((2, 2))), ValueError, "mean and var must be scalars or 1-D"),
    ("score_from_eps fn", lambda: ds.score_from_eps(3, VP), TypeError, "eps_fn must be callable"),
    ("score_from_eps process", lambda: ds.score_from_eps(lambda x, t: x, "vp"), TypeError, "process must be an SDE or a chain"),
    ("score_from_x0 fn", lambda: ds.score_from_x0(3, VP), TypeError, "x0_fn must be callable"),
    ("score_from_v sub-VP", lambda: ds.score_from_v(lambda x, t: x, ds.SubVPSDE()), ValueError, "SubVPSDE"),
    ("score_from_velocity chain", lambda: ds.score_from_velocity(lambda x, t: x, ds.DDPM.linear(10)), ValueError,
     "chain.as_sde"),
    ("network_score prediction", lambda: ds.network_score(lambda x, t: x, VP, prediction="noise"), ValueError,
     "prediction must be one of 'eps', 'x0', 'v', 'velocity', 'score'; got 'noise'"),
    ("network_score time", lambda: ds.network_score(lambda x, t: x, VP, time="index"), ValueError,
     "time='index' needs a DDPM or SMLD chain"),
    ("network_score framework", lambda: ds.network_score(lambda x, t: x, VP, framework="tf"), ValueError,
     "framework must be one of 'torch', 'jax', 'numpy'"),
    ("training.mlp d", lambda: ds.training.mlp(0), ValueError, "d must be an int >= 1"),
    ("training.train_dsm process", lambda: ds.training.train_dsm(GM, "vp"), TypeError, "process must be an SDE"),
    ("training.save_mlp net", lambda: ds.training.save_mlp(3, "never-written.npz"), TypeError,
     "net must be a module made by diffsde.training.mlp"),
    ("training.load_mlp framework", lambda: ds.training.load_mlp("never-read.npz", framework="tf"), ValueError,
     "framework must be 'numpy' or 'torch'"),
    ("log_likelihood divergence", lambda: ds.log_likelihood(VP, lambda x, t: -x, X, divergence="autograd"),
     ValueError, "divergence='autograd' needs a torch or JAX network"),
    ("log_likelihood steps", lambda: ds.log_likelihood(VP, GM, X, 0), ValueError, "steps must be an int >= 1"),
    ("log_likelihood process", lambda: ds.log_likelihood("vp", GM, X), TypeError, "log_likelihood needs an SDE"),
    ("log_likelihood score", lambda: ds.log_likelihood(VP, 3, X), TypeError, "score must be a GaussianMixture"),
    ("datasets.two_moons n", lambda: ds.datasets.two_moons(2.5), TypeError, "n must be an int >= 0; got 2.5"),
    ("datasets.checkerboard squares", lambda: ds.datasets.checkerboard(5, squares=1), ValueError, "squares must be an int >= 2"),
    # ---- engine settings -----------------------------------------------------------
    ("set_num_threads 0", lambda: ds.set_num_threads(0), ValueError, r"n must be an int in \[1, 2\*\*31 - 1\] = \[1, 2147483647\] or None; got 0"),
    ("set_num_threads str", lambda: ds.set_num_threads("2"), TypeError, r"n must be an int in \[1, 2\*\*31 - 1\] .*or None; got '2'"),
    ("set_num_threads bool", lambda: ds.set_num_threads(True), TypeError, r"n must be an int in \[1, 2\*\*31 - 1\] .*or None; got True"),
    ("set_simd_path", lambda: ds.set_simd_path("sse9"), ValueError, "SIMD path 'sse9' is not available"),
    ("standard_normal dtype", lambda: ds.standard_normal(3, dtype=np.complex64), TypeError, "dtype must be float32 or float64"),
    ("standard_normal shape", lambda: ds.standard_normal((-1,)), ValueError, r"shape must be an int or a tuple of ints, each >= 0; got \(-1,\)"),
    ("standard_normal out", lambda: ds.standard_normal(3, out=np.empty(4)), ValueError, r"out must be an ndarray of shape \(3,\)"),
    # ---- analysis -------------------------------------------------------------------
    ("analysis.fit_order lengths", lambda: analysis.fit_order([1, 2, 3], [1.0, 2.0]), ValueError, "steps and errors must be 1-D of equal length"),
    ("analysis.fit_order zero error", lambda: analysis.fit_order([1, 2], [1.0, 0.0]), ValueError, "errors positive"),
    ("analysis.strong_error ladder", lambda: analysis.strong_error(VP, X1, [10, 20]), ValueError, "steps must be powers of two"),
    ("analysis.strong_error reference", lambda: analysis.strong_error(VP, X1, [8, 16], reference_steps=64), ValueError, "reference_steps must be a power of two >= 16 x"),
    ("analysis.strong_error direction", lambda: analysis.strong_error(VP, X1, [8, 16], direction="up"), ValueError, "direction must be 'forward' or 'reverse'"),
    ("analysis.wasserstein_1d p", lambda: analysis.wasserstein_1d(X1, X1, p=0.5), ValueError, "p must be finite and >= 1; got 0.5"),
    ("analysis.wasserstein_1d nan", lambda: analysis.wasserstein_1d([np.nan, 1.0], X1), ValueError, "x must hold at least 2 finite numbers"),
    ("analysis.sliced_wasserstein shapes", lambda: analysis.sliced_wasserstein(X, X1[:, None]), ValueError, r"x and y must be \(n, d\) with equal d"),
    ("analysis.sliced_wasserstein projections", lambda: analysis.sliced_wasserstein(X, X, n_projections=0), ValueError, "n_projections must be an int >= 1"),
    ("analysis.moment_errors n", lambda: analysis.moment_errors([1.0], 0.0, 1.0), ValueError, "x must hold at least 2 samples"),
    ("analysis.exact_output_law mixture", lambda: analysis.exact_output_law(VP, GM, "em", steps=4), ValueError,
     "got a mixture of 8 components, whose score is not affine"),
    ("analysis.exact_output_law data", lambda: analysis.exact_output_law(VP, X, "em", steps=4), TypeError,
     "data must be a GaussianMixture of one component or a LinearScore; got ndarray"),
    ("analysis.exact_output_law corrector", lambda: analysis.exact_output_law(VP, ds.LinearScore(), "em", steps=4,
     corrector="langevin"), ValueError, "corrector='langevin': the Langevin corrector's step size"),
    ("analysis.exact_output_law start", lambda: analysis.exact_output_law(VP, ds.LinearScore(), start="data"),
     ValueError, "start must be 'marginal' or 'prior'; got 'data'"),
    ("analysis.exact_output_law option", lambda: analysis.exact_output_law(VP, ds.LinearScore(), "ode_heun", eta=1.0),
     ValueError, "eta=1.0 applies to method='ddim'"),
    ("analysis.error_vs_nfe metric", lambda: analysis.error_vs_nfe(VP, GM, (4,), ["em"], metric="l2"), ValueError,
     "metric must be 'w2' or 'kl'; got 'l2'"),
    ("analysis.error_vs_nfe grid", lambda: analysis.error_vs_nfe(VP, GM, (4,), ["em"], grid="cosine"), ValueError,
     "grid must be 'uniform', 'logsnr', 'exponential', 'quadratic' or 'karras'; got 'cosine'"),
    ("analysis.error_vs_nfe method", lambda: analysis.error_vs_nfe(VP, ds.LinearScore(), (4,), ["euler_maruyama"]),
     ValueError, "no reverse method 'euler_maruyama'"),
    ("fokker_planck.solve_forward grid", lambda: fokker_planck.solve_forward(VP, np.ones(3), [0.0, 1.0, 3.0]), ValueError, "x must be uniformly spaced"),
    ("fokker_planck.solve_forward density", lambda: fokker_planck.solve_forward(VP, -np.ones(11), np.linspace(0, 1, 11)), ValueError, "p0 must be finite and non-negative"),
    ("fokker_planck.solve_forward steps", lambda: fokker_planck.solve_forward(VP, np.ones(11), np.linspace(0, 1, 11), steps=0), ValueError, "steps must be an int >= 1"),
    ("fokker_planck.solve_reverse alpha", lambda: fokker_planck.solve_reverse(VP, GM.score(VP), np.ones(11), np.linspace(0, 1, 11), alpha=-2), ValueError, "alpha must be finite and >= 0"),
    # ---- entry points the list above missed ---------------------------------------------
    ("ReverseSDE score", lambda: ds.ReverseSDE(VP, SCORE), TypeError, "score must be callable"),
    ("ReverseSDE sde", lambda: ds.ReverseSDE(ds.DDPM([0.1]), lambda x, t: -x), TypeError, "sde must be a VPSDE"),
    ("ReverseSDE alpha", lambda: VP.reverse(lambda x, t: -x, alpha=-0.5), ValueError, "alpha must be finite and >= 0"),
    ("SubVPSDE beta_min", lambda: ds.SubVPSDE(beta_min=0.0), ValueError, "beta_min must be finite and > 0"),
    ("analysis.weak_error score", lambda: analysis.weak_error(VP, X1, [8, 16], direction="reverse"), ValueError, "a reverse run needs a score"),
    ("analysis.weak_error ladder", lambda: analysis.weak_error(VP, X1, [16]), ValueError, "steps must be a 1-D ladder of at least 2"),
    ("analysis.ks_statistic y", lambda: analysis.ks_statistic(X1, [1.0]), ValueError, "y must hold at least 2 finite numbers"),
    ("datasets.swiss_roll n", lambda: ds.datasets.swiss_roll(-1), ValueError, "n must be an int >= 0; got -1"),
    ("datasets.eight_gaussians std", lambda: ds.datasets.eight_gaussians(std=0.0), ValueError, "std must be finite and > 0"),
    ("datasets.bimodal_1d weight", lambda: ds.datasets.bimodal_1d(weight=2.0), ValueError, r"weight must be in \[0, 1\]"),
    # ---- issue 14 defects 4, 6, 7, 9: the message names the argument --------------------
    ("reverse alpha str", lambda: ds.reverse(VP, SCORE, X, 4, alpha="fast"), TypeError, "alpha must be a real number.*'fast'"),
    ("reverse alpha None", lambda: ds.reverse(VP, SCORE, X, 4, alpha=None), TypeError, "alpha must be a real number.*None"),
    ("reverse eta str", lambda: ds.reverse(VP, SCORE, X, 4, method="ddim", eta="x"), TypeError, "eta must be a real number.*'x'"),
    ("reverse t_start str", lambda: ds.reverse(VP, SCORE, X, 4, t_start="a"), TypeError, "t_start must be a real number.*'a'"),
    ("reverse ancestral beta_k >= 1", lambda: ds.reverse(ds.VPSDE(beta_max=2000.0), SCORE, X, 10, method="ancestral"), ValueError, "beta_k .*>= 1"),
    ("forward t0 None", lambda: ds.forward(VP, X, 4, t0=None), TypeError, "t0 must be a real number.*None"),
    ("SMLD sigma0 str", lambda: ds.SMLD([1.0], sigma0="a"), TypeError, "sigma0 must be a real number.*'a'"),
    ("log_likelihood delta 0", lambda: ds.log_likelihood(VP, lambda x, t: -x, X, 4, delta=0), ValueError, "delta must be finite and > 0"),
    ("forward rng negative", lambda: ds.forward(VP, X, 4, rng=-1), ValueError, "rng must be a non-negative int seed"),
    ("BrownianPath.increments T", lambda: ds.BrownianPath((3,), 3).increments(4, T=-1), ValueError, "T must be finite and > 0"),
    ("StepTable.concat empty", lambda: ds.StepTable.concat(), ValueError, "StepTable.concat needs at least one StepTable"),
    ("GaussianMixture weights str", lambda: ds.GaussianMixture("abc", [[0.0]], [1.0]), TypeError, "weights must be real numbers"),
    ("EmpiricalData d = 0", lambda: ds.EmpiricalData(np.zeros((3, 0))), ValueError, "points must have shape .*d >= 1"),
    ("set_num_threads 2**31", _restoring_threads(lambda: ds.set_num_threads(2**31)), ValueError, r"n must be an int in \[1, 2\*\*31 - 1\]"),
    ("run_steps block_rows 2**63", lambda: ds.run_steps(X, TABLE, score=SCORE, block_rows=2**63), ValueError, r"block_rows must be an int >= 1 and <= 2\*\*63 - 1"),
    ("StepTable step gap", lambda: _table([0, 2]), ValueError, "StepTable steps must start at 0 and grow by 0 or 1"),
    ("StepTable step start", lambda: _table([5, 6]), ValueError, "StepTable steps must start at 0 and grow by 0 or 1"),
    ("forward save_at nan", lambda: ds.forward(VP, X, 4, save_at=[np.nan]), ValueError, "save_at times must be finite"),
    ("reverse save_at nan", lambda: ds.reverse(VP, SCORE, X, 4, save_at=[np.nan]), ValueError, "save_at times must be finite"),
]


def _params(cases):
    """Cases as pytest params, each with its own id."""
    for c in cases:
        yield pytest.param(*c, id=c[0])


@pytest.mark.parametrize("name, call, exc, message", list(_params(CASES)))
def test_bad_input_raises_a_clear_error_and_changes_nothing(name, call, exc, message):
    snapshot = [a.copy() for a in (X, X1, NAN_X)]
    with pytest.raises(exc, match=message):
        call()
    for before, after in zip(snapshot, (X, X1, NAN_X)):
        np.testing.assert_array_equal(after, before)


#: Public callables that take no argument a caller could get wrong: records
#: the package returns (they hold what they are given) and the plot helpers
#: (tests/test_plot.py). Callables without parameters are left out by the walk.
NO_BAD_INPUT = {"RunResult", "Trajectory", "plot"}


def entry_points():
    """The callables of ``diffsde.__all__`` that take arguments, and the
    functions of its public submodules."""
    names = []
    for name in ds.__all__:
        if name in NO_BAD_INPUT:
            continue
        obj = getattr(ds, name)
        if isinstance(obj, types.ModuleType):
            names += [f"{name}.{attr}" for attr, member in vars(obj).items()
                      if inspect.isfunction(member) and member.__module__ == obj.__name__
                      and not attr.startswith("_")]
        elif callable(obj) and inspect.signature(obj).parameters:
            names.append(name)
    return sorted(names)


def test_every_public_entry_point_has_a_bad_input_case():
    names = entry_points()
    assert {"forward", "reverse", "run_steps", "GaussianMixture", "analysis.fit_order"} <= set(names)
    covered = {c[0].split()[0] for c in CASES}
    covered |= {name.split(".")[0] for name in covered if name.split(".")[0] in ds.__all__
                and inspect.isclass(getattr(ds, name.split(".")[0]))}  # a method counts for its class
    missing = [n for n in names if n not in covered]
    assert not missing, f"public entry points without a bad-input case: {missing}"
    unknown = sorted(c[0] for c in CASES if c[0].split()[0].split(".")[0] not in ds.__all__)
    assert not unknown, f"cases whose id does not start with a public name: {unknown}"


@pytest.mark.parametrize("call", [
    lambda x: ds.forward(VP, x, 3, rng=0),
    lambda x: ds.reverse(VP, GM, x, 3, rng=0),
    lambda x: ds.reverse(VP, lambda v, t: -v, x, 3, method="ode_heun"),
    lambda x: ds.forward(ds.DDPM.from_sde(VP, 50), x, rng=0),
], ids=["forward", "reverse-builtin", "reverse-callable", "chain"])
def test_empty_batches_give_empty_results(call):
    tr = call(np.zeros((0, 2)))
    assert tr.x.shape == (0, 2) and tr.xs.shape[1:] == (0, 2)


# ---- every int and real argument: its name, what is allowed and the value ---------
# One table per value type. Each case gives a call of the bad value, the
# argument's name, what is allowed (a regex) and a value of the right type
# outside it; the test also passes values of the wrong type (TypeError) and
# NumPy scalars, which the message must show as plain numbers.

GRID = np.linspace(-3, 3, 11)
P0 = np.exp(-GRID**2)


def _threads_set(v):
    return _restoring_threads(lambda: ds.set_num_threads(v))()


INT_ARGUMENTS = [
    ("forward save_every", lambda v: ds.forward(VP, X, 4, save_every=v), "save_every", "an int >= 1", 0),
    ("reverse n_corrector_steps", lambda v: ds.reverse(VP, SCORE, X, 4, corrector="langevin", n_corrector_steps=v),
     "n_corrector_steps", "an int >= 1", 0),
    ("DDPM.from_sde N", lambda v: ds.DDPM.from_sde(VP, v, rule="exact"), "N", "an int >= 1", 0),
    ("DDPM.linear N", lambda v: ds.DDPM.linear(v), "N", "an int >= 1", -2),
    ("DDPM.respace M", lambda v: ds.DDPM([0.1, 0.2]).respace(v), "M", r"an int in \[1, N\] = \[1, 2\]", 3),
    ("SMLD.from_sde N", lambda v: ds.SMLD.from_sde(VE, v), "N", "an int >= 1", 0),
    ("BrownianPath depth", lambda v: ds.BrownianPath((3,), v), "depth", r"an int in \[0, 32\]", 33),
    ("BrownianPath.normals steps", lambda v: ds.BrownianPath((3,), 3).normals(v), "steps", "an int >= 1", 0),
    ("GaussianMixture.sample n", lambda v: GM.sample(v), "n", "an int >= 0", -1),
    ("analysis.error_vs_nfe budgets", lambda v: analysis.error_vs_nfe(VP, GM, (4, v), ["em"]), "budgets",
     "an int >= 1", 0),
    ("analysis.error_vs_nfe paths", lambda v: analysis.error_vs_nfe(VP, GM, (4,), ["em"], paths=v), "paths",
     "an int >= 2", 1),
    ("analysis.error_vs_nfe repeats", lambda v: analysis.error_vs_nfe(VP, GM, (4,), ["em"], repeats=v), "repeats",
     "an int >= 2", 1),
    ("datasets.two_moons n", lambda v: ds.datasets.two_moons(v), "n", "an int >= 0", -1),
    ("datasets.swiss_roll n", lambda v: ds.datasets.swiss_roll(v), "n", "an int >= 0", -3),
    ("datasets.checkerboard squares", lambda v: ds.datasets.checkerboard(5, squares=v), "squares", "an int >= 2", 1),
    ("log_likelihood steps", lambda v: ds.log_likelihood(VP, GM, X, v), "steps", "an int >= 1", 0),
    ("log_likelihood n_probes", lambda v: ds.log_likelihood(VP, lambda x, t: -x, X, 4, n_probes=v),
     "n_probes", "an int >= 1 or None", 0),
    ("set_num_threads n", _threads_set, "n", r"an int in \[1, 2\*\*31 - 1\] = \[1, 2147483647\] or None", 0),
    ("analysis.wasserstein_1d n_permutations", lambda v: analysis.wasserstein_1d(X1, X1, n_permutations=v),
     "n_permutations", "an int >= 0", -1),
    ("analysis.ks_statistic n_permutations", lambda v: analysis.ks_statistic(X1, X1, n_permutations=v),
     "n_permutations", "an int >= 0", -5),
    ("analysis.sliced_wasserstein n_projections", lambda v: analysis.sliced_wasserstein(X, X, n_projections=v),
     "n_projections", "an int >= 1", 0),
    ("fokker_planck.solve_forward steps", lambda v: fokker_planck.solve_forward(VP, P0, GRID, steps=v),
     "steps", "an int >= 1", 0),
    ("fokker_planck.solve_forward save_every",
     lambda v: fokker_planck.solve_forward(VP, P0, GRID, steps=4, save_every=v), "save_every", "an int >= 1 or None", 0),
    ("fokker_planck.solve_reverse steps", lambda v: fokker_planck.solve_reverse(VP, GM.score(VP), P0, GRID, steps=v),
     "steps", "an int >= 1", -1),
]

REAL_ARGUMENTS = [
    ("VPSDE beta_min", lambda v: ds.VPSDE(beta_min=v), "beta_min", "finite and > 0", 0.0),
    ("VPSDE beta_max", lambda v: ds.VPSDE(beta_max=v), "beta_max", "finite and > 0", -1.0),
    ("VPSDE T", lambda v: ds.VPSDE(T=v), "T", "finite and > 0", 0.0),
    ("VPSDE.cosine s", lambda v: ds.VPSDE.cosine(s=v), "s", "finite and >= 0", -0.5),
    ("VPSDE.cosine max_beta", lambda v: ds.VPSDE.cosine(max_beta=v), "max_beta", "finite and > 0", 0.0),
    ("SubVPSDE beta_max", lambda v: ds.SubVPSDE(beta_max=v), "beta_max", "finite and > 0", -2.0),
    ("VESDE sigma_min", lambda v: ds.VESDE(sigma_min=v), "sigma_min", "finite and > 0", 0.0),
    ("EDM sigma_max", lambda v: ds.EDM(sigma_max=v), "sigma_max", "finite and > 0", -1.0),
    ("AffineSDE T", lambda v: ds.AffineSDE(lambda t: 1 + 0 * t, lambda t: t, T=v), "T", "finite and > 0", 0.0),
    ("DDPM T", lambda v: ds.DDPM([0.1], T=v), "T", "finite and > 0", -1.0),
    ("DDPM.linear beta_start", lambda v: ds.DDPM.linear(10, beta_start=v), "beta_start", r"in \(0, 1\)", 0.0),
    ("DDPM.linear beta_end", lambda v: ds.DDPM.linear(10, beta_end=v), "beta_end", r"in \(0, 1\)", 1.0),
    ("SMLD sigma0", lambda v: ds.SMLD([1.0], sigma0=v), "sigma0", "finite and >= 0", -1.0),
    ("ReverseSDE alpha", lambda v: ds.ReverseSDE(VP, lambda x, t: -x, alpha=v), "alpha", "finite and >= 0", -0.5),
    ("reverse alpha", lambda v: ds.reverse(VP, SCORE, X, 4, alpha=v), "alpha", "finite and >= 0", -1.0),
    ("reverse eta", lambda v: ds.reverse(VP, SCORE, X, 4, method="ddim", eta=v), "eta", "finite and >= 0", -0.25),
    ("reverse snr", lambda v: ds.reverse(VP, SCORE, X, 4, corrector="langevin", snr=v), "snr", "finite and > 0", 0.0),
    ("log_likelihood delta", lambda v: ds.log_likelihood(VP, lambda x, t: -x, X, 4, delta=v),
     "delta", "finite and > 0", 0.0),
    ("BrownianPath.increments T", lambda v: ds.BrownianPath((3,), 3).increments(4, T=v), "T", "finite and > 0", 0.0),
    ("datasets.eight_gaussians radius", lambda v: ds.datasets.eight_gaussians(radius=v), "radius",
     "finite and >= 0", -1.0),
    ("datasets.eight_gaussians std", lambda v: ds.datasets.eight_gaussians(std=v), "std", "finite and > 0", 0.0),
    ("datasets.bimodal_1d separation", lambda v: ds.datasets.bimodal_1d(separation=v), "separation",
     "finite and >= 0", -4.0),
    ("datasets.bimodal_1d weight", lambda v: ds.datasets.bimodal_1d(weight=v), "weight", r"in \[0, 1\]", 1.5),
    ("datasets.two_moons noise", lambda v: ds.datasets.two_moons(4, noise=v), "noise", "finite and >= 0", -0.1),
    ("datasets.swiss_roll noise", lambda v: ds.datasets.swiss_roll(4, noise=v), "noise", "finite and >= 0", -0.1),
    ("datasets.checkerboard size", lambda v: ds.datasets.checkerboard(4, size=v), "size", "finite and > 0", 0.0),
    ("analysis.wasserstein_1d p", lambda v: analysis.wasserstein_1d(X1, X1, p=v), "p", "finite and >= 1", 0.5),
    ("analysis.sliced_wasserstein p", lambda v: analysis.sliced_wasserstein(X, X, p=v), "p", "finite and >= 1", 0.0),
    ("analysis.Distance.consistent level",
     lambda v: analysis.wasserstein_1d(X1, X1[::-1], n_permutations=9).consistent(v), "level", r"in \(0, 1\)", 1.0),
    ("fokker_planck.solve_reverse alpha", lambda v: fokker_planck.solve_reverse(VP, GM.score(VP), P0, GRID, alpha=v),
     "alpha", "finite and >= 0", -2.0),
    ("fokker_planck.solve_forward t0", lambda v: fokker_planck.solve_forward(VP, P0, GRID, t0=v), "t0", "finite",
     np.inf),
]


#: Cases whose argument takes None for its default (the message need not say so).
NONE_IS_DEFAULT = {"forward save_every", "reverse n_corrector_steps", "reverse snr", "AffineSDE T", "reverse eta",
                   "log_likelihood steps"}


def _plain(message):
    """A message without NumPy reprs."""
    assert "np." not in message and "array(" not in message, message
    return message


@pytest.mark.parametrize("name, call, arg, allowed, outside", list(_params(INT_ARGUMENTS)))
def test_int_arguments_say_their_name_what_is_allowed_and_the_value(name, call, arg, allowed, outside):
    for value in (outside, np.int64(outside), np.array(outside, dtype=np.int32)):
        with pytest.raises(ValueError, match=f"^{arg} must be {allowed}; got {outside}$") as info:
            call(value)
        _plain(str(info.value))
    for value, text in ((2.5, "2.5"), (np.float64(3.0), "3.0"), ("3", "'3'"), (True, "True"), (None, "None")):
        if value is None and ("or None" in allowed or name in NONE_IS_DEFAULT):
            continue
        with pytest.raises(TypeError, match=f"^{arg} must be {allowed}; got {re.escape(text)}$") as info:
            call(value)
        _plain(str(info.value))


@pytest.mark.parametrize("name, call, arg, allowed, outside", list(_params(REAL_ARGUMENTS)))
def test_real_arguments_say_their_name_what_is_allowed_and_the_value(name, call, arg, allowed, outside):
    for value in (outside, np.float64(outside), np.array(outside), np.nan, np.float32(np.nan)):
        text = "nan" if np.isnan(value) else repr(float(outside))
        with pytest.raises(ValueError, match=f"^{arg} must be {allowed}; got {text}$") as info:
            call(value)
        _plain(str(info.value))
    for value, text in (("x", "'x'"), (None, "None"), (True, "True"), (1 + 2j, "(1+2j)")):
        if value is None and name in NONE_IS_DEFAULT:
            continue
        with pytest.raises(TypeError, match=rf"^{arg} must be a real number \({allowed}\); got {re.escape(text)}$") \
                as info:
            call(value)
        _plain(str(info.value))


def test_every_number_case_names_a_public_entry_point():
    names = set(entry_points()) | {n.split(".")[0] for n in entry_points()}
    for case in INT_ARGUMENTS + REAL_ARGUMENTS:
        first = case[0].split()[0]
        assert first in names or first.rsplit(".", 1)[0] in names or first.split(".")[0] in ds.__all__, case[0]

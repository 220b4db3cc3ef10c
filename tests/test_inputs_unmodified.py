"""Every public function leaves the caller's arrays as it found them.

Each case below calls one public callable on valid input arrays, given in
five layouts: C order, Fortran order, a non-contiguous view into a larger
buffer, an unaligned view, and read-only. Afterwards every input array must hold the same
values and keep the same flags (writeable, aligned, C and F contiguity,
owndata), and the buffer around a view must be untouched. ``out=`` arrays
may receive values but keep their flags.

The public names are derived from ``diffsde.__all__``: every callable there,
every public function and class of the public submodules, and every public
method of those classes. ``test_every_public_name_has_a_success_path_case``
fails for a name without a case, so new API cannot skip this file.
"""
import inspect
import os
import tempfile
import types
from dataclasses import dataclass

import numpy as np
import pytest

import diffsde as ds
from diffsde import _threads, analysis, fokker_planck, plot

from conftest import SUB, VE, VP

# The success-path cases fit orders to two or three step counts on purpose (cheap
# inputs); the warning that such a fit has no or a wide interval is expected here.
# The deprecated ``marginal`` aliases are public names too, so they have cases here.
pytestmark = [pytest.mark.filterwarnings("ignore::diffsde.analysis.OrderFitWarning"),
              pytest.mark.filterwarnings("ignore:.*marginal.*is deprecated:DeprecationWarning"),
              # animations built to check their inputs, never played
              pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")]

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # the plot cases are skipped
    plt = None

LAYOUTS = ("C", "F", "strided", "readonly", "unaligned")
FLAGS = ("WRITEABLE", "ALIGNED", "C_CONTIGUOUS", "F_CONTIGUOUS", "OWNDATA")
#: What the gaps of a strided view's buffer hold: a function that reads
#: outside the view sees this, and one that writes there is caught.
SENTINEL = 12345


# ---- the inputs (never passed as they are: each case gets fresh copies) ------------

_gen = np.random.default_rng(20240)
X = _gen.standard_normal((6, 2))          # a batch of 6 states in 2-D
X1 = _gen.standard_normal(6)              # a batch of 6 scalars
Y = _gen.standard_normal((7, 2)) + 0.3    # a second sample, of another size
Y1 = _gen.standard_normal(7) + 0.3
Z = _gen.standard_normal((4, 6, 2))       # step noise for 4 steps
Z1 = _gen.standard_normal((4, 6))
Z2 = Z[:2].copy()                         # TABLE's 2 noise intervals
OUT = np.zeros((6, 2))
OUT1 = np.zeros(6)
TB = np.array([0.1, 0.35, 0.6, 0.85, 1.0, 0.5])   # one time per batch row
TIMES = np.array([[0.0, 0.2], [0.5, 1.0]])         # times of any shape
T0 = np.array(0.4)                                 # a 0-d time
T_NEXT = np.array([[0.3, 0.45], [0.7, 1.0]])
TS_UP = np.array([0.0, 0.125, 0.5, 0.75, 1.0])     # a user grid of 4 steps
TS_DOWN = TS_UP[::-1].copy()
SAVE = np.array([0, 2, 4])                         # grid indices or step counts
SAVE_T = np.array([0.25, 1.0])                     # grid times of 4 steps on [0, 1]
BETAS = np.array([0.05, 0.1, 0.2, 0.3])
SIGMAS = np.array([0.1, 0.5, 2.0, 10.0])
SIGMAS0 = np.r_[0.01, SIGMAS]
WEIGHTS = np.array([0.2, 0.3, 0.5])
MEANS = np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, 2.0]])
COVS_ISO = np.array([0.3, 0.5, 0.2])
COVS_DIAG = np.array([[0.3, 0.2], [0.5, 0.4], [0.2, 0.6]])
COVS_FULL = np.array([[[0.5, 0.1], [0.1, 0.3]], [[0.4, -0.1], [-0.1, 0.6]], [[0.2, 0.0], [0.0, 0.2]]])
POINTS = _gen.standard_normal((5, 2))
POINTS1 = _gen.standard_normal(5)
MEAN2, VAR2 = np.array([0.5, -1.0]), np.array([0.25, 2.0])
M, S = np.array(0.8), np.array(0.6)                # marginal coefficients (m, s)
A4, B4, C4 = np.array([0.9, 0.95, 1.0, 1.05]), np.array([0.1, 0.05, 0.2, 0.0]), np.array([0.3, 0.2, 0.1, 0.4])
T4, M4, S4 = np.array([1.0, 0.75, 0.5, 0.25]), np.array([0.5, 0.6, 0.7, 0.8]), np.array([0.8, 0.7, 0.6, 0.5])
INTERVALS4 = np.array([0, 1, 2, 3])
STEPS_LADDER = np.array([2, 4])
ERRORS = np.array([0.1, 0.052, 0.024])
STEP_COUNTS = np.array([8, 16, 32])
GRID = np.linspace(-4.0, 4.0, 21)
P0 = np.exp(-0.5 * GRID**2) / np.sqrt(2 * np.pi)
SHAPE = np.array([6, 2])

# ---- objects the cases use (not under test here) ----------------------------------

LIN = ds.LinearScore([0.5, -1.0], [0.25, 2.0])
LIN1 = ds.LinearScore(0.5, 0.25)
GM = ds.datasets.eight_gaussians()
GM1 = ds.datasets.bimodal_1d()
EMP = ds.EmpiricalData(_gen.standard_normal((5, 2)))
DDPM4 = ds.DDPM([0.05, 0.1, 0.2, 0.3])
SMLD4 = ds.SMLD.from_sde(VE, 4)
PATH = ds.BrownianPath((6, 2), 3, rng=5)
SDES = {"VPSDE": VP, "SubVPSDE": SUB, "VESDE": VE}
CHAINS = {"DDPM": DDPM4, "SMLD": SMLD4}
#: One process of each set of capabilities the methods know.
PROCESSES = {"vp": VP, "ve": VE, "affine": SUB, "ddpm": DDPM4, "smld": SMLD4}
TABLE = ds.StepTable.concat(ds.StepTable.affine([0.9, 0.95], 0.1, 0.3, t=[1.0, 0.5], m=0.7, sd=0.7),
                            ds.StepTable.heun(0.9, 0.1, 0.95, 0.1, t=0.5, t_end=0.25, m=0.8, sd=0.6),
                            ds.StepTable.langevin(0.1, 0.16, t=0.25, m=0.9, sd=0.4, interval=3))
SRC4 = np.full((4, 8), -1, np.int32)
SRC4[:, 0] = 0
W4 = np.zeros((4, 8))
W4[:, 0] = [0.9, 0.95, 1.0, 1.05]
with pytest.warns(analysis.OrderFitWarning, match="no confidence interval"):  # two step counts, on purpose
    STUDY = analysis.strong_error(VP, X1, [2, 4], rng=0)


def _eps(v, t):
    return 0.5 * v


def _minus(v, t):
    return -np.asarray(v)


# ---- the cases ---------------------------------------------------------------------


@dataclass
class Case:
    name: str                    # the public name covered
    label: str
    call: object                 # call(*arrays)
    inputs: tuple                # base arrays; each call gets them in one layout
    out: tuple = ()              # indices of inputs that receive results
    needs_plot: bool = False


CASES = []


def case(name, call, *inputs, label=None, out=()):
    """Register ``call(*inputs)`` as a success-path case of the public ``name``."""
    CASES.append(Case(name, label or name, call, inputs, tuple(out),
                      needs_plot=name.startswith("plot.") or name.endswith(".plot")))


# ---- forward -------------------------------------------------------------------------
for pname, proc in dict(SDES, **CHAINS).items():
    steps = None if "chain" in proc.capabilities else 4
    for method in ds.methods.available(proc, "forward"):
        case("forward", lambda x, z, o, p=proc, m=method, n=steps: ds.forward(p, x, n, method=m, noise=z, out=o,
                                                                          save_every=2),
             X, Z, OUT, label=f"forward-{pname}-{method}", out=(2,))
case("forward", lambda x, z, o: ds.forward(VP, x, 4, noise=z, out=o, rng=1), X1, Z1, OUT1,
     label="forward-1d", out=(2,))
case("forward", lambda x, z, o: ds.forward(VP, x, 4, noise=z, out=o, dtype=np.float32),
     X.astype(np.float32), Z.astype(np.float32), OUT.astype(np.float32), label="forward-float32", out=(2,))
case("forward", lambda x, ts, s: ds.forward(VP, x, ts=ts, save_at=s, rng=2), X, TS_UP, SAVE,
     label="forward-ts-save_at")
case("forward", lambda x, s: ds.forward(VE, x, 4, save_at=s, noise=PATH), X, SAVE_T,
     label="forward-brownian-save_at-times")

# ---- reverse -------------------------------------------------------------------------
for family, proc in PROCESSES.items():
    steps = None if "chain" in proc.capabilities else 4
    for method in ds.methods.available(proc):
        if method == "rk45":  # adaptive: no steps, no noise; save_at takes any times
            case("reverse", lambda x, o, p=proc: ds.reverse(p, LIN, x, method="rk45", out=o, save_at=[0.5, 0.2]),
                 X, OUT, label=f"reverse-{family}-rk45", out=(1,))
            continue
        case("reverse", lambda x, z, o, p=proc, m=method, n=steps: ds.reverse(p, LIN, x, n, method=m, noise=z, out=o,
                                                                          save_every=1),
             X, Z, OUT, label=f"reverse-{family}-{method}", out=(2,))
for label, kwargs in (("em-alpha", {"alpha": 0.5}), ("ddim-eta", {"method": "ddim", "eta": 0.5}),
                      ("ancestral-posterior", {"method": "ancestral", "variance": "posterior"}),
                      ("langevin", {"corrector": "langevin", "n_corrector_steps": 2})):
    case("reverse", lambda x, z, o, kw=kwargs: ds.reverse(VP, LIN, x, 4, noise=z, out=o, **kw), X, Z, OUT,
         label=f"reverse-vp-{label}", out=(2,))
for label, score in (("mixture", GM), ("bound-mixture", GM.score(VP)), ("empirical", EMP),
                     ("callable", _minus), ("eps", ds.score_from_eps(_eps, VP))):
    case("reverse", lambda x, z, o, sc=score: ds.reverse(VP, sc, x, 4, noise=z, out=o, rng=3), X, Z, OUT,
         label=f"reverse-score-{label}", out=(2,))
case("reverse", lambda z, o: ds.reverse(VP, LIN, None, 4, shape=(6, 2), noise=z, out=o, rng=4), Z, OUT,
     label="reverse-from-prior", out=(1,))
case("reverse", lambda x, ts, s: ds.reverse(VP, _minus, x, ts=ts, save_at=s, method="ode_heun"), X, TS_DOWN, SAVE,
     label="reverse-ts-save_at")
case("reverse", lambda x, s: ds.reverse(VE, LIN1, x, 4, save_at=s, noise=PATH.normals(4)[:, :, 0], rng=5), X1,
     SAVE_T, label="reverse-1d-save_at-times")
case("reverse", lambda x, o: ds.reverse(VP, GM, x, 4, noise=PATH, out=o, dtype=np.float32),
     X.astype(np.float32), OUT.astype(np.float32), label="reverse-float32-brownian", out=(1,))

# ---- the engine and the generator -----------------------------------------------------
case("run_steps", lambda x, z, s, o: ds.run_steps(x, TABLE, score=LIN, noise=z, save=s, out=o, rng=6),
     X, Z2, SAVE, OUT, label="run_steps-builtin", out=(3,))
case("run_steps", lambda x, o: ds.run_steps(x, TABLE, score=_minus, out=o, block_rows=2, rng=6),
     X, OUT, label="run_steps-callable", out=(1,))
case("run_steps", lambda x, z: ds.run_steps(x, TABLE, score=GM, noise=z, dtype=np.float32), X, Z2,
     label="run_steps-mixture-float32")
case("standard_normal", lambda o: ds.standard_normal(out=o, rng=7), OUT, label="standard_normal-out", out=(0,))
case("standard_normal", lambda o: ds.standard_normal((6, 2), rng=7, dtype=np.float32, out=o),
     OUT.astype(np.float32), label="standard_normal-out-float32", out=(0,))
case("standard_normal", lambda shape: ds.standard_normal(shape, rng=8), SHAPE, label="standard_normal-shape")


def _set_threads():
    saved = _threads._requested
    try:
        return ds.set_num_threads(np.int64(1))
    finally:
        _threads._requested = saved


case("set_num_threads", _set_threads)
case("get_num_threads", ds.get_num_threads)
case("simd_paths", ds.simd_paths)
case("get_simd_path", ds.get_simd_path)
case("set_simd_path", lambda: ds.set_simd_path(ds.set_simd_path(ds.simd_paths()[0])))

# ---- StepTable ---------------------------------------------------------------------
case("StepTable", lambda kind, dst, src, w, t, m, s, interval, stream, step: ds.StepTable(
         kind=kind, dst=dst, src=src, w=w, t=t, m=m, sd=s, interval=interval, stream=stream, step=step),
     np.full(4, 2, np.int32), np.zeros(4, np.int32), SRC4, W4, T4, M4, S4, INTERVALS4, np.zeros(4, np.int64),
     INTERVALS4.copy())
case("StepTable.affine", lambda a, b, c, t, m, s, i: ds.StepTable.affine(a, b, c, t=t, m=m, sd=s, interval=i),
     A4, B4, C4, T4, M4, S4, INTERVALS4)
case("StepTable.heun", lambda a, b, t, m, s: ds.StepTable.heun(a, b, a, b, t=t, t_end=0.5 * t, m=m, sd=s,
                                                               m_end=m, sd_end=s), A4, B4, T4, M4, S4)
case("StepTable.langevin", lambda r, snr, t, i: ds.StepTable.langevin(r, snr, t=t, interval=i, sub_step=i,
                                                                      step=i // 2), B4, C4, T4, INTERVALS4)
case("StepTable.score_rows", lambda d, w0, t, m, s, i: ds.StepTable.score_rows(d, 0, w0, -s, t=t, m=m, sd=s, step=i),
     INTERVALS4 % 2 + 1, A4, T4, M4, S4, INTERVALS4)
case("StepTable.normal_rows", lambda i, st: ds.StepTable.normal_rows(2, interval=i, stream=st, step=i),
     INTERVALS4, INTERVALS4 + 5)
case("StepTable.combine_rows", lambda a, b, s, t, i: ds.StepTable.combine_rows(0, [(a, 0), (b, s)], t=t, step=i),
     A4, B4, INTERVALS4 % 2 + 1, T4, INTERVALS4)
case("StepTable.langevin_rows", lambda r, snr, t, i: ds.StepTable.langevin_rows(0, 0, 1, 2, r, snr, t=t, step=i),
     B4, C4, T4, INTERVALS4)
case("StepTable.program", lambda a, b, c, i: ds.StepTable.program(
         ds.StepTable.score_rows(1, t=0.5, step=i), ds.StepTable.normal_rows(2, interval=i, step=i),
         ds.StepTable.combine_rows(0, [(a, 0), (b, 1), (c, 2)], step=i)), A4, B4, C4, INTERVALS4)
case("StepTable.affine_coefficients", TABLE.concat(ds.StepTable.affine(A4, B4, C4)).affine_coefficients)
case("StepTable.carried_steps", TABLE.carried_steps)
case("StepTable.concat", lambda a, c: ds.StepTable.concat(ds.StepTable.affine(a, 0.0, c), TABLE), A4, C4)
case("StepTable.interleave", lambda a, c, t: ds.StepTable.interleave(
         ds.StepTable.affine(a, 0.0, c), ds.StepTable.langevin(0.1, 0.2, t=t, sd=1.0)), A4, C4, T4)
case("StepTable.kind_name", lambda: TABLE.kind_name(np.int64(3)))
case("StepTable.last_row_of_step", TABLE.last_row_of_step)

# ---- BrownianPath ------------------------------------------------------------------
case("BrownianPath", lambda shape: ds.BrownianPath(shape, 4, rng=9), SHAPE)
case("BrownianPath.values", lambda: PATH.values(np.int64(2)))
case("BrownianPath.increments", lambda T: PATH.increments(8, T=T), np.array(2.0))
case("BrownianPath.normals", lambda: PATH.normals(4))
case("BrownianPath.level_of", lambda: PATH.level_of(8))

# ---- results -----------------------------------------------------------------------
case("Trajectory", lambda x, xs, ts: repr(ds.Trajectory(x, xs, ts, 0)), X, Z, T4)
case("RunResult", lambda x, xs, saved: ds.RunResult(x, xs, saved, 0), X, Z, INTERVALS4)

# ---- processes ---------------------------------------------------------------------
case("VPSDE", lambda lo, hi, T: ds.VPSDE(lo, hi, T), np.array(0.1), np.array(20.0), np.array(2.0))
case("SubVPSDE", lambda lo, hi: ds.SubVPSDE(lo, hi), np.array(0.1), np.array(20.0))
case("VESDE", lambda lo, hi: ds.VESDE(lo, hi), np.array(0.01), np.array(50.0))
for cname, cls in (("VPSDE", ds.VPSDE), ("SubVPSDE", ds.SubVPSDE)):
    case(f"{cname}.cosine", lambda s, c=cls: c.cosine(s), np.array(0.008))
    case(f"{cname}.from_betas", lambda b, c=cls: c.from_betas(b, T=2.0).marginal_coefficients(1.5), BETAS)
case("VESDE.from_sigmas", lambda s: ds.VESDE.from_sigmas(s).marginal_coefficients(0.3), SIGMAS0)
for family, proc in PROCESSES.items():  # a user grid, for the SDEs (4 steps: plms's warm-up needs 3 before t = 0)
    grid = None if "chain" in proc.capabilities else np.array([1.0, 0.7, 0.4, 0.2, 0.0])
    for method in [m for m in ds.methods.available(proc) if m != "rk45"]:  # rk45 has no fixed table
        case("methods.table", lambda *g, p=proc, m=method: ds.methods.table(p, m, *g),
             *(() if grid is None else (grid,)), label=f"methods.table-{family}-{method}")
VIEW = ds.methods.view(VP, "ddim", 4)
case("methods.available", lambda: [ds.methods.available(p, d) for p in PROCESSES.values()
                                   for d in ("forward", "reverse", "corrector")])
case("methods.get", lambda: ds.methods.get("ode_heun"))
case("methods.records", lambda: ds.methods.records("reverse"))
case("methods.view", lambda g: ds.methods.view(VP, "ancestral", g), np.array([1.0, 0.5, 0.0]))
case("methods.Method", lambda: ds.methods.Method("mine", "reverse", ds.methods.get("em").build, ("affine",),
                                                  "sde", False, 1, "", ""))
case("methods.Method.applies_to", lambda: ds.methods.get("ddim").applies_to(VE))
case("methods.Method.option", lambda: ds.methods.get("em").option("alpha"))
case("methods.Option", lambda: ds.methods.Option("gamma", 0.0, float))
case("methods.register", lambda: ds.methods.unregister(ds.methods.register(
    ds.methods.Method("mine_io", "reverse", ds.methods.get("em").build, ("affine",), "sde", False, 1, "", "")).name))
case("methods.unregister", lambda: ds.methods.register(ds.methods.unregister(ds.methods.register(
    ds.methods.Method("mine_io2", "reverse", ds.methods.get("em").build, ("affine",), "sde", False, 1, "", "")).name))
     and ds.methods.unregister("mine_io2"))
case("methods.GridView", lambda t, m, sd: ds.methods.GridView(t, m, sd, VP, VP.capabilities), TIMES[0], TIMES[0],
     TIMES[0])
case("methods.GridView.chain_view", lambda: VIEW.chain_view("ddim"))
case("methods.GridView.run_order", VIEW.run_order)
case("methods.GridView.affine", lambda k, a: VIEW.affine(k, a, 0.1, 0.2), np.array([4, 3]), np.array([0.9, 0.8]))
case("methods.GridView.ddpm_betas", VIEW.ddpm_betas, np.array([4, 3, 1]))
for cname, sde in SDES.items():
    case(f"{cname}.grid_view", sde.grid_view, np.array([0.0, 0.25, 0.5, 1.0]))
    case(f"{cname}.drift_coefficient", sde.drift_coefficient, TIMES)
    case(f"{cname}.diffusion", sde.diffusion, TIMES)
    case(f"{cname}.marginal", sde.marginal, TIMES)
    case(f"{cname}.marginal_coefficients", sde.marginal_coefficients, TIMES)
    case(f"{cname}.transition", sde.transition, TIMES, T_NEXT)
    case(f"{cname}.drift", sde.drift, X, TB)
    case(f"{cname}.drift", sde.drift, X, T0, label=f"{cname}.drift-0d")
    case(f"{cname}.perturb", lambda x, t, s=sde: s.perturb(x, t, rng=10), X, TB)
    case(f"{cname}.prior_logp", sde.prior_logp, X)
    case(f"{cname}.prior_sample", lambda shape, s=sde: s.prior_sample(shape, rng=11), SHAPE)
    case(f"{cname}.prior_std", sde.prior_std)
    case(f"{cname}.reverse", lambda a, s=sde: s.reverse(_minus, a), np.array(0.5))
    if isinstance(sde, ds.VPSDE):
        case(f"{cname}.beta", sde.beta, TIMES)
        case(f"{cname}.integrated_beta", sde.integrated_beta, TIMES)
    else:
        case(f"{cname}.sigma", sde.sigma, TIMES)
# the protocol's own methods, and the processes added with it
AFF = ds.AffineSDE(lambda t: np.exp(-0.5 * VP.integrated_beta(t)),
                   lambda t: np.sqrt(-np.expm1(-VP.integrated_beta(t))), name="vp-by-hand")
EDM = ds.EDM()
RF = ds.RectifiedFlow()
INNER = np.array([[0.1, 0.2], [0.5, 0.9]])        # times inside (0, 1): RF is singular at 1
for cname, sde in dict(SDES, AffineSDE=AFF, EDM=EDM, RectifiedFlow=RF).items():
    for method in ("mean", "std", "dmean", "dvar", "sigma_of_t", "lambda_of_t"):
        case(f"{cname}.{method}", getattr(sde, method), INNER)
    case(f"{cname}.t_of_sigma", sde.t_of_sigma, np.asarray(sde.sigma_of_t(INNER)))
    case(f"{cname}.t_of_lambda", sde.t_of_lambda, np.asarray(sde.lambda_of_t(INNER)))
case("AffineSDE", lambda T: ds.AffineSDE(lambda t: 1 - 0.5 * t, lambda t: t, T), np.array(1.0))
case("EDM", lambda lo, hi: ds.EDM(lo, hi), np.array(0.002), np.array(80.0))
case("RectifiedFlow", lambda: ds.RectifiedFlow())
for cname, sde in (("AffineSDE", AFF), ("EDM", EDM), ("RectifiedFlow", RF)):
    case(f"{cname}.grid_view", sde.grid_view, INNER[0])
    case(f"{cname}.drift_coefficient", sde.drift_coefficient, INNER)
    case(f"{cname}.diffusion", sde.diffusion, INNER)
    case(f"{cname}.marginal", sde.marginal, INNER)
    case(f"{cname}.marginal_coefficients", sde.marginal_coefficients, INNER)
    case(f"{cname}.transition", sde.transition, INNER, INNER + 0.05)
    case(f"{cname}.drift", sde.drift, X, TB * 0.9)
    case(f"{cname}.perturb", lambda x, t, s=sde: s.perturb(x, t, rng=10), X, TB)
    case(f"{cname}.prior_logp", sde.prior_logp, X)
    case(f"{cname}.prior_sample", lambda shape, s=sde: s.prior_sample(shape, rng=11), SHAPE)
    case(f"{cname}.prior_std", sde.prior_std)
    case(f"{cname}.reverse", lambda a, s=sde: s.reverse(_minus, a), np.array(0.5))
    case("reverse", lambda x, z, o, s=sde: ds.reverse(s, LIN, x, 4, noise=z, out=o), X, Z, OUT,
         label=f"reverse-{cname}", out=(2,))
    case("forward", lambda x, z, s=sde: ds.forward(s, x, 4, noise=z, method="exact"), X, Z,
         label=f"forward-{cname}")
REV = VP.reverse(_minus, 0.5)
case("ReverseSDE", lambda a: ds.ReverseSDE(VE, _minus, a), np.array(0.5))
case("ReverseSDE.drift", REV.drift, X, TB)
case("ReverseSDE.drift", SUB.reverse(GM.score(SUB)).drift, X, T0, label="ReverseSDE.drift-mixture")
case("ReverseSDE.diffusion", REV.diffusion, TIMES)

case("DDPM", lambda b, T: ds.DDPM(b, T), BETAS, np.array(2.0))
case("SMLD", lambda s, s0: ds.SMLD(s, s0), SIGMAS, np.array(0.05))
case("DDPM.from_sde", lambda: ds.DDPM.from_sde(VP, 8, rule="exact"))
case("DDPM.linear", lambda: ds.DDPM.linear(10, 1e-4, 0.02))
case("SMLD.from_sde", lambda: ds.SMLD.from_sde(VE, np.int64(8)))
for cname, chain in CHAINS.items():
    case(f"{cname}.marginal", chain.marginal, np.array([[0, 1], [3, 4]]))
    case(f"{cname}.marginal_coefficients", chain.marginal_coefficients, np.array([[0, 1], [3, 4]]))
    case(f"{cname}.respace", lambda c=chain: c.respace(2))
    case(f"{cname}.step_coefficients", chain.step_coefficients)
    case(f"{cname}.transition", chain.transition)
    case(f"{cname}.as_sde", chain.as_sde)
    case(f"{cname}.grid_view", chain.grid_view)

# ---- scores ------------------------------------------------------------------------
case("LinearScore", lambda m, v: ds.LinearScore(m, v).evaluate(X, 0.8, 0.6), MEAN2, VAR2)
case("LinearScore.evaluate", LIN.evaluate, X, M, S)
case("LinearScore.evaluate", LIN1.evaluate, X1, M, S, label="LinearScore.evaluate-1d")
case("LinearScore.vectors", lambda: LIN.vectors(np.int64(2)))
case("LinearScore.c_params", lambda: LIN.c_params(2))
for kind, covs in (("isotropic", COVS_ISO), ("diagonal", COVS_DIAG), ("full", COVS_FULL)):
    case("GaussianMixture", lambda w, mu, c: ds.GaussianMixture(w, mu, c).logpdf(X), WEIGHTS, MEANS, covs,
         label=f"GaussianMixture-{kind}")
case("GaussianMixture.c_params", lambda: GM.c_params(2))
case("GaussianMixture.component_logpdf", GM.component_logpdf, X)
case("GaussianMixture.logpdf", GM.logpdf, X)
case("GaussianMixture.logpdf", GM1.logpdf, X1, label="GaussianMixture.logpdf-1d")
case("GaussianMixture.covariance", lambda: GM.covariance(np.int64(3)))
case("GaussianMixture.marginal", lambda t: GM.marginal(VP, t), T0)
case("GaussianMixture.marginal", lambda i: GM.marginal(DDPM4, i), np.array(2), label="GaussianMixture.marginal-chain")
case("GaussianMixture.marginal_law", lambda t: GM.marginal_law(VP, t), T0)
case("GaussianMixture.marginal_law", lambda i: GM.marginal_law(DDPM4, i), np.array(2),
     label="GaussianMixture.marginal_law-chain")
case("GaussianMixture.with_marginal", GM.with_marginal, M, S)
case("GaussianMixture.sample", lambda: GM.sample(np.int64(5), rng=12))
case("GaussianMixture.score", lambda x: GM.score(VP)(x, 0.5), X)
case("GaussianMixture.score", lambda x: GM.score(DDPM4).score_and_trace(x, 0.5), X,
     label="GaussianMixture.score-chain-trace")
case("GaussianMixture.score_at", GM.score_at, X, M, S)
case("GaussianMixture.score_and_trace", GM1.score_and_trace, X1, M, S)
case("EmpiricalData", lambda p: ds.EmpiricalData(p).score_at(X, 0.8, 0.6), POINTS)
case("EmpiricalData", lambda p: ds.EmpiricalData(p).score_at(X1, 0.8, 0.6), POINTS1, label="EmpiricalData-1d")
case("EmpiricalData.c_params", lambda: EMP.c_params(2))
case("EmpiricalData.marginal_logpdf", EMP.marginal_logpdf, X, M, S)
case("EmpiricalData.score", lambda x: EMP.score(SUB).score_and_trace(x, 0.5), X)
case("EmpiricalData.score_at", EMP.score_at, X, M, S)
case("EmpiricalData.score_and_trace", EMP.score_and_trace, X, M, S)
case("score_from_eps", lambda x: ds.score_from_eps(_eps, DDPM4)(x, 0.5), X)
case("score_from_x0", lambda x: ds.score_from_x0(_eps, SUB)(x, 0.5), X)
case("score_from_v", lambda x: ds.score_from_v(_eps, VP)(x, 0.5), X)
case("score_from_velocity", lambda x: ds.score_from_velocity(_eps, VE)(x, 0.5), X)
case("network_score", lambda x: ds.network_score(_eps, VP, prediction="x0", time="sigma")(x, 0.5), X)


def _torch_minus(x):
    pytest.importorskip("torch", reason="torch is not installed (the torch extra)")
    return ds.network_score(lambda v, tt: -v, VP, prediction="score", framework="torch")(x, 0.5)


def _mlp_weights(scale):
    """The three layers of a 2 -> 4 -> 4 -> 2 MLP with no Fourier features, from one array."""
    return ([np.full((4, 3), scale), np.full((4, 4), scale), np.full((2, 4), scale)],
            [np.zeros(4), np.zeros(4), np.zeros(2)])


def _load_mlp(x):
    import tempfile
    w, b = _mlp_weights(0.1)
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/w.npz"
        np.savez(path, w0=w[0], w1=w[1], w2=w[2], b0=b[0], b1=b[1], b2=b[2], shape=np.array([2, 4, 0]))
        return ds.training.load_mlp(path)(x, 0.5)


def _torch_training(x):
    pytest.importorskip("torch", reason="torch is not installed (the torch extra)")
    import tempfile
    net = ds.training.mlp(2, hidden=4, frequencies=1)
    ds.training.train_dsm(x, VP, net=net, steps=2, batch=4, rng=0)
    with tempfile.TemporaryDirectory() as folder:
        ds.training.save_mlp(net, f"{folder}/w.npz")


case("network_score", _torch_minus, X, label="network_score-torch")
case("training.NumpyMLP", lambda x: ds.training.NumpyMLP(*_mlp_weights(0.1), 2, 4, 0, {})(x, 0.5), X)
case("training.load_mlp", _load_mlp, X)
case("training.mlp", lambda x: _torch_training(x), X)
case("training.train_dsm", lambda x: _torch_training(x), X)
case("training.save_mlp", lambda x: _torch_training(x), X)
case("log_likelihood", lambda x: ds.log_likelihood(VP, GM, x, 4), X)
case("log_likelihood", lambda x: ds.log_likelihood(VP, GM1, x, 4, t_end=0.1), X1, label="log_likelihood-1d")
case("log_likelihood", lambda x: ds.log_likelihood(VE, _minus, x, 4, n_probes=2, rng=13, delta=1e-3), X,
     label="log_likelihood-callable")

# ---- datasets ----------------------------------------------------------------------
case("datasets.eight_gaussians", lambda: ds.datasets.eight_gaussians(np.float64(3.0), 0.2))
case("datasets.bimodal_1d", lambda: ds.datasets.bimodal_1d(np.float64(3.0), 0.4, 0.3))
case("datasets.two_moons", lambda: ds.datasets.two_moons(np.int64(10), rng=14))
case("datasets.swiss_roll", lambda: ds.datasets.swiss_roll(10, rng=15))
case("datasets.checkerboard", lambda: ds.datasets.checkerboard(10, rng=16, squares=np.int64(3)))

# ---- grids -------------------------------------------------------------------------
case("grids.uniform", lambda: ds.grids.uniform(VP, np.int64(4), t_end=np.float64(0.1)))
case("grids.logsnr", lambda: ds.grids.logsnr(VE, 4))
case("grids.exponential", lambda: ds.grids.exponential(SUB, 4))
case("grids.quadratic", lambda: ds.grids.quadratic(VP, 4))
case("grids.karras", lambda: ds.grids.karras(VE, 4, rho=np.float64(7.0)))
case("DDPM.respace", lambda: ds.DDPM.linear(20).respace(4, "leading", steps_offset=1), label="DDPM.respace-leading")

# ---- analysis ----------------------------------------------------------------------
case("analysis.fit_order", analysis.fit_order, STEP_COUNTS, ERRORS)
case("analysis.strong_error", lambda x, n: analysis.strong_error(VP, x, n, rng=17), X, STEPS_LADDER)
case("analysis.strong_error", lambda x, n: analysis.strong_error(SUB, x, n, score=LIN, direction="reverse", rng=17),
     X, STEPS_LADDER, label="analysis.strong_error-reverse")
case("analysis.weak_error", lambda x, n: analysis.weak_error(VE, x, n, rng=18), X, STEPS_LADDER)
case("analysis.wasserstein_1d", analysis.wasserstein_1d, X1, Y1)
case("analysis.wasserstein_1d", lambda x, y: analysis.wasserstein_1d(x, y, p=2), X1, Y1,
     label="analysis.wasserstein_1d-p2")
case("analysis.ks_statistic", analysis.ks_statistic, X1, Y1)
case("analysis.sliced_wasserstein", lambda x, y: analysis.sliced_wasserstein(x, y, 8), X, Y)
case("analysis.moment_errors", analysis.moment_errors, X, MEAN2, VAR2)
case("analysis.OrderFit", lambda ci: repr(analysis.OrderFit(1.0, ci, 2.0)), np.array([0.9, 1.1]))
case("analysis.Distance", lambda n: repr(analysis.Distance(0.1, 0.2, n)), np.array([6, 7]))
NULL_DISTANCES = np.linspace(0.05, 0.3, 19)
case("analysis.Distance.from_null", lambda v, n: analysis.Distance.from_null(0.1, v, n), NULL_DISTANCES,
     np.array([6, 7]))
case("analysis.Distance.consistent", lambda v: analysis.Distance.from_null(0.1, v).consistent(0.05), NULL_DISTANCES)
case("analysis.Distance.verdict", lambda v: analysis.Distance.from_null(0.1, v).verdict(0.05), NULL_DISTANCES)
case("analysis.OrderFit.ci_text", lambda n, e: analysis.fit_order(n, e).ci_text(), STEP_COUNTS, ERRORS)
case("analysis.OrderFitWarning", lambda: analysis.OrderFitWarning("a message"))
case("analysis.ConvergenceStudy", lambda n, e, se: repr(analysis.ConvergenceStudy("strong", n, e, se, 64,
                                                                                  STUDY.fit)),
     STEP_COUNTS, ERRORS, ERRORS / 10)
case("analysis.ConvergenceStudy.table", lambda n, e, se: analysis.ConvergenceStudy("weak", n, e, se, 64,
                                                                                   STUDY.fit).table(),
     STEP_COUNTS, ERRORS, ERRORS / 10)
case("analysis.ConvergenceStudy.plot", lambda n, e, se: analysis.ConvergenceStudy("weak", n, e, se, 64,
                                                                                  STUDY.fit).plot(),
     STEP_COUNTS, ERRORS, ERRORS / 10)

# ---- Fokker-Planck ---------------------------------------------------------------
case("fokker_planck.solve_forward", lambda p, x: fokker_planck.solve_forward(VP, p, x, steps=4, save_every=2),
     P0, GRID)
case("fokker_planck.solve_reverse", lambda p, x: fokker_planck.solve_reverse(VP, GM1.score(VP), p, x, alpha=0.5,
                                                                             steps=4), P0, GRID)
case("fokker_planck.FokkerPlanckSolution", lambda x, ts, p: repr(fokker_planck.FokkerPlanckSolution(x, ts, p)),
     GRID, T4, np.tile(P0, (4, 1)))
for method, args in (("at", (0.5,)), ("cdf", (1,)), ("mass", ())):
    case(f"fokker_planck.FokkerPlanckSolution.{method}",
         lambda x, ts, p, m=method, a=args: getattr(fokker_planck.FokkerPlanckSolution(x, ts, p), m)(*a),
         GRID, T4, np.tile(P0, (4, 1)))

# ---- plots -------------------------------------------------------------------------
case("plot.trajectories", lambda x, xs, ts: plot.trajectories(ds.Trajectory(x, xs, ts, 0), n_paths=3),
     X, Z, T4)
case("plot.marginals", lambda x, xs, ts, at: plot.marginals(ds.Trajectory(x, xs, ts, 0), at, exact=GM, process=VP),
     X, Z, T4, T4[1:3])
case("plot.marginals", lambda x, xs, ts, at: plot.marginals(ds.Trajectory(x, xs, ts, 0), at, exact=GM1, process=VP,
                                                            bins=5),
     X1, Z1, T4, T4[:2], label="plot.marginals-1d")
case("plot.convergence", lambda n, e, se: plot.convergence(analysis.ConvergenceStudy("weak", n, e, se, 64, STUDY.fit)),
     STEP_COUNTS, ERRORS, ERRORS / 10)
case("plot.density_evolution", lambda x, ts, p, xs: plot.density_evolution(
         fokker_planck.FokkerPlanckSolution(x, ts, p), ds.Trajectory(xs[0], xs, ts, 0), n_overlays=2),
     GRID, T4, np.tile(P0, (4, 1)), Z1)
case("plot.log_ticks", lambda ticks: plot.log_ticks(plot.convergence(STUDY), xticks=ticks),
     np.array([16.0, 32.0, 64.0]))
case("plot.compare_chain_sde", lambda x: plot.compare_chain_sde(DDPM4, x, n_paths=3), X1)

# ---- the exact law of a sampler, error against NFE, animations -----------------------
GAUSS1 = ds.GaussianMixture([1.0], MEAN2[None], VAR2[None])
BUDGETS = np.array([2, 4])


def _curves(n, e):
    return analysis.ErrorCurves((analysis.SamplerCurve("em", "em", {}, False, n, n, e, e / 10),), "W2", True,
                                budgets=(8,))


case("analysis.exact_output_law", lambda ts: analysis.exact_output_law(VP, LIN, "ode_heun", ts=ts), TS_DOWN)
case("analysis.exact_output_law", lambda m, v: analysis.exact_output_law(VP, ds.LinearScore(m, v), "em", steps=3),
     MEAN2, VAR2, label="analysis.exact_output_law-linear")
case("analysis.ExactLaw", lambda m, c: repr(analysis.ExactLaw(m, c, 0.1, 0.2, m, c, 3, 1.0, 0.0)), MEAN2,
     np.diag(VAR2))
case("analysis.error_vs_nfe", lambda b: analysis.error_vs_nfe(VP, GAUSS1, b, ["em", "ddim"]), BUDGETS)
case("analysis.SamplerCurve", lambda n, e: analysis.SamplerCurve("em", "em", {}, False, n, n, e), STEP_COUNTS, ERRORS)
case("analysis.ErrorCurves", _curves, STEP_COUNTS, ERRORS)
case("analysis.ErrorCurves.best", lambda n, e: _curves(n, e).best(16), STEP_COUNTS, ERRORS)
case("analysis.ErrorCurves.curve", lambda n, e: _curves(n, e).curve("em"), STEP_COUNTS, ERRORS)
case("plot.error_vs_nfe", lambda n, e: plot.error_vs_nfe(_curves(n, e)), STEP_COUNTS, ERRORS)
case("plot.animate", lambda x, xs, ts: plot.animate(ds.Trajectory(x, xs, ts, 0), frames=3), X, Z, T4)
case("plot.Animation", lambda x, xs, ts: plot.animate({"a": ds.Trajectory(x, xs, ts, 0)}, frames=2).index, X, Z, T4)
case("plot.Animation.draw_frame", lambda x, xs, ts: plot.animate(ds.Trajectory(x, xs, ts, 0)).draw_frame(1),
     X, Z, T4)
case("plot.Animation.to_html", lambda x, xs, ts: plot.animate(ds.Trajectory(x, xs, ts, 0), frames=2).to_html(),
     X, Z, T4)
case("plot.Animation.save", lambda x, xs, ts: plot.animate(ds.Trajectory(x, xs, ts, 0), frames=2).save(
    os.path.join(tempfile.mkdtemp(), "a.gif")), X, Z, T4)


# ---- the test ----------------------------------------------------------------------


def _in_layout(a, layout, receives):
    """A fresh copy of ``a`` in ``layout``; for a view, also the buffer it
    lives in and the indices of the buffer outside the view (its gaps)."""
    if layout == "F":
        return np.array(a, order="F", copy=True), None, None  # (np.asfortranarray makes 0-d arrays 1-d)
    if layout == "strided":
        buffer = np.full(2 * a.size + 1, SENTINEL, dtype=a.dtype)
        view = buffer[1::2].reshape(a.shape)
        gaps = np.arange(0, buffer.size, 2)
    elif layout == "unaligned":
        buffer = np.full(a.nbytes + 2, SENTINEL % 256, dtype=np.uint8)
        view = buffer[1:1 + a.nbytes].view(a.dtype).reshape(a.shape)
        gaps = np.array([0, buffer.size - 1])
    else:
        copy = np.array(a, order="C", copy=True)
        if layout == "readonly" and not receives:
            copy.flags.writeable = False
        return copy, None, None
    assert np.shares_memory(view, buffer)
    view[...] = a
    return view, buffer, gaps


def _flags(a):
    return {name: bool(a.flags[name]) for name in FLAGS}


def _params():
    for c in CASES:
        for layout in LAYOUTS:
            marks = []
            if c.needs_plot and plt is None:
                marks.append(pytest.mark.skip(reason="plots need the optional matplotlib"))
            yield pytest.param(c, layout, marks=marks, id=f"{c.label}-{layout}")


@pytest.mark.parametrize("case, layout", list(_params()))
def test_inputs_keep_their_values_and_flags(case, layout):
    arrays, buffers, gaps = zip(*(_in_layout(a, layout, i in case.out) for i, a in enumerate(case.inputs))) \
        if case.inputs else ((), (), ())
    values = [a.copy() for a in arrays]
    flags = [_flags(a) for a in arrays]
    around = [None if b is None else b[g].copy() for b, g in zip(buffers, gaps)]
    try:
        case.call(*arrays)
    finally:
        if case.needs_plot:
            plt.close("all")
    for i, a in enumerate(arrays):
        assert _flags(a) == flags[i], f"input {i} changed its flags from {flags[i]} to {_flags(a)}"
        if i not in case.out:
            assert a.dtype == values[i].dtype and a.shape == values[i].shape
            np.testing.assert_array_equal(a, values[i], err_msg=f"input {i} changed its values")
        if buffers[i] is not None:
            np.testing.assert_array_equal(buffers[i][gaps[i]], around[i],
                                          err_msg=f"the buffer around input {i} was written to")


def _public_methods(cls, prefix):
    names = []
    for attr in dir(cls):
        if attr.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, attr)
        if isinstance(raw, (staticmethod, classmethod)) or inspect.isfunction(raw):
            names.append(f"{prefix}.{attr}")
    return names


def public_names():
    """Every public callable reachable from ``diffsde.__all__`` by attribute:
    the callables there, the functions and classes defined in its public
    submodules, and the public methods of every such class."""
    names = []
    for name in ds.__all__:
        obj = getattr(ds, name)
        if isinstance(obj, types.ModuleType):
            for attr, member in vars(obj).items():
                if (attr.startswith("_") or not callable(member)
                        or getattr(member, "__module__", None) != obj.__name__):
                    continue
                names.append(f"{name}.{attr}")
                if inspect.isclass(member):
                    names += _public_methods(member, f"{name}.{attr}")
        elif callable(obj):
            names.append(name)
            if inspect.isclass(obj):
                names += _public_methods(obj, name)
    return sorted(set(names))


def test_every_public_name_has_a_success_path_case():
    names = public_names()
    assert len(names) > 100  # the walk found the API, not an empty module
    covered = {c.name for c in CASES}
    missing = [n for n in names if n not in covered]
    assert not missing, f"public names without a case in {__name__}: {missing}"
    unknown = sorted(covered - set(names))
    assert not unknown, f"cases for names that are not public: {unknown}"


def test_every_layout_is_what_it_says():
    a = np.arange(12.0).reshape(3, 4)
    c, _, _ = _in_layout(a, "C", False)
    f, _, _ = _in_layout(a, "F", False)
    v, buffer, gaps = _in_layout(a, "strided", False)
    u, _, _ = _in_layout(a, "unaligned", False)
    r, _, _ = _in_layout(a, "readonly", False)
    o, _, _ = _in_layout(a, "readonly", True)
    assert c.flags.c_contiguous and c.flags.writeable and c.flags.owndata
    assert f.flags.f_contiguous and not f.flags.c_contiguous
    assert not v.flags.c_contiguous and not v.flags.f_contiguous and not v.flags.owndata
    assert np.all(buffer[gaps] == SENTINEL) and gaps.size == a.size + 1
    assert not u.flags.aligned and u.flags.c_contiguous
    assert not r.flags.writeable and o.flags.writeable
    for arr in (c, f, v, u, r):
        np.testing.assert_array_equal(arr, a)
    assert _in_layout(np.array(2.0), "F", False)[0].shape == ()

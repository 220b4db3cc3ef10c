"""Measured convergence orders of every registered reverse sampler against
exact answers, and the error-vs-NFE figure of the docs.

    python tools/sampler_orders.py [--figure] [--docs] [--out DIR]

Data: two-dimensional Gaussian data N((1, -1), diag(0.25, 0.05)) with its
exact score, on VP, sub-VP, VE, EDM and RectifiedFlow, each sampler on the
grid it is usually used with (``usual_grid``), from the process's
``default_t_start`` to its ``default_t_end``.

- Deterministic samplers: the path-wise error against the closed-form
  probability-flow map of Gaussian data, per coordinate
  x_end = m_e mu + sd_e (x_start - m_s mu) / sd_s, sd_t^2 = m_t^2 v + s_t^2
  (the flow moves each quantile of the Gaussian marginal to the same
  quantile), as the largest |x_end - map| over 13 starts from -3 to +3
  standard deviations of the marginal at t_start, divided by m_e (data units).
- Stochastic samplers: the exact output law from
  ``ds.analysis.exact_output_law`` (a moment recursion through the step
  table, started from the exact marginal: no Monte Carlo error) and its W2
  distance to the exact marginal at t_end, with the errors of its mean and
  covariance.

Each error is measured at N = 32, 64, 128, 256, 512 steps and the order
fitted by ``ds.analysis.fit_order`` (least squares in log-log, 95% Student t
interval). The verdict compares it with the order the registry declares
(``order`` for deterministic methods, ``weak_order`` for stochastic ones):
"agrees" when the interval (unless wide, half-width > 0.25) holds the
declared order or the fit is within 0.15 of it (the test suite's tolerance
for the pre-asymptotic bend of the log-log line); otherwise the errors are
measured on to N = 8192 and the verdict says whether the pairwise slope of
the last doubling whose errors are clear of rounding (``above_rounding``)
"approaches" the declared order (within 0.15) or stays above or below it.
The notes say why. The same-named option variants of ``VARIANTS`` are
measured too. rk45 (adaptive) has no fixed step count: its error and NFE are
reported against its tolerance instead.

Writes <out>/sampler_orders-<date>.md and .json (default tools/results);
``--docs`` writes the docs page docs/sampler-orders.md from the same numbers;
``--figure`` draws docs/samplers-error-vs-nfe.png: the exact W2 on the
Gaussian data and the Monte Carlo sliced W2 (with 2-standard-error bars)
on the eight-Gaussians mixture, against score evaluations, every sampler on
VP with its usual grid.
"""
import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)

import diffsde as ds  # noqa: E402

MU = np.array([1.0, -1.0])
VAR = np.array([0.25, 0.05])
DATA = ds.GaussianMixture([1.0], [MU], [VAR])
DATA_TEXT = "N((1, -1), diag(0.25, 0.05))"

#: The processes, in the order of the tables.
PROCESSES = {"VP": ds.VPSDE(), "sub-VP": ds.SubVPSDE(), "VE": ds.VESDE(), "EDM": ds.EDM(),
             "RectifiedFlow": ds.RectifiedFlow()}
LADDER = (32, 64, 128, 256, 512)
TAIL = (512, 1024, 2048, 4096, 8192)  # starts where LADDER ends
#: The test suite's tolerance on a fitted order (pre-asymptotic bend of the line).
TOL = 0.15
#: Rounding: a run of N steps ending at states of size X (data units) carries rounding errors
#: of about ROUNDING * N * X (one ulp per step, accumulated coherently: the flow contracts the
#: errors of early steps as it contracts the states); errors below ten times that are left out of
#: fits and slopes. (Measured: the outputs of a deterministic sampler, an affine map of the start
#: for Gaussian data, deviate from their least-squares affine fit by about 1e-14 at N = 8192.)
ROUNDING = np.finfo(np.float64).eps
#: Starts of the path-wise error, in standard deviations of the marginal at t_start.
QUANTILES = np.linspace(-3.0, 3.0, 13)

#: k-diffusion's samplers, used with Karras et al.'s grid.
KDIFFUSION = ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral",
              "dpmpp_sde", "dpmpp_2m_sde", "dpmpp_3m_sde")
#: The exponential integrators designed for equal steps in lambda = log(m/s).
LOGSNR = ("dpm_solver", "unipc", "dpmpp_2m")

#: Option variants measured beside the defaults: (name, options, expected order, where the
#: expectation comes from, grid override, t_end override, processes or None for all).
VARIANTS = [
    ("em", {"alpha": 0.0}, 1.0, "registry strong order (the probability-flow ODE)", None, None, None),
    ("dpm_solver", {"order": 1}, 1.0, "Lu et al. 2022 (order k)", None, None, None),
    ("dpm_solver", {"order": 2}, 2.0, "Lu et al. 2022 (order k)", None, None, None),
    ("unipc", {"order": 3}, 4.0, "Zhao et al. 2023 (UniC: order p + 1)", None, None, None),
    ("plms", {"warmup": "ab"}, None, "registry", None, None, None),
    # the grid on which PLMS's fixed weights are Adams-Bashforth-4's: equal sigma steps
    ("plms", {}, 4.0, "Liu et al. 2022: Adams-Bashforth-4 weights, exact on equal sigma steps", "uniform", 10.0,
     ("EDM",)),
]

#: Why a row does not agree with its declared order (shown next to such rows and in the notes).
NOTES = {
    "lms": "warm-up: LMS starts with Adams-Bashforth of orders 1, 2 and 3 on its first three steps; they "
           "sit at the largest sigmas, where the flow is nearly linear, so their errors are small but fall "
           "more slowly: the slope climbs towards 4 from below, and with still more steps (errors below "
           "about 1e-9) the O(h^2) local error of the first step, an Euler step, takes over and the slope "
           "falls towards 2 (VE, EDM)",
    "plms": "the registry declares 2, the order on every grid; 4 holds on equal sigma steps only (the EDM "
            "row on the uniform grid from sigma = 80 to 10: on EDM t = sigma); on "
            "any other grid PLMS's fixed Adams-Bashforth weights are off by O(h), a local error O(h^3): "
            "global order 2, as its docstring says. On VP and VE the uniform-t grid is further from "
            "asymptotic: near t_end sigma = s/m grows like the square root of the distance to t = 0, so "
            "the last sigma steps are far from equal until the steps are much shorter than t_end "
            "(1e-3 on VP, 1e-5 on VE)",
    "unipc-3": "UniPC's lower-order final steps (diffusers' lower_order_final) end with first-order "
               "steps whose O(h^2) local error caps the global order at 2 once the rest is small",
    "em": "the O(h) terms of Euler-Maruyama's law error change sign along the path on this data and "
          "nearly cancel, so O(h^2) dominates at these N; the slope falls towards 1 with more steps",
    "ancestral-split": "an ancestral step is a step of the ODE to sigma_down followed by N(0, sigma_up^2) "
                       "noise, which is exact in law when the ODE step is exact (sigma_down^2 + sigma_up^2 "
                       "= sigma_next^2): the law error is that of the ODE step, of order 2 here, for any "
                       "data with a Lipschitz score, which is why the registry declares weak order 2",
    "second-order-sde": "order 2 on this data. Gaussian data have an affine score, on which the terms with "
                        "the score's second derivatives vanish, so the order for general data can be "
                        "lower: the registry's weak order 1 is the general claim",
    "dpmpp_3m_sde": "its first two steps have fewer past values (the first is first order); order 2 on this "
                    "data, like dpmpp_2m_sde's, and the same remark on affine scores applies: the "
                    "registry's weak order 1 is the general claim",
    "pre-asymptotic": "pre-asymptotic at these N: the slope of the last doublings reaches the declared order",
}


def note_key(name, options):
    if name == "lms":
        return "lms"
    if name == "plms":
        return "plms"
    if name == "unipc" and options.get("order") == 3:
        return "unipc-3"
    if name == "em":
        return "em"
    if name in ("dpm_2_ancestral", "dpmpp_2s_ancestral"):
        return "ancestral-split"
    if name in ("dpmpp_sde", "dpmpp_2m_sde"):
        return "second-order-sde"
    if name == "dpmpp_3m_sde":
        return "dpmpp_3m_sde"
    return "pre-asymptotic"


def usual_grid(process_name, name):
    """The grid family a method is usually run with: Karras et al.'s for
    k-diffusion's samplers, logSNR (equal steps in lambda) for the
    exponential integrators DPM-Solver, DPM-Solver++(2M) and UniPC, and
    otherwise equal steps in t (score_sde, DDIM, PNDM on DDPM timesteps),
    except on EDM, whose time is sigma and whose own grid is Karras's."""
    if name in LOGSNR:
        return "logsnr"
    if name in KDIFFUSION or process_name == "EDM":
        return "karras"
    return "uniform"


def label(name, options):
    return name + "".join(f", {k}={v}" for k, v in options.items())


# ---- errors ----------------------------------------------------------------------------------

def flow_map(process, x_start, t_start, t_end):
    """The closed-form probability-flow map of DATA from t_start to t_end."""
    ms, ss = (float(v) for v in process.marginal_coefficients(t_start))
    me, se = (float(v) for v in process.marginal_coefficients(t_end))
    sd_s, sd_e = np.sqrt(ms * ms * VAR + ss * ss), np.sqrt(me * me * VAR + se * se)
    return me * MU + sd_e * (np.asarray(x_start) - ms * MU) / sd_s


def make_grid(process, family, n, t_end=None):
    return getattr(ds.grids, family)(process, n, t_end=t_end)


def path_error(process, name, options, ts):
    """Largest |sampler - flow map| over starts across the marginal at ts[0], in data units."""
    ms, ss = (float(v) for v in process.marginal_coefficients(ts[0]))
    x = ms * MU + np.sqrt(ms * ms * VAR + ss * ss) * QUANTILES[:, None]
    out = ds.reverse(process, DATA, x, ts=ts, method=name, **options).x
    me = float(process.marginal_coefficients(ts[-1])[0])
    return float(np.max(np.abs(out - flow_map(process, x, ts[0], ts[-1])))) / me


def law_errors(process, name, options, ts):
    """(W2, |mean error|, Frobenius covariance error) of the exact output law."""
    law = ds.analysis.exact_output_law(process, DATA, name, ts=ts, start="marginal", **options)
    return (float(law.w2), float(np.linalg.norm(law.mean - law.target_mean)),
            float(np.linalg.norm(law.cov - law.target_cov)))


def state_scale(process, t_end):
    """The largest end state of the study in data units, (|m_e mu| + 3 sd_e) / m_e."""
    me, se = (float(v) for v in process.marginal_coefficients(t_end))
    return float(np.max(np.abs(me * MU) + 3 * np.sqrt(me * me * VAR + se * se))) / me


def above_rounding(steps, errors, scale):
    """Which errors are at least ten times the rounding estimate ROUNDING * N * scale."""
    return np.asarray(errors, float) > 10 * ROUNDING * np.asarray(steps, float) * scale


def fit(steps, errors, scale=0.0):
    """fit_order on the points above rounding (None with fewer than 3)."""
    steps, errors = np.asarray(steps, float), np.asarray(errors, float)
    keep = above_rounding(steps, errors, scale) & (errors > 0)
    if keep.sum() < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ds.analysis.OrderFitWarning)
        return ds.analysis.fit_order(steps[keep], errors[keep])


def slopes(steps, errors):
    steps, errors = np.asarray(steps, float), np.asarray(errors, float)
    return (-np.diff(np.log(errors)) / np.diff(np.log(steps))).tolist()


def verdict(order_fit, expected, tail_slope):
    """"agrees" when the 95% interval (if not wide) holds the declared order or the fit is within
    TOL of it; else from the slope of the last doubling above rounding on the long ladder."""
    if order_fit is None:
        return "rounding floor"
    inside = order_fit.ci is not None and not order_fit.wide and order_fit.ci[0] <= expected <= order_fit.ci[1]
    if inside or abs(order_fit.order - expected) <= TOL:
        return "agrees"
    if tail_slope is not None and abs(tail_slope - expected) <= TOL:
        return "approaches"
    last = order_fit.order if tail_slope is None else tail_slope
    return "above declared" if last > expected else "below declared"


# ---- the study -------------------------------------------------------------------------------

def measure(process_name, name, options, expected, source, grid=None, t_end=None):
    process = PROCESSES[process_name]
    record = ds.methods.get(name)
    family = grid or usual_grid(process_name, name)
    deterministic = not bool(ds.methods.table(process, name, make_grid(process, family, 4, t_end),
                                              **options).needs_noise.any())
    if expected is None:
        expected = record.order if deterministic else record.weak_order
    if deterministic:
        def errors_at(ladder):
            return [path_error(process, name, options, make_grid(process, family, n, t_end)) for n in ladder]
        main = {"error": errors_at(LADDER)}
    else:
        def errors_at(ladder):
            return [law_errors(process, name, options, make_grid(process, family, n, t_end))[0] for n in ladder]
        laws = [law_errors(process, name, options, make_grid(process, family, n, t_end)) for n in LADDER]
        main = {"error": [w[0] for w in laws], "mean_error": [w[1] for w in laws],
                "cov_error": [w[2] for w in laws]}
    grid4 = make_grid(process, family, 4, t_end)
    scale = state_scale(process, grid4[-1])
    order_fit = fit(LADDER, main["error"], scale)
    row = {"method": name, "options": options, "label": label(name, options), "process": process_name,
           "grid": family + ("" if t_end is None else f" (t_end={t_end:g})"),
           "deterministic": deterministic, "kind": record.kind, "expected": expected, "expected_source": source,
           "metric": "path error vs flow map" if deterministic else "W2 of the exact law",
           "steps": list(LADDER), **main, "slopes": slopes(LADDER, main["error"]),
           "order": None if order_fit is None else order_fit.order,
           "ci": None if order_fit is None or order_fit.ci is None else list(order_fit.ci),
           "wide": None if order_fit is None else bool(order_fit.wide)}
    if not deterministic:
        for key in ("mean_error", "cov_error"):
            f = fit(LADDER, main[key], scale)
            row[key.replace("error", "order")] = None if f is None else f.order
            row[key + "_max"] = max(main[key])
    tail_slope = None
    first = verdict(order_fit, expected, None)
    if first not in ("agrees", "rounding floor"):
        tail = main["error"][-1:] + errors_at(TAIL[1:])  # TAIL starts where LADDER ends
        row["tail_steps"], row["tail_error"] = list(TAIL), tail
        row["tail_slopes"] = slopes(TAIL, tail)
        ok = above_rounding(TAIL, tail, scale)
        kept = [(s, n) for s, n, a, b in zip(row["tail_slopes"], TAIL[1:], ok[:-1], ok[1:]) if a and b]
        tail_slope, row["tail_last_n"] = kept[-1] if kept else (None, None)
    row["tail_slope"] = tail_slope
    row["verdict"] = verdict(order_fit, expected, tail_slope)
    row["note"] = None if row["verdict"] == "agrees" else note_key(name, options)
    return row


def sampler_list(process_name):
    """(name, options, expected, source, grid, t_end) of every fixed-grid reverse method and variant."""
    process = PROCESSES[process_name]
    out = [(name, {}, None, "registry", None, None) for name in ds.methods.available(process)
           if not ds.methods.get(name).adaptive]
    for name, options, expected, source, grid, t_end, only in VARIANTS:
        if name in ds.methods.available(process) and (only is None or process_name in only):
            out.append((name, options, expected, source, grid, t_end))
    return out


def scipy_rk45(process, x, t0, t1, tol):
    """SciPy's solve_ivp(method="RK45") on the same probability-flow ODE, the batch flattened into one
    state (as score_sde does): (NFE, final state), or None without SciPy."""
    try:
        from scipy.integrate import solve_ivp
    except ImportError:
        return None
    score = DATA.score(process)

    def rhs(t, y):
        state = y.reshape(x.shape)
        g2 = float(process.diffusion(t)) ** 2
        return (float(process.drift_coefficient(t)) * state - 0.5 * g2 * score(state, t)).ravel()
    sol = solve_ivp(rhs, (t0, t1), x.ravel(), method="RK45", rtol=tol, atol=tol)
    return int(sol.nfev), sol.y[:, -1].reshape(x.shape)


def rk45_study():
    """rk45's path error and score evaluations at tolerances 1e-3 ... 1e-8 (rtol = atol)."""
    rows = []
    for process_name, process in PROCESSES.items():
        t0, t1 = float(process.default_t_start), float(process.default_t_end)
        ms, ss = (float(v) for v in process.marginal_coefficients(t0))
        x = ms * MU + np.sqrt(ms * ms * VAR + ss * ss) * QUANTILES[:, None]
        me = float(process.marginal_coefficients(t1)[0])
        nfe, err, sp_nfe, sp_err = [], [], [], []
        tols = [10.0 ** -k for k in range(3, 9)]
        exact = flow_map(process, x, t0, t1)
        for tol in tols:
            tr = ds.reverse(process, DATA, x, method="rk45", rtol=tol, atol=tol, t_end=t1)
            nfe.append(int(tr.nfe))
            err.append(float(np.max(np.abs(tr.x - exact))) / me)
            sp = scipy_rk45(process, x, t0, t1, tol)
            if sp is not None:
                sp_nfe.append(sp[0])
                sp_err.append(float(np.max(np.abs(sp[1] - exact))) / me)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ds.analysis.OrderFitWarning)
            # error ~ C tol^q: fit_order on 1/tol gives q
            f = ds.analysis.fit_order(1 / np.array(tols), err)
        rows.append({"process": process_name, "t_end": t1, "tolerance": tols, "nfe": nfe, "error": err,
                     "scipy_nfe": sp_nfe or None, "scipy_error": sp_err or None,
                     "tolerance_slope": f.order, "ci": None if f.ci is None else list(f.ci)})
    return rows


# ---- tables ----------------------------------------------------------------------------------

def fmt_order(row):
    if row["order"] is None:
        return "rounding"
    ci = "no CI" if row["ci"] is None else f"[{row['ci'][0]:.2f}, {row['ci'][1]:.2f}]"
    return f"{row['order']:.2f} {ci}" + (" (wide)" if row["wide"] else "")


def fmt_verdict(row):
    text = row["verdict"]
    if row["tail_slope"] is not None:
        text += f" (slope {row['tail_slope']:.2f} at N = {row['tail_last_n'] // 2}-{row['tail_last_n']})"
    return text


def note_refs(rows):
    keys = []
    for r in rows:
        if r["note"] and r["note"] not in keys:
            keys.append(r["note"])
    return {k: i + 1 for i, k in enumerate(keys)}


def long_table(rows):
    refs = note_refs(rows)
    lines = ["| method | process | grid | kind | declared order | measured order [95% CI] | steps | verdict | "
             "error at N = 32, 512 | law: mean, covariance | slopes of the doublings to N = 8192 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kind = "ODE (path)" if r["deterministic"] else "SDE (weak, W2)"
        note = f" [{refs[r['note']]}]" if r["note"] else ""
        law = "" if r["deterministic"] else f"{law_text(r, 'mean')}; {law_text(r, 'cov')}"
        lines.append(f"| `{r['label']}` | {r['process']} | {r['grid']} | {kind} | {r['expected']:g} | "
                     f"{fmt_order(r)} | {LADDER[0]}-{LADDER[-1]} | {fmt_verdict(r)}{note} | "
                     f"{r['error'][0]:.1e}, {r['error'][-1]:.1e} | {law} | {tail_text(r)} |")
    return lines


def tail_text(row):
    if "tail_slopes" not in row:
        return ""
    return ", ".join(f"{s:.2f}" for s in row["tail_slopes"])


def law_text(row, which):
    """The order of a law's mean or covariance error, or its size when it is rounding."""
    if row[f"{which}_order"] is None:
        return f"{which} exact (<= {row[f'{which}_error_max']:.0e})"
    return f"{which} {row[f'{which}_order']:.2f}"


def pivot_table(rows):
    """One line per method (and variant), one column per process."""
    refs = note_refs(rows)
    keys = []
    for r in rows:
        key = (r["label"], r["grid"] if r["grid"].startswith("uniform (") else None)
        if key not in keys:
            keys.append(key)
    procs = list(PROCESSES)
    lines = ["| method | kind | grid | declared | " + " | ".join(procs) + " |",
             "|---|---|---|---|" + "---|" * len(procs)]
    for lab, special in keys:
        mine = [r for r in rows if r["label"] == lab and
                (r["grid"] == special if special else not r["grid"].startswith("uniform ("))]
        grids = sorted({r["grid"] for r in mine}, key=lambda g: [r["grid"] for r in mine].index(g))
        cells = []
        for p in procs:
            r = next((r for r in mine if r["process"] == p), None)
            if r is None:
                cells.append("—")
                continue
            cell = "rounding" if r["order"] is None else f"{r['order']:.2f}"
            if r["ci"] is not None:
                cell += f" [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"
            if r["verdict"] != "agrees":
                cell += f" {SHORT[r['verdict']]}"
                if r["tail_slope"] is not None:
                    cell += f" → {r['tail_slope']:.2f} at {r['tail_last_n']}"
                cell += f" [{refs[r['note']]}]"
            cells.append(cell)
        kind = "ODE" if mine[0]["deterministic"] else "SDE"
        grid = " / ".join(f"{g} ({', '.join(r['process'] for r in mine if r['grid'] == g)})" if len(grids) > 1
                          else g for g in grids)
        lines.append(f"| `{lab}` | {kind} | {grid} | {mine[0]['expected']:g} | " + " | ".join(cells) + " |")
    return lines


SHORT = {"agrees": "", "approaches": "(approaches)", "above declared": "(above)", "below declared": "(below)",
         "rounding floor": "(rounding)"}


def notes_lines(rows):
    return [f"{i}. {NOTES[k]}." for k, i in note_refs(rows).items()]


def rk45_lines(rk):
    lines = ["| process | tolerance (rtol = atol) | NFE | path error | error / tolerance | SciPy RK45: NFE, error |",
             "|---|---|---|---|---|---|"]
    for r in rk:
        for k, (tol, n, e) in enumerate(zip(r["tolerance"], r["nfe"], r["error"])):
            sp = "" if r["scipy_nfe"] is None else f"{r['scipy_nfe'][k]}, {r['scipy_error'][k]:.2e}"
            lines.append(f"| {r['process']} | {tol:.0e} | {n} | {e:.2e} | {e / tol:.2f} | {sp} |")
    lines += ["", "Fitted error ~ tolerance^q (q = 1: the error follows the tolerance): " + "; ".join(
        f"{r['process']} q = {r['tolerance_slope']:.2f}" + (f" [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]" if r["ci"] else "")
        for r in rk) + "."]
    return lines


def rk45_pivot(rk):
    """Tolerances down, processes across: "NFE / error" cells."""
    lines = ["| tolerance | " + " | ".join(r["process"] for r in rk) + " |", "|---|" + "---|" * len(rk)]
    for k, tol in enumerate(rk[0]["tolerance"]):
        lines.append(f"| {tol:.0e} | " + " | ".join(f"{r['nfe'][k]} / {r['error'][k]:.1e}" for r in rk) + " |")
    return lines


def rk45_summary(rk):
    tight = max(e / t for r in rk for t, e in zip(r["tolerance"], r["error"]) if t <= 1e-5)
    loose = max(e / t for r in rk for t, e in zip(r["tolerance"], r["error"]) if t > 1e-5)
    text = (f"From a tolerance of 1e-5 down, its largest path error is within a factor {tight:.1f} of the "
            f"tolerance; at 1e-3 and 1e-4 it reaches {loose:.0f} times the tolerance (the controller bounds an "
            "estimate of each step's local error, not the global error).")
    if rk[0]["scipy_nfe"] is not None:
        same = all(r["scipy_nfe"] == r["nfe"] for r in rk)
        diff = max(abs(a - b) / t for r in rk for a, b, t in zip(r["error"], r["scipy_error"], r["tolerance"]))
        text += (f" SciPy's `solve_ivp(method=\"RK45\")` on the same ODE (the batch flattened into one state, "
                 f"as score_sde) takes {'the same' if same else 'different'} numbers of evaluations and its "
                 f"errors differ by at most {diff:.1e} tolerances.")
    return text


def how_lines(command, date, seconds):
    return [f"Measured on {date} with `{command}` (the orders: {seconds:.0f} s wall clock on {cpu_model()}, diffsde "
            f"{ds.__version__}, NumPy {np.__version__}).",
            "",
            f"Data {DATA_TEXT}, exact score, from each process's `default_t_start` to its `default_t_end`. "
            "Deterministic samplers: the largest path-wise error against the closed-form probability-flow "
            "map of Gaussian data (13 starts from -3 to +3 standard deviations of the marginal), in data "
            "units. Stochastic samplers: the W2 distance of the exact output law "
            "(`ds.analysis.exact_output_law`, started from the exact marginal: no Monte Carlo error) to the "
            "exact marginal at `t_end`. The order is fitted by `ds.analysis.fit_order` over "
            f"N = {', '.join(map(str, LADDER))} steps, with its 95% interval. Declared: the registry's "
            "`order` (deterministic) or `weak_order` (stochastic), also for `plms`'s variants; for "
            "`dpm_solver` with `order=1, 2` and `unipc` with `order=3` the paper's (k, and p + 1), for `em` "
            "with `alpha=0.0` the registry's strong order. Grids: Karras et al.'s (rho = 7) for k-diffusion's "
            "samplers, logSNR for `dpm_solver`, `unipc` and `dpmpp_2m`, equal steps in t for the others "
            "(Karras on EDM). "
            f"Verdict \"agrees\": the interval (unless wide: half-width above 0.25) holds the declared order or "
            f"the fit is within {TOL} of it; otherwise the errors are measured on to N = {TAIL[-1]} and "
            f"\"approaches\" means that the slope of the last doubling whose errors are clear of rounding "
            f"(ten times one ulp per step) is within {TOL} of the declared order, \"above\"/\"below\" that "
            "it is not."]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report_markdown(rows, rk, command, date, seconds):
    lines = [f"# Measured orders of the reverse samplers ({date})", ""] + how_lines(command, date, seconds)
    lines += ["", "## By process", "", "Measured order [95% CI]; a cell that does not agree says so, with the "
              f"slope of the last doubling up to N = {TAIL[-1]} and its note.", ""] + pivot_table(rows)
    lines += ["", "Notes:", ""] + notes_lines(rows)
    lines += ["", "## Every row", ""] + long_table(rows)
    lines += ["", "## rk45 (adaptive): error and NFE against the tolerance", "", rk45_summary(rk), ""] + rk45_lines(rk)
    return "\n".join(lines) + "\n"


def docs_markdown(rows, rk, command, date, seconds):
    lines = ["# Measured orders of the samplers", "",
             "Every fixed-grid reverse sampler of the registry, run with the exact score of Gaussian data "
             "and compared with the exact answer: its convergence order measured, against the order "
             "its record declares. These numbers are measured, not asserted; the test suite asserts the "
             "orders of the samplers on VP and EDM with the same kind of study "
             "(`tests/test_samplers.py`, `tests/test_reference_samplers.py`).", ""]
    lines += how_lines(command, date, seconds)
    lines += ["", "Measured order [95% CI] on each process; a cell that does not agree with the declared "
              f"order says so, with the slope of the last doubling up to N = {TAIL[-1]} after the arrow, and "
              "refers to a note.", ""] + pivot_table(rows)
    lines += ["", "Notes:", ""] + notes_lines(rows)
    lines += ["", "## rk45", "", "`rk45` chooses its own steps, so it has no order in N: below, its score "
              "evaluations and largest path error (NFE / error) at each tolerance (rtol = atol), on the same "
              "data and starts, to each process's `default_t_end`. " + rk45_summary(rk), ""] + rk45_pivot(rk)
    lines += ["", "## Error against score evaluations", "",
              "{doc}`methods` shows every sampler's error against its number of score evaluations, "
              "the measure that decides which sampler to use at a budget."]
    return "\n".join(lines) + "\n"


def print_table(rows):
    width = max(len(r["label"]) for r in rows)
    for r in rows:
        print(f"{r['label']:<{width}}  {r['process']:<13} {r['grid']:<18} {r['expected']:>4g}  "
              f"{fmt_order(r):<28} {fmt_verdict(r)}")


# ---- the figure ------------------------------------------------------------------------------

#: The top of the Monte Carlo panels: a few runs at 4-8 evaluations are far above, and a
#: log axis up to them would squeeze the curves near the floor; they are marked at the edge.
MC_TOP = 30.0


def off_scale(ax, result, top):
    """Clip the y axis at ``top``; mark each point above it by a triangle at the edge and list
    their values in a box."""
    ax.set_ylim(ax.get_ylim()[0], top)
    handles = dict(zip(ax.get_legend_handles_labels()[1], ax.get_legend_handles_labels()[0]))
    above = []
    for c in result.curves:
        line = handles[c.label]
        color = line[0].get_color() if isinstance(line, tuple) else line.get_color()
        for n, e in zip(c.nfe, c.error):
            if e > top:
                ax.plot([n], [top], marker="^", ms=13, color=color, mec="black", mew=1.5, clip_on=False, zorder=5)
                above.append(f"{c.method} at {n} NFE: {e:.2g}")
    if above:
        ax.text(0.97, 0.97, f"above {top:g} (black-edged triangles at the top):\n" + "\n".join(above),
                transform=ax.transAxes, ha="right", va="top", fontsize=12,
                bbox={"facecolor": "white", "edgecolor": "0.7"})


def figure(path, quick=False, seed=0):
    """Error against score evaluations on VP, every sampler on its usual grid:
    the exact W2 on DATA (top) and the Monte Carlo sliced W2 on the
    eight-Gaussians mixture (bottom)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vp = PROCESSES["VP"]
    samplers = [(name, {}) for name in ds.methods.available(vp) if not ds.methods.get(name).adaptive]
    samplers.append(("em", {"alpha": 0.0}))
    by_grid = {}
    for name, options in samplers:
        by_grid.setdefault(usual_grid("VP", name), []).append((name, options))
    order = {label(n, o): i for i, (n, o) in enumerate(samplers)}

    def merged(data, budgets, **kw):
        parts = [(g, ds.analysis.error_vs_nfe(vp, data, budgets, methods, grid=g, **kw))
                 for g, methods in by_grid.items()]
        curves = sorted((dataclasses.replace(c, label=f"{c.label} ({g})") for g, r in parts for c in r.curves),
                        key=lambda c: order[label(c.method, c.options)])
        first = parts[0][1]
        return dataclasses.replace(first, curves=tuple(curves), title="VP, each sampler on its usual grid")

    exact = merged(DATA, (4, 8, 16, 32, 64, 128, 256))
    mix_budgets = (4, 8, 16, 32) if quick else (4, 8, 16, 32, 64)
    paths = 4000 if quick else 20_000
    mix = merged(ds.datasets.eight_gaussians(), mix_budgets, paths=paths, repeats=4, rng=seed)
    groups = ((True, "deterministic samplers (ODE)"), (False, "stochastic samplers (SDE)"))
    with plt.rc_context({"font.size": 13, "axes.titlesize": 14, "axes.labelsize": 13, "xtick.labelsize": 12,
                         "ytick.labelsize": 12}):
        fig, axes = plt.subplots(2, 2, figsize=(16, 13.5), layout="constrained")
        for row, (result, what) in enumerate(((exact, f"Gaussian data {DATA_TEXT}: exact W2"),
                                               (mix, f"eight Gaussians: sliced W2, mean of 4 runs of {paths:,} "
                                                     "paths, bars 2 s.e."))):
            for col, (flag, group) in enumerate(groups):
                # one panel at a time, so that each panel's samplers take the ten distinct colours first
                part = dataclasses.replace(result, curves=tuple(c for c in result.curves if c.deterministic == flag))
                ax = axes[row][col]
                ds.plot.error_vs_nfe(part, axes=[ax], ms=8, lw=2.0)
                ax.set_title(f"{what}\n{group}")
                ax.set_ylabel(("exact W2" if result.exact else "sliced W2") + " to the marginal at t_end")
                ax.get_legend().remove()
                ax.grid(True, which="major", color="0.88", lw=0.8)
                if not result.exact:
                    off_scale(ax, part, MC_TOP)
        for col in range(2):
            handles, labels = axes[0][col].get_legend_handles_labels()
            for h, lab in zip(*axes[1][col].get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
            axes[1][col].legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2,
                                fontsize=13, frameon=False)
        fig.suptitle("Error against score evaluations (NFE) on VP, exact score, from the exact marginal at t = 1 "
                     "to t_end = 1e-3", fontsize=16)
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return exact, mix


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder of the .md and .json")
    ap.add_argument("--docs", action="store_true", help="also write docs/sampler-orders.md")
    ap.add_argument("--figure", action="store_true", help="also draw docs/samplers-error-vs-nfe.png")
    ap.add_argument("--quick", action="store_true", help="figure only: fewer budgets and paths")
    args = ap.parse_args(argv)
    command = "python tools/sampler_orders.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]) if a.startswith("--") and a != "--out")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    start = time.perf_counter()
    rows = []
    for process_name in PROCESSES:
        for name, options, expected, source, grid, t_end in sampler_list(process_name):
            rows.append(measure(process_name, name, options, expected, source, grid, t_end))
    # the same method together across processes
    first_seen = [(r["label"], r["grid"].startswith("uniform (")) for r in rows]
    rows.sort(key=lambda r: (first_seen.index((r["label"], r["grid"].startswith("uniform ("))),
                             list(PROCESSES).index(r["process"])))
    rk = rk45_study()
    seconds = time.perf_counter() - start
    print_table(rows)
    print()
    print("\n".join(rk45_lines(rk)))
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, f"sampler_orders-{date}")
    with open(base + ".md", "w", encoding="utf-8") as f:
        f.write(report_markdown(rows, rk, command, date, seconds))
    with open(base + ".json", "w", encoding="utf-8") as f:
        json.dump({"date": date, "command": command, "seconds": seconds, "cpu": cpu_model(),
                   "data": DATA_TEXT, "ladder": LADDER, "tail": TAIL, "tolerance": TOL, "rows": rows,
                   "rk45": rk, "notes": {k: NOTES[k] for k in note_refs(rows)}}, f, indent=1)
    print(f"\nwrote {base}.md and .json ({seconds:.0f} s)")
    if args.docs:
        path = os.path.join(ROOT, "docs", "sampler-orders.md")
        with open(path, "w", encoding="utf-8") as f:
            f.write(docs_markdown(rows, rk, command, date, seconds))
        print(f"wrote {os.path.normpath(path)}")
    if args.figure:
        path = os.path.join(ROOT, "docs", "samplers-error-vs-nfe.png")
        t = time.perf_counter()
        exact, mix = figure(path, quick=args.quick)
        for result in (exact, mix):
            for b in result.budgets:
                lab, err = result.best(b)
                within = result.floor_band is not None and err <= result.floor_band[1]
                print(f"{'exact' if result.exact else 'mixture'} NFE <= {b}: best {lab} ({err:.3g})"
                      + (" within the same-law band: indistinguishable from exact" if within else ""))
        if mix.floor_band is not None:
            print(f"mixture same-law floor {mix.floor:.3g}, band [{mix.floor_band[0]:.3g}, {mix.floor_band[1]:.3g}]")
        print(f"wrote {os.path.normpath(path)} ({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()

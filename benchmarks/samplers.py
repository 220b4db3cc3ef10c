#!/usr/bin/env python
"""The practitioners' samplers, timed against k-diffusion (and diffusers) on
the same work: ns per path-step with the exact eight-Gaussians score.

    python benchmarks/samplers.py --kdiffusion PATH [--paths 10000 100000] [--steps 50]
                                  [--repeat 3] [--json PATH] [--md PATH] [--quick]

Every case runs one sampler twice on identical work, as each library's user
runs it:

- diffsde: ``ds.reverse(EDM, score, x, ts=..., method=name)`` with the
  built-in exact score of the eight-Gaussians mixture (a C kernel; the step
  table runs in C);
- the peer: k-diffusion's ``sample_<name>`` from its ``k_diffusion/sampling.py``
  (loaded as tools/compare_samplers.py loads it; its defaults, so a Brownian
  tree for the SDE samplers, and for ``dpmpp_2m_sde``/``dpmpp_3m_sde`` also
  with plain ``torch.randn_like`` noise, the ``/randn`` cases; for ``dpm_solver`` its
  ``DPMSolver.dpm_solver_3_step`` once per interval, as diffsde's singlestep
  method), or diffusers' scheduler (``unipc``: UniPCMultistepScheduler,
  ``plms``: PNDMScheduler with ``skip_prk_steps``, i.e. diffsde's
  ``warmup="ab"``), on a torch float64 denoiser computing the same exact
  mixture posterior mean

  .. math:: D(x, \\sigma) = x + \\sigma^2 \\nabla\\log p_\\sigma(x)
            = x - \\sigma^2 \\sum_k \\gamma_k(x) \\frac{x - \\mu_k}{v_k + \\sigma^2},
            \\quad \\gamma_k \\propto w_k\\, \\mathcal N(x; \\mu_k, (v_k + \\sigma^2) I),

  checked equal to diffsde's score-based denoiser to rounding before timing.

Same noise levels (a Karras grid of ``--steps`` steps on EDM, sigma_max = 80,
with k-diffusion's final sigma = 0; the logSNR grid for dpm_solver;
diffusers' own sigmas for unipc and plms), same start states (paths x 2),
same number of denoiser evaluations (counted on both sides before timing).
Each library runs with one thread (``torch.set_num_threads(1)``,
``ds.set_num_threads(1)``) and then with every core. Repeats are interleaved
(A B, B A, ...), and the median is reported: CPU time with one thread (a
shared machine's waiting does not count), wall time with all cores.

Agreement: deterministic samplers must agree path-wise (max |diff| relative
to the largest output below 1e-9: rounding, amplified by the mixture's sharp
posterior at small sigma); stochastic ones run on each library's own noise
(torch's generator, k-diffusion's Brownian tree for dpmpp_sde) and must agree
in law: the means and raw second moments of the two outputs, and the means
of |x| and |x|^2, within 5 standard errors of their difference.
"""
import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tools"))

import diffsde as ds  # noqa: E402
from compare_samplers import load_kdiffusion  # noqa: E402

#: k-diffusion's samplers that diffsde implements under the same name.
K_SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral",
              "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde")
#: k-diffusion's SDE samplers with one increment per step, also timed with
#: ``noise_sampler=default_noise_sampler(x)`` (torch.randn_like, the same law)
#: instead of their default Brownian tree. (dpmpp_sde needs the tree: its two
#: increments per step are correlated.)
PLAIN_NOISE = ("dpmpp_2m_sde", "dpmpp_3m_sde")
#: Everything the benchmark times; dpm_solver runs a k-diffusion class, unipc and plms diffusers.
CASES = K_SAMPLERS + tuple(f"{n}/randn" for n in PLAIN_NOISE) + ("dpm_solver", "unipc", "plms")


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown"


def torch_mixture_denoiser(torch, mixture):
    """The exact denoiser of an isotropic Gaussian mixture, in torch float64.

    ``D(x, sigma)`` for x of shape (B, d) and sigma of shape (B,) (k-diffusion
    passes one sigma per row), by the formula of the module docstring with the
    responsibilities from a log-sum-exp softmax.
    """
    if mixture.cov_kind != "isotropic":
        raise ValueError("torch_mixture_denoiser takes isotropic mixtures")
    mu = torch.tensor(mixture.means, dtype=torch.float64)          # (K, d)
    var = torch.tensor(mixture.covs, dtype=torch.float64)          # (K,)
    logw = torch.log(torch.tensor(mixture.weights, dtype=torch.float64))
    d = mu.shape[1]

    def denoise(x, sigma):
        s2 = (sigma * sigma).reshape(-1, 1)                         # (B, 1)
        v = var + s2                                                # (B, K)
        diff = x[:, None, :] - mu                                   # (B, K, d)
        d2 = (diff * diff).sum(-1)                                  # (B, K)
        r = torch.softmax(logw - 0.5 * d * torch.log(v) - d2 / (2 * v), dim=-1)
        return x - s2 * ((r / v)[:, :, None] * diff).sum(1)
    return denoise


def check_denoiser(torch, denoise, score, rng):
    """max |torch D - (x + sigma^2 score)| / max |x| over sigmas 0.002 .. 80
    (relative to x: at large sigma D is a small difference of x and
    sigma^2 score, so a relative error of D itself reflects that cancellation)."""
    worst = 0.0
    for sigma in (0.002, 0.03, 0.3, 1.0, 3.0, 80.0):
        x = rng.standard_normal((4096, 2)) * math.hypot(2.0, sigma)
        a = denoise(torch.from_numpy(x), torch.full((x.shape[0],), sigma, dtype=torch.float64)).numpy()
        b = x + sigma * sigma * score(x, sigma)
        worst = max(worst, float(np.abs(a - b).max() / np.abs(x).max()))
    return worst


class Clock:
    """CPU time of the process with one thread, wall time with more."""

    def __init__(self, threads):
        self.now = time.process_time if threads == 1 else time.perf_counter


def counted(fn, counter):
    def wrapped(*args, **kwargs):
        counter[0] += 1
        return fn(*args, **kwargs)
    return wrapped


def make_case(name, kd, torch, diffusers, score_of, denoise, steps):
    """(run_diffsde(x0), run_peer(x0), start_scale, peer label, deterministic).

    Both take the same unit-normal start array u (paths x 2, float64) and
    return their final states in the same variable (x~ = x/m = x on EDM)."""
    edm = ds.EDM()
    score = score_of(edm)
    name, _, variant = name.partition("/")
    deterministic = ds.methods.get(name).deterministic
    if variant not in ("", "randn") or (variant and name not in PLAIN_NOISE):
        raise ValueError(f"no benchmark case {name}/{variant}")
    if name in K_SAMPLERS:
        ts = ds.grids.karras(edm, steps)
        ts[-1] = 0.0                       # k-diffusion's final sigma = 0
        sig = torch.tensor(ts, dtype=torch.float64)
        fn = getattr(kd, f"sample_{name}")

        def run_ds(u, rng=1):
            return ds.reverse(edm, score, ts[0] * u, ts=ts, method=name, rng=rng).x

        def run_peer(u, model=denoise):
            x = torch.from_numpy(ts[0] * u)
            kw = {"noise_sampler": kd.default_noise_sampler(x)} if variant == "randn" else {}
            return fn(model, x, sig, disable=True, **kw).numpy()
        label = f"k-diffusion sample_{name}" + (" (noise_sampler=randn)" if variant == "randn" else "")
        return run_ds, run_peer, label, deterministic
    if name == "dpm_solver":
        ts = ds.grids.logsnr(edm, steps)

        def run_ds(u, rng=1):
            return ds.reverse(edm, score, ts[0] * u, ts=ts, method="dpm_solver", rng=rng).x

        def run_peer(u, model=denoise):
            solver = kd.DPMSolver(model)
            t = -torch.log(torch.tensor(ts, dtype=torch.float64))
            x = torch.from_numpy(ts[0] * u)
            for i in range(steps):
                x = solver.dpm_solver_3_step(x, t[i], t[i + 1])[0]
            return x.numpy()
        return run_ds, run_peer, "k-diffusion DPMSolver.dpm_solver_3_step", True
    if diffusers is None:
        return None
    if name == "unipc":
        # data prediction, bh2, order 2, diffusers' defaults; its VP variable x = alpha x~
        def scheduler():
            sch = diffusers.UniPCMultistepScheduler(prediction_type="sample")
            sch.set_timesteps(steps)
            sch.sigmas = sch.sigmas.double()
            return sch
        sig = scheduler().sigmas.numpy()
        alpha = 1 / np.sqrt(sig ** 2 + 1)
        proc = ds.EDM(sigma_max=float(sig[0]))

        def run_ds(u, rng=1):
            return ds.reverse(proc, score_of(proc), sig[0] * u, ts=sig, method="unipc", rng=rng).x

        def run_peer(u, model=denoise):
            sch = scheduler()
            x = torch.from_numpy(alpha[0] * sig[0] * u)
            for i, t in enumerate(sch.timesteps):
                s_in = torch.full((x.shape[0],), float(sig[i]), dtype=torch.float64)
                x = sch.step(model(x / float(alpha[i]), s_in), t, x).prev_sample
            return x.numpy() / alpha[-1]
        return run_ds, run_peer, "diffusers UniPCMultistepScheduler", True
    if name == "plms":
        # PNDM with skip_prk_steps (diffsde's warmup="ab"), eps prediction on its chain
        def scheduler():
            sch = diffusers.PNDMScheduler(skip_prk_steps=True, set_alpha_to_one=True)
            sch.set_timesteps(steps)
            sch.alphas_cumprod = sch.alphas_cumprod.double()
            sch.final_alpha_cumprod = sch.final_alpha_cumprod.double()
            return sch
        sch0 = scheduler()
        ab = sch0.alphas_cumprod.numpy()
        main = np.sort(sch0._timesteps)[::-1]
        sig = np.r_[np.sqrt((1 - ab[main]) / ab[main]), 0.0]
        proc = ds.EDM(sigma_max=float(sig[0]))

        def run_ds(u, rng=1):
            return ds.reverse(proc, score_of(proc), sig[0] * u, ts=sig, method="plms", warmup="ab", rng=rng).x

        def run_peer(u, model=denoise):
            sch = scheduler()
            x = torch.from_numpy(math.sqrt(ab[main[0]]) * sig[0] * u)
            for t in sch.timesteps:
                a = math.sqrt(float(ab[int(t)]))
                s = math.sqrt(1 - float(ab[int(t)])) / a
                xt = x / a
                eps = (xt - model(xt, torch.full((x.shape[0],), s, dtype=torch.float64))) / s
                x = sch.step(eps, t, x).prev_sample
            return x.numpy()
        return run_ds, run_peer, "diffusers PNDMScheduler (skip_prk_steps)", True
    raise ValueError(name)


MIXTURE = ds.datasets.eight_gaussians()


def mixture_score(process):
    """The built-in exact score of the eight-Gaussians mixture on ``process``."""
    return MIXTURE.score(process)


def peer_evaluations(run_peer, denoise):
    """The peer's denoiser evaluations in one run (4 paths)."""
    calls = [0]
    run_peer(np.random.default_rng(0).standard_normal((4, 2)), model=counted(denoise, calls))
    return calls[0]


def diffsde_evaluations(name, kd, torch, diffusers, denoise, steps):
    """diffsde's score evaluations in one run: the same case with the score
    called from Python, on 4 paths (one chunk, so one call per evaluation)."""
    calls = [0]

    def score_of(process):
        return counted(MIXTURE.score(process), calls)
    run_ds = make_case(name, kd, torch, diffusers, score_of, denoise, steps)[0]
    run_ds(np.random.default_rng(0).standard_normal((4, 2)))
    return calls[0]


def moments(x):
    """Per path: x1, x2, x1^2, x1 x2, x2^2, and the radius |x| and |x|^2 (the
    mixture's modes lie on a circle: the radial ones have a small variance,
    so they see the spread of each mode, e.g. a wrong noise scale)."""
    r2 = x[:, 0] ** 2 + x[:, 1] ** 2
    return np.stack([x[:, 0], x[:, 1], x[:, 0] ** 2, x[:, 0] * x[:, 1], x[:, 1] ** 2, np.sqrt(r2), r2], axis=1)


def law_z(a, b):
    """Largest |difference of the sample moments| / its standard error."""
    fa, fb = moments(a), moments(b)
    se = np.sqrt(fa.var(axis=0, ddof=1) / len(a) + fb.var(axis=0, ddof=1) / len(b))
    return float(np.max(np.abs(fa.mean(0) - fb.mean(0)) / se))


def run(args):
    kd, torch = load_kdiffusion(args.kdiffusion)
    if kd is None:
        sys.exit(f"k-diffusion: {torch}")
    try:
        import diffusers
    except ImportError:
        diffusers = None
    import torchsde
    denoise = torch_mixture_denoiser(torch, MIXTURE)
    err = check_denoiser(torch, denoise, mixture_score(ds.EDM()), np.random.default_rng(3))
    print(f"torch denoiser vs diffsde's x + sigma^2 score: max difference / max |x| {err:.2e}")
    assert err < 1e-13, err
    report = {"date": datetime.date.today().isoformat(), "cpu": cpu_model(), "cores": os.cpu_count(),
              "steps": args.steps, "paths": args.paths, "repeat": args.repeat,
              "versions": {"diffsde": ds.__version__ if hasattr(ds, "__version__") else "worktree",
                           "torch": torch.__version__, "torchsde": torchsde.__version__,
                           "diffusers": getattr(diffusers, "__version__", None), "numpy": np.__version__,
                           "k-diffusion": args.kdiffusion_commit},
              "load_average_at_start": os.getloadavg()[0], "denoiser_max_rel_diff": err, "cases": []}
    names = [n for n in CASES if n in args.only] if args.only else list(CASES)
    built = {}
    for name in names:
        case = make_case(name, kd, torch, diffusers, mixture_score, denoise, args.steps)
        if case is None:
            print(f"{name}: skipped (diffusers is not installed)")
            continue
        built[name] = case
    nfe = {}
    for name, (run_ds, run_peer, label, det) in built.items():
        nfe[name] = (diffsde_evaluations(name, kd, torch, diffusers, denoise, args.steps),
                     peer_evaluations(run_peer, denoise))
        if nfe[name][0] != nfe[name][1]:
            print(f"{name}: evaluations differ: diffsde {nfe[name][0]}, peer {nfe[name][1]}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        ds.set_num_threads(threads)
        clock = Clock(threads).now
        for paths in args.paths:
            u = np.random.default_rng(paths).standard_normal((paths, 2))
            for name, (run_ds, run_peer, label, det) in built.items():
                t_ds, t_peer = [], []
                out_ds = out_peer = None
                for r in range(args.repeat):
                    order = ("ds", "peer") if r % 2 == 0 else ("peer", "ds")
                    for who in order:
                        torch.manual_seed(100 + r)   # the peer's own noise (and Brownian tree seed)
                        tic = clock()
                        out = run_ds(u, rng=100 + r) if who == "ds" else run_peer(u)
                        elapsed = clock() - tic
                        if who == "ds":
                            t_ds.append(elapsed)
                            out_ds = out
                        else:
                            t_peer.append(elapsed)
                            out_peer = out
                work = paths * args.steps
                med_ds, med_peer = statistics.median(t_ds), statistics.median(t_peer)
                if det:
                    agree = float(np.abs(out_ds - out_peer).max() / np.abs(out_peer).max())
                    ok = agree < 1e-9
                    check = f"path-wise max rel diff {agree:.1e}"
                else:
                    agree = law_z(out_ds, out_peer)
                    ok = agree < 5.0
                    check = f"moments max |z| {agree:.2f}"
                row = {"method": name.split("/")[0], "case": name, "peer": label, "threads": threads, "paths": paths, "steps": args.steps,
                       "evaluations": nfe[name][0], "peer_evaluations": nfe[name][1],
                       "diffsde_s": t_ds, "peer_s": t_peer,
                       "diffsde_ns_per_path_step": 1e9 * med_ds / work,
                       "peer_ns_per_path_step": 1e9 * med_peer / work,
                       "diffsde_ns_per_path_eval": 1e9 * med_ds / (paths * nfe[name][0]),
                       "peer_ns_per_path_eval": 1e9 * med_peer / (paths * nfe[name][1]),
                       "speedup": med_peer / med_ds, "deterministic": det,
                       "agreement": agree, "agreement_ok": bool(ok)}
                report["cases"].append(row)
                print(f"{threads} thr {paths:>7} paths {name:20s} diffsde {row['diffsde_ns_per_path_step']:9.1f} "
                      f"peer {row['peer_ns_per_path_step']:10.1f} ns/path-step  x{row['speedup']:7.1f}  "
                      f"{check}{'' if ok else '  DISAGREE'}", flush=True)
    return report


def markdown(report):
    lines = [f"# Samplers: diffsde against k-diffusion / diffusers ({report['date']})", "",
             f"`python benchmarks/samplers.py` on {report['cpu']} ({report['cores']} cores); "
             f"{report['steps']} steps, 2-D states, exact eight-Gaussians score (diffsde: C kernel; peers: "
             f"the same exact denoiser in torch float64, max difference relative to |x| "
             f"{report['denoiser_max_rel_diff']:.1e}); median of {report['repeat']} interleaved runs "
             "(CPU time with 1 thread, wall time with all cores). Versions: "
             + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".", "",
             "ns per path-step (and per path and denoiser evaluation); ratio = peer time / diffsde time; "
             "check = path-wise max relative difference (deterministic) or the largest |z| of the "
             "means, raw second moments, |x| and |x|^2 (stochastic, each library's own noise). "
             "k-diffusion's SDE samplers use its default Brownian tree (torchsde) unless the case "
             "says /randn (its default_noise_sampler, torch.randn_like).", ""]
    load = report.get("load_average_at_start")
    if load is not None and load > report["cores"]:
        lines += [f"The machine was shared: load average {load:.1f} on {report['cores']} cores when the run "
                  "started. One-thread figures are CPU time, less affected (interleaved runs of the two libraries share the same conditions); wall times with all cores "
                  "include waiting for a core and vary by several times between neighbouring cases.", ""]
    for threads in sorted({c["threads"] for c in report["cases"]}):
        for paths in sorted({c["paths"] for c in report["cases"]}):
            rows = [c for c in report["cases"] if c["threads"] == threads and c["paths"] == paths]
            if not rows:
                continue
            lines += [f"## {threads} thread(s), {paths:,} paths", "",
                      "| case | peer | evals | diffsde ns/path-step | peer ns/path-step | diffsde ns/eval | "
                      "peer ns/eval | ratio | check |", "|---|---|---|---|---|---|---|---|---|"]
            for c in rows:
                check = (f"{c['agreement']:.1e}" if c["deterministic"] else f"z {c['agreement']:.2f}") + \
                    ("" if c["agreement_ok"] else " FAIL")
                lines.append(f"| {c['case']} | {c['peer']} | {c['evaluations']} | "
                             f"{c['diffsde_ns_per_path_step']:.1f} | {c['peer_ns_per_path_step']:.1f} | "
                             f"{c['diffsde_ns_per_path_eval']:.1f} | {c['peer_ns_per_path_eval']:.1f} | "
                             f"{c['speedup']:.1f}x | {check} |")
            lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kdiffusion", default=os.environ.get("KDIFFUSION_PATH"),
                    help="folder holding k_diffusion/sampling.py (a checkout of crowsonkb/k-diffusion)")
    ap.add_argument("--paths", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    ap.add_argument("--only", nargs="+", choices=CASES, help="time these samplers only")
    ap.add_argument("--quick", action="store_true", help="1,000 paths, 10 steps, 1 repeat (a smoke run)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--md", type=Path)
    args = ap.parse_args(argv)
    if args.quick:
        args.paths, args.steps, args.repeat = [1000], 10, 1
    args.kdiffusion_commit = None
    if args.kdiffusion:
        try:
            args.kdiffusion_commit = subprocess.run(["git", "-C", args.kdiffusion, "rev-parse", "--short", "HEAD"],
                                                    capture_output=True, text=True).stdout.strip() or None
        except OSError:
            pass
    report = run(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.md:
        args.md.write_text(markdown(report) + "\n")
    bad = [c["method"] for c in report["cases"] if not c["agreement_ok"]]
    if bad:
        sys.exit(f"outputs disagree: {sorted(set(bad))}")


if __name__ == "__main__":
    main()

"""Compare diffsde's samplers (ds.reverse, the C step tables) and their
NumPy twins (tests/reference_samplers.py) with k-diffusion's and diffusers'
own code on identical denoisers and normals.

    python tools/compare_samplers.py [--kdiffusion PATH] [--steps N] [--data gaussian|mixture]

Every library runs on the exact denoiser of Gaussian data N(1.5, 0.25) or,
with ``--data mixture``, of the eight-Gaussians mixture (so the comparison
measures the samplers, not a network) in float64 where the
library allows it, from the same start. diffsde runs ``ds.reverse`` on EDM
(sigma = t, so the libraries' sigmas are its time grid ``ts``) with the
package's built-in exact score, the C kernel, and ``rng=SEED``; every normal a
library (or a twin) draws is replaced by diffsde's own normal of the same step
and purpose, computed from its counter-based streams (:class:`EngineNormals`:
the step's normal on ``STREAM_STEP``, the churn noise on ``STREAM_EXTRA + 0``,
the second normal of ``dpmpp_sde`` on ``STREAM_EXTRA + 1``, each on the
step's interval n - 1 - i); ``dpmpp_sde``'s Brownian tree is replaced by a
``noise_sampler`` returning the two increments of one Brownian motion built
from those two normals, as diffsde's table does. Prints, per sampler, the
largest absolute difference of the final states between the library and the
twin, and between the library and diffsde.

k-diffusion is not on PyPI in a usable form: give the folder that holds its
``k_diffusion/sampling.py`` (a checkout of crowsonkb/k-diffusion) with
``--kdiffusion`` or the environment variable KDIFFUSION_PATH; only that file
is loaded (its package ``__init__`` imports torchvision and more), and it
needs torch, scipy, torchsde, torchdiffeq and tqdm. diffusers is imported
normally. A library that is missing is reported and skipped.
"""
import argparse
import importlib.util
import inspect
import math
import os
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, ".."))

import reference_samplers as rs  # noqa: E402

MU, V = 1.5, 0.25
D_NP = rs.gaussian_denoiser(MU, V)
#: The seed of diffsde's runs, whose streams every library's normals come from.
SEED = 11


def gaussian_score(process):
    """diffsde's built-in exact score of N(MU, V) per coordinate (2-D)."""
    import diffsde as ds
    return ds.GaussianMixture([1.0], [[MU, MU]], [V]).score(process)


def mixture_score(process):
    import diffsde as ds
    return ds.datasets.eight_gaussians().score(process)


#: diffsde's score of the data (set by --data).
SCORE_OF = gaussian_score


def mixture_denoiser():
    """The exact denoiser of the eight-Gaussians mixture, D = x + sigma^2 score,
    from the package's exact score on EDM (m = 1, s = t = sigma)."""
    import diffsde as ds
    edm = ds.EDM(sigma_max=1000.0)
    score = ds.datasets.eight_gaussians().score(edm)
    return lambda x, sigma: x + sigma * sigma * score(x, sigma)


def load_kdiffusion(path):
    """k-diffusion's sampling.py as a module, with a minimal ``utils`` beside it."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    if path is None:
        return None, "no k-diffusion checkout (--kdiffusion PATH or KDIFFUSION_PATH)"
    file = os.path.join(path, "k_diffusion", "sampling.py")
    if not os.path.exists(file):
        return None, f"{file} does not exist"
    pkg = types.ModuleType("_kdiff")
    pkg.__path__ = []
    utils = types.ModuleType("_kdiff.utils")

    def append_dims(x, target_dims):
        # the only helper sampling.py takes from utils: trailing unit axes
        return x[(...,) + (None,) * (target_dims - x.ndim)]
    utils.append_dims = append_dims
    sys.modules["_kdiff"], sys.modules["_kdiff.utils"] = pkg, utils
    pkg.utils = utils
    spec = importlib.util.spec_from_file_location("_kdiff.sampling", file)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except ImportError as exc:
        return None, f"k-diffusion's sampling.py needs {exc.name}"
    return mod, torch


class EngineNormals:
    """The normals diffsde draws with ``rng=seed`` in a run of ``n`` steps:
    ``(step, which)`` -> normal j (C order of the state) of
    ``(key, stream, interval)``, interval n - 1 - step, stream STREAM_STEP for
    the step's normal, STREAM_EXTRA + 0 for churn, STREAM_EXTRA + 1 for the
    second normal of dpmpp_sde (diffsde/methods/_ksamplers.py)."""

    def __init__(self, shape, seed, n):
        from diffsde._rng import fill_normal, key_from_rng
        from diffsde._steptable import STREAM_EXTRA, STREAM_STEP
        self.streams = {rs.STEP: STREAM_STEP, rs.CHURN: STREAM_EXTRA + 0, rs.BRIDGE: STREAM_EXTRA + 1}
        self.shape, self.n, self.key, self.fill = shape, n, key_from_rng(seed), fill_normal

    def __call__(self, step, which):
        if not 0 <= step < self.n:
            raise ValueError(f"step {step} outside the {self.n} steps")
        return self.fill(np.empty(self.shape), self.key, self.streams[which], self.n - 1 - step)


def run_diffsde(process, x, ts, method, **opts):
    """diffsde's sampler itself: ds.reverse with the built-in exact score."""
    import diffsde as ds
    return ds.reverse(process, SCORE_OF(process), x, ts=ts, method=method, rng=SEED, **opts).x


def wide_edm(sigma_max=1000.0):
    """EDM (sigma = t, m = 1) with room above the grids' first sigma for a churned sigma_hat."""
    import diffsde as ds
    return ds.EDM(sigma_max=sigma_max)


def compare_kdiffusion(kd, torch, n, x0):
    sigmas = np.r_[rs.sigma_space(_edm(), _karras(n))[0], 0.0]
    st = torch.tensor(sigmas, dtype=torch.float64)

    def model(x, sigma):
        # every row shares one sigma in these samplers
        return torch.from_numpy(D_NP(x.numpy(), float(sigma[0])))

    results = {}
    edm = wide_edm()
    for name, opts in [("euler", {}), ("euler", {"s_churn": 10.0}), ("euler_ancestral", {}), ("heun", {}),
                       ("heun", {"s_churn": 10.0}), ("dpm_2", {}), ("dpm_2", {"s_churn": 10.0}),
                       ("dpm_2_ancestral", {}), ("lms", {}), ("dpmpp_2s_ancestral", {}), ("dpmpp_sde", {}),
                       ("dpmpp_2m", {}), ("dpmpp_2m_sde", {}), ("dpmpp_2m_sde", {"solver_type": "heun"}),
                       ("dpmpp_3m_sde", {})]:
        z = EngineNormals(x0.shape, SEED, len(sigmas) - 1)
        twin = rs.SAMPLERS[name][0](D_NP, x0, sigmas, z, **opts)
        ours = run_diffsde(edm, x0, sigmas, name, **opts)
        kw = dict(opts, disable=True)
        fn = getattr(kd, f"sample_{name}")
        churn_step = [0]

        class TorchWithOurNormals:
            # k-diffusion draws churn noise with torch.randn_like, once per step
            def __getattr__(self, attr):
                return getattr(torch, attr)

            def randn_like(self, x):
                i = churn_step[0]
                churn_step[0] += 1
                return torch.from_numpy(z(i, rs.CHURN).copy())

        def sampler(sigma, sigma_next):
            # dpmpp_sde passes exp(-(-log sigma)), a rounding away from the grid's sigma
            i = int(np.argmin(np.abs(sigmas - float(sigma))))
            if abs(float(sigma_next) - sigmas[i + 1]) <= 1e-12 * sigmas[i]:
                if name == "dpmpp_sde":
                    s_mid = math.exp(-(-math.log(sigmas[i]) + 0.5 * (math.log(sigmas[i]) - math.log(sigmas[i + 1]))))
                    return torch.from_numpy(rs.brownian_pair(z(i, rs.STEP), z(i, rs.BRIDGE), sigmas[i], s_mid,
                                                             sigmas[i + 1])[1].copy())
                return torch.from_numpy(z(i, rs.STEP).copy())
            return torch.from_numpy(z(i, rs.STEP).copy())  # dpmpp_sde's first increment, to sigma_s

        if "noise_sampler" in inspect.signature(fn).parameters:
            kw["noise_sampler"] = sampler
        saved = kd.torch
        kd.torch = TorchWithOurNormals()
        try:
            out = fn(model, torch.from_numpy(x0.copy()), st, **kw).numpy()
        finally:
            kd.torch = saved
        results[f"{name} {opts or ''}".strip()] = _diffs(out, twin, ours)
    # singlestep DPM-Solver, one full order-k step per interval of a logSNR grid
    sig = rs.sigma_space(_edm(), _logsnr(n))[0]
    solver = kd.DPMSolver(model)
    for order in (1, 2, 3):
        x = torch.from_numpy(x0.copy())
        for i in range(n):
            t, t1 = (-torch.log(torch.tensor(v, dtype=torch.float64)) for v in (sig[i], sig[i + 1]))
            x = getattr(solver, f"dpm_solver_{order}_step")(x, t, t1)[0]
        results[f"dpm_solver order={order}"] = _diffs(x.numpy(), rs.dpm_solver(D_NP, x0, sig, order=order),
                                                      run_diffsde(edm, x0, sig, "dpm_solver", order=order))
    return results


def _diffs(library, twin, ours):
    """(max |library - twin|, max |library - diffsde|); None where not run."""
    return tuple(None if other is None else float(np.max(np.abs(library - other))) for other in (twin, ours))


def _edm():
    import diffsde as ds
    return ds.EDM()


def _karras(n):
    import diffsde as ds
    return ds.grids.karras(ds.EDM(), n)


def _logsnr(n):
    import diffsde as ds
    return ds.grids.logsnr(ds.EDM(), n)


def diffusers_chain(alphas_cumprod):
    """A diffsde process whose marginals are a diffusers training chain at the
    chain indices t = tau + 1 (abar = 1 at t = 0), log abar linear in t between
    them: on it a method's ``ts`` are diffusers' timesteps plus one, and the
    middle time of a step between two even timesteps is a timestep too."""
    import diffsde as ds
    log_ab = np.r_[0.0, np.log(np.asarray(alphas_cumprod, dtype=np.float64))]
    index = np.arange(log_ab.size, dtype=np.float64)
    return ds.AffineSDE(lambda t: np.exp(0.5 * np.interp(t, index, log_ab)),
                        lambda t: np.sqrt(-np.expm1(np.interp(t, index, log_ab))),
                        T=float(index[-1]), name="diffusers chain")


def compare_diffusers(n, x0):
    """diffusers' schedulers; ``x0`` holds unit normals, scaled to each scheduler's sigma_max."""
    try:
        import torch
        import diffusers
        from diffusers.schedulers import scheduling_euler_ancestral_discrete as ea_mod
    except ImportError as exc:
        return None, f"{exc.name} is not installed"
    results = {}
    edm = wide_edm()

    def vp_sigma(ab):
        return np.sqrt((1 - ab) / ab)

    # UniPC and DPM-Solver++(2M): data prediction in x = alpha x~, sigmas with a final 0
    for label, cls, kw, method, topts in [
        ("unipc (bh2, order 2)", diffusers.UniPCMultistepScheduler, {}, "unipc", {}),
        # bh1 ends in NaN in diffusers on a last step to sigma = 0 (B(h) = -h = -inf times a
        # zero correction): compare it with diffusers' final_sigmas_type="sigma_min"
        ("unipc (bh1, order 2, final sigma_min)", diffusers.UniPCMultistepScheduler,
         {"solver_type": "bh1", "final_sigmas_type": "sigma_min"}, "unipc", {"variant": "bh1"}),
        ("unipc (bh2, order 3)", diffusers.UniPCMultistepScheduler, {"solver_order": 3}, "unipc", {"order": 3}),
        ("dpmpp_2m (DPMSolverMultistep, float32 inside)", diffusers.DPMSolverMultistepScheduler, {"lower_order_final": False},
         "dpmpp_2m", {}),
    ]:
        sch = cls(prediction_type="sample", **kw)
        sch.set_timesteps(n)
        sch.sigmas = sch.sigmas.double()
        sig = sch.sigmas.numpy()
        alpha = 1 / np.sqrt(sig ** 2 + 1)
        xs = MU + sig[0] * x0
        x = torch.from_numpy(alpha[0] * xs)
        for i, t in enumerate(sch.timesteps):
            d = torch.from_numpy(D_NP(x.numpy() / alpha[i], sig[i]))
            x = sch.step(d, t, x).prev_sample
        results[label] = _diffs(x.numpy() / alpha[-1], rs.SAMPLERS[method][0](D_NP, xs, sig, **topts),
                                run_diffsde(edm, xs, sig, method, **topts))

    # PNDM: eps prediction on the chain; PRK warm-up or diffusers' skip_prk_steps
    for label, skip in (("plms (prk)", False), ("plms (ab)", True)):
        # set_alpha_to_one: the last step ends at the data (sigma = 0); with the default,
        # diffusers' last step goes from timestep 0 to abar_0 again, a step of length 0
        sch = diffusers.PNDMScheduler(skip_prk_steps=skip, set_alpha_to_one=True)
        sch.set_timesteps(n)
        ab = sch.alphas_cumprod.double().numpy()
        sch.alphas_cumprod = sch.alphas_cumprod.double()
        sch.final_alpha_cumprod = sch.final_alpha_cumprod.double()
        ratio = sch.config.num_train_timesteps // n
        main = np.sort(sch._timesteps)[::-1]
        sig = np.r_[vp_sigma(ab[main]), vp_sigma(float(sch.final_alpha_cumprod))]
        mids = vp_sigma(ab[main - ratio // 2])
        xs = MU + sig[0] * x0
        x = torch.from_numpy(np.sqrt(ab[main[0]]) * xs)
        for t in sch.timesteps:
            s = float(vp_sigma(ab[int(t)]))
            xt = x.numpy() / math.sqrt(ab[int(t)])
            eps = (xt - D_NP(xt, s)) / s
            x = sch.step(torch.from_numpy(eps), t, x).prev_sample
        final = x.numpy() / math.sqrt(float(sch.final_alpha_cumprod))
        # diffsde on diffusers' own chain (diffusers_chain): its PRK warm-up evaluates at the
        # middle time of a step, here the chain index of diffusers' timestep t - ratio/2
        warmup = "ab" if skip else "prk"
        chain = diffusers_chain(ab)
        ts = np.r_[main + 1.0, 0.0]
        m0 = float(chain.marginal_coefficients(ts[0])[0])
        results[label] = _diffs(final, rs.plms(D_NP, xs, sig, sigmas_mid=mids, warmup=warmup),
                                run_diffsde(chain, m0 * xs, ts, "plms", warmup=warmup))

    # Euler ancestral: k-diffusion's variable x~ (diffusers upcasts it to float32 inside step)
    sch = diffusers.EulerAncestralDiscreteScheduler()
    sch.set_timesteps(n)
    sig = sch.sigmas.double().numpy()
    z = EngineNormals(x0.shape, SEED, len(sig) - 1)
    step = [0]

    def our_normal(shape, dtype=None, device=None, generator=None):
        i = step[0]
        step[0] += 1
        return torch.from_numpy(z(i, rs.STEP).copy()).to(dtype)
    saved = ea_mod.randn_tensor
    ea_mod.randn_tensor = our_normal
    try:
        xs = MU + sig[0] * x0
        x = torch.from_numpy(xs.copy())
        for i, t in enumerate(sch.timesteps):
            eps = (x.numpy() - D_NP(x.numpy(), sig[i])) / sig[i]
            sch.scale_model_input(x, t)  # a network's input; here only to satisfy the scheduler's check
            x = sch.step(torch.from_numpy(eps), t, x).prev_sample
    finally:
        ea_mod.randn_tensor = saved
    results["euler_ancestral (diffusers, float32 inside)"] = _diffs(
        x.numpy(), rs.euler_ancestral(D_NP, xs, sig, z), run_diffsde(edm, xs, sig, "euler_ancestral"))
    return results, None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kdiffusion", default=os.environ.get("KDIFFUSION_PATH"))
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--data", choices=("gaussian", "mixture"), default="gaussian",
                    help="the data whose exact denoiser drives every sampler: N(1.5, 0.25) per "
                         "coordinate, or the eight-Gaussians mixture (a nonlinear denoiser)")
    args = ap.parse_args(argv)
    global D_NP, SCORE_OF
    if args.data == "mixture":
        D_NP, SCORE_OF = mixture_denoiser(), mixture_score
    unit = np.random.default_rng(0).standard_normal((64, 2))
    kd, torch_or_reason = load_kdiffusion(args.kdiffusion)
    print(f"max |library - twin| and max |library - diffsde| of the final states, {args.steps} steps, "
          f"64 x 2 states, float64, {args.data} data")
    print(f"  {'sampler':46s} {'twin':>10s} {'diffsde':>10s}")
    if kd is None:
        print(f"k-diffusion: skipped ({torch_or_reason})")
    else:
        print("k-diffusion (k_diffusion/sampling.py):")
        for name, diffs in compare_kdiffusion(kd, torch_or_reason, args.steps, MU + 80.0 * unit).items():
            print(_row(name, diffs))
    res, reason = compare_diffusers(args.steps, unit)
    if res is None:
        print(f"diffusers: skipped ({reason})")
    else:
        print("diffusers:")
        for name, diffs in res.items():
            print(_row(name, diffs))


def _row(name, diffs):
    return f"  {name:46s} " + " ".join("         -" if d is None else f"{d:10.3e}" for d in diffs)


if __name__ == "__main__":
    main()

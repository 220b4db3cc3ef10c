"""Compare diffsde's samplers on DDPM chains with k-diffusion's, run through
its wrapper for discrete DDPM models, on identical eps models and normals.

    python tools/compare_chain_samplers.py [--kdiffusion PATH] [--steps M]

k-diffusion samples a discrete DDPM model through ``DiscreteEpsDDPMDenoiser``
(``k_diffusion/external.py``): the model predicts eps from (x~ c_in, tau),
c_in = 1/sqrt(1 + sigma^2), at the fractional timestep tau of sigma, linear
in log sigma between the model's noise levels (``DiscreteSchedule``,
quantize=False), and the denoiser is D = x~ - sigma eps. diffsde runs
``ds.reverse(chain, score, x, method=...)`` on the chain's own indices.
Here k-diffusion's wrapper is built on the same chain's alphas_cumprod and
its sigmas are the chain's (``get_sigmas()``: sigma_N, ..., sigma_1, 0), so
both take the same steps and evaluate the model at the same fractional
timesteps inside a step. Three eps models:

- ``exact``: the exact eps of N(1.5, 0.25) data at the noise level of tau,
  (x~ - D)/sigma with the Gaussian denoiser (independent of how tau is
  interpolated); diffsde with the built-in ``ds.LinearScore``;
- ``exact, adapter``: the same network given to diffsde through
  ``ds.network_score(eps, chain, prediction="eps", time=tau(t))``;
- ``t-dependent``: the exact eps at the marginal of ``chain.as_sde()`` at the
  chain time t = (tau + 1) T / N, which depends on tau itself, like a network
  trained on continuous time (so a wrong fractional timestep shows).

Every normal k-diffusion draws (churn through ``torch.randn_like``, the
ancestral and SDE noise through ``noise_sampler``, dpmpp_sde's two Brownian
increments) is replaced by diffsde's own normal of that step and stream.
Prints the largest |diffsde - k-diffusion| of the final states (float64).

Only ``k_diffusion/sampling.py`` and ``k_diffusion/external.py`` of a
checkout are loaded (the package ``__init__`` imports much more): pass the
folder holding ``k_diffusion/`` with ``--kdiffusion`` or KDIFFUSION_PATH.
They need torch, scipy, torchsde, torchdiffeq and tqdm.
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

import diffsde as ds
import reference_samplers as rs
from diffsde import _core, _rng
from diffsde._steptable import STREAM_EXTRA, STREAM_STEP

MU, V = 1.5, 0.25
SEED = 7
STREAM_OF = {rs.STEP: STREAM_STEP, rs.CHURN: STREAM_EXTRA + 0, rs.BRIDGE: STREAM_EXTRA + 1}


def load_kdiffusion(path):
    """(sampling, external) modules of a k-diffusion checkout, in a stand-in
    package whose ``utils`` has the one helper both use (``append_dims``)."""
    if path is None:
        raise SystemExit("no k-diffusion checkout: pass --kdiffusion PATH or set KDIFFUSION_PATH")
    pkg = types.ModuleType("_kd_chain")
    pkg.__path__ = []
    utils = types.ModuleType("_kd_chain.utils")

    def append_dims(x, target_dims):
        return x[(...,) + (None,) * (target_dims - x.ndim)]
    utils.append_dims = append_dims
    sys.modules["_kd_chain"], sys.modules["_kd_chain.utils"] = pkg, utils
    pkg.utils = utils
    mods = []
    for name in ("sampling", "external"):
        file = os.path.join(path, "k_diffusion", f"{name}.py")
        if not os.path.exists(file):
            raise SystemExit(f"{file} does not exist")
        spec = importlib.util.spec_from_file_location(f"_kd_chain.{name}", file)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        setattr(pkg, name, mod)
        spec.loader.exec_module(mod)
        mods.append(mod)
    return mods


class EngineNormals:
    """diffsde's normals: step i of an n-step run draws on interval n - 1 - i."""

    def __init__(self, n, shape):
        self.n, self.shape, self.key = n, shape, _rng.key_from_rng(SEED)

    def __call__(self, step, which):
        out = np.empty(self.shape)
        _core.fill_normal(out, self.key, STREAM_OF[which], self.n - 1 - step, 0, 1)
        return out


def eps_models(chain):
    """name -> eps(x_in, tau) as NumPy, x_in = m(sigma) x~ the network's input."""
    ch = rs.DiscreteChain(chain)
    sde = chain.as_sde()

    def exact(x, tau):
        sigma = ch.t_to_sigma(tau)
        m = ch.marginal(sigma)[0]
        xt = x / m
        return (xt - rs.gaussian_denoiser(MU, V)(xt, sigma)) / sigma

    def t_dependent(x, tau):
        mm, ss = (float(v) for v in sde.marginal_coefficients(ch.time(tau)))
        return -ss * (mm * MU - x) / (mm * mm * V + ss * ss)
    return {"exact": exact, "exact, adapter": exact, "t-dependent": t_dependent}


def diffsde_score(label, eps, chain):
    if label == "exact":
        return ds.LinearScore(MU, V)
    n, T = chain.N, chain.T
    return ds.network_score(lambda x, tau: eps(x, float(tau[0])), chain, prediction="eps",
                            time=lambda t: t * n / T - 1.0)


CASES = [("euler", {}), ("euler", {"s_churn": 2.0, "s_tmax": "top/2"}), ("euler_ancestral", {}), ("heun", {}),
         ("heun", {"s_churn": 2.0, "s_tmax": "top/2"}), ("dpm_2", {}), ("dpm_2", {"s_churn": 2.0, "s_tmax": "top/2"}),
         ("dpm_2_ancestral", {}), ("lms", {}), ("dpmpp_2s_ancestral", {}), ("dpmpp_2s_ancestral", {"eta": 0.5}),
         ("dpmpp_sde", {}), ("dpmpp_2m", {}), ("dpmpp_2m_sde", {}), ("dpmpp_2m_sde", {"solver_type": "heun"}),
         ("dpmpp_3m_sde", {}), ("dpm_solver", {"order": 1}), ("dpm_solver", {"order": 2}),
         ("dpm_solver", {"order": 3})]


def run_kdiffusion(sampling, external, torch, chain, eps, name, opts, x0, z):
    """k-diffusion's sampler on its discrete-DDPM wrapper of ``chain``; x0 in the chain's variables."""
    abar = torch.from_numpy(np.exp(np.asarray(chain.log_alpha_bar[1:], dtype=np.float64)))

    class Net(torch.nn.Module):
        def forward(self, x, tau):
            return torch.from_numpy(eps(x.numpy(), float(tau[0])))
    wrap = external.DiscreteEpsDDPMDenoiser(Net(), abar, quantize=False)
    sigmas = wrap.get_sigmas().double()
    sig = sigmas.numpy()
    x = torch.from_numpy(x0 * math.sqrt(1.0 + sig[0] ** 2))  # x~ = x/m, m = 1/sqrt(1 + sigma^2)
    if name == "dpm_solver":
        solver = sampling.DPMSolver(wrap)
        step = getattr(solver, f"dpm_solver_{opts['order']}_step")
        for i in range(len(sig) - 2):
            x = step(x, solver.t(sigmas[i]), solver.t(sigmas[i + 1]))[0]
        # the last step to sigma = 0 (lambda infinite): its sigma' -> 0 limit, x~' = D(x~, sigma_1)
        return wrap(x, sigmas[-2:-1].expand(x.shape[0])).numpy()
    churn = [0]

    class TorchWithOurNormals:
        """k-diffusion's module-level torch, with randn_like returning the churn normal of each step."""

        def __getattr__(self, attr):
            return getattr(torch, attr)

        def randn_like(self, like):
            i = churn[0]
            churn[0] += 1
            return torch.from_numpy(z(i, rs.CHURN).copy())

    def noise_sampler(sigma, sigma_next):
        i = int(np.argmin(np.abs(sig - float(sigma))))
        if abs(float(sigma_next) - sig[i + 1]) <= 1e-12 * sig[i]:
            if name == "dpmpp_sde":
                r = opts.get("r", 0.5)
                s_mid = math.exp(math.log(sig[i]) - r * (math.log(sig[i]) - math.log(sig[i + 1])))
                return torch.from_numpy(rs.brownian_pair(z(i, rs.STEP), z(i, rs.BRIDGE), sig[i], s_mid,
                                                         sig[i + 1])[1].copy())
            return torch.from_numpy(z(i, rs.STEP).copy())
        return torch.from_numpy(z(i, rs.STEP).copy())  # dpmpp_sde's first increment, sigma_i -> sigma_s

    kw = dict(opts)
    fn = getattr(sampling, f"sample_{name}")
    if "noise_sampler" in inspect.signature(fn).parameters:
        kw["noise_sampler"] = noise_sampler
    saved = sampling.torch
    sampling.torch = TorchWithOurNormals()
    try:
        return fn(wrap, x, sigmas, disable=True, **kw).numpy()
    finally:
        sampling.torch = saved


def compare(sampling, external, torch, chain, label_chain):
    top = float(rs.DiscreteChain(chain).levels[-1])
    m, s = (float(v) for v in chain.marginal_coefficients(chain.N))
    unit = np.random.default_rng(0).standard_normal((64, 2))
    x0 = m * MU + math.sqrt(m * m * V + s * s) * unit
    z = EngineNormals(chain.N, x0.shape)
    print(f"{label_chain}: N = {chain.N}, sigma in [{rs.DiscreteChain(chain).levels[0]:.4g}, {top:.4g}]")
    print(f"  {'sampler':44s} " + " ".join(f"{k:>15s}" for k in eps_models(chain)))
    for name, opts in CASES:
        opts = {k: (0.5 * top if v == "top/2" else v) for k, v in opts.items()}
        row = []
        for label, eps in eps_models(chain).items():
            ours = ds.reverse(chain, diffsde_score(label, eps, chain), x0, method=name, rng=SEED, **opts).x
            theirs = run_kdiffusion(sampling, external, torch, chain, eps, name, opts, x0, z)
            row.append(float(np.max(np.abs(ours - theirs))))
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in opts.items()}
        print(f"  {name + (' ' + str(shown) if shown else ''):44s} " + " ".join(f"{v:15.3e}" for v in row))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kdiffusion", default=os.environ.get("KDIFFUSION_PATH"))
    ap.add_argument("--steps", type=int, default=25, help="M of DDPM.linear(1000).respace(M, ...)")
    args = ap.parse_args(argv)
    import torch
    sampling, external = load_kdiffusion(args.kdiffusion)
    print("max |diffsde - k-diffusion| of the final states, 64 x 2 states, float64, identical normals")
    full = ds.DDPM.linear(1000)
    for label, chain in ((f"DDPM.linear(1000).respace({args.steps})", full.respace(args.steps)),
                         (f"DDPM.linear(1000).respace({args.steps}, 'leading', steps_offset=1)",
                          full.respace(args.steps, spacing="leading", steps_offset=1)),
                         ("DDPM.linear(40) (own grid)", ds.DDPM.linear(40))):
        compare(sampling, external, torch, chain, label)


if __name__ == "__main__":
    main()

"""python -m diffsde: a tour on Gaussian data, where every answer is known.

Data x_0 ~ N(mu, v0) in one dimension and the VP SDE with linear beta
(Song et al. 2021), whose marginals x_t = m(t) x_0 + s(t) z are exact. The
tour (1) drives the DDPM chain and Euler-Maruyama on the VP SDE with the same
draws and shows their paths merge at rate 1/N, and (2) runs every reverse
sampler from the exact marginal at T with the exact score and tabulates how
close each lands to the data law. Figures go to --out when matplotlib is
installed.
"""
import argparse
import os
import time

import numpy as np

from . import DDPM, VPSDE, LinearScore, forward, reverse, standard_normal

MU, V0 = 2.0, 0.25
SAMPLERS = [
    ("em", {}), ("em", {"alpha": 0.0}), ("em", {"alpha": 2.0}), ("ode_heun", {}),
    ("reverse_diffusion", {}), ("ancestral", {}), ("ancestral", {"variance": "posterior"}),
    ("ddim", {}), ("ddim", {"eta": 1.0}),
]


def chain_meets_sde(vp, n_paths, rng):
    """RMS over paths of DDPM(N) - EM(N), both driven by the same key."""
    x0 = MU + np.sqrt(V0) * standard_normal(n_paths, rng=rng)
    rows = []
    for n in (32, 64, 128, 256, 512, 1024):
        diff = forward(DDPM.from_sde(vp, n), x0, rng=1).x - forward(vp, x0, steps=n, rng=1).x
        rows.append((n, float(np.sqrt(np.mean(diff**2)))))
    return rows


def samplers(vp, n_paths, steps, rng):
    m, s = vp.marginal(vp.T)
    x_T = m * MU + np.sqrt(m * m * V0 + s * s) * standard_normal(n_paths, rng=rng)
    score = LinearScore(MU, V0)
    rows = {}
    for method, kw in SAMPLERS:
        tic = time.perf_counter()
        tr = reverse(vp, score, x_T, steps, method=method, rng=rng, **kw)
        label = method + "".join(f", {k}={v}" for k, v in kw.items())
        rows[label] = (tr, time.perf_counter() - tic)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m diffsde", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="paths per sampler (default 100000)")
    parser.add_argument("--steps", type=int, default=100, help="reverse steps (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="diffsde-tour", help="folder for figures (default diffsde-tour)")
    parser.add_argument("--no-plots", action="store_true", help="print the tables only")
    args = parser.parse_args(argv)
    if args.n < 2 or args.steps < 2:
        parser.error("--n and --steps must be at least 2")

    rng = np.random.default_rng(args.seed)
    vp = VPSDE(beta_min=0.1, beta_max=20.0)
    print(f"diffsde tour: data N({MU}, {V0}), {vp!r}\n")

    print("1. DDPM chain vs Euler-Maruyama on the VP SDE, same draws (RMS of the final difference)")
    merge = chain_meets_sde(vp, min(args.n, 5000), rng)
    for n, rms in merge:
        print(f"   N = {n:5d}   rms = {rms:.2e}")
    slope = np.polyfit(np.log([r[0] for r in merge]), np.log([r[1] for r in merge]), 1)[0]
    print(f"   fitted slope {slope:.2f} (theory: -1)\n")

    print(f"2. Reverse samplers from the exact marginal at T, exact score, {args.steps} steps, {args.n:,} paths")
    rows = samplers(vp, args.n, args.steps, rng)
    header = f"   {'method':32s} {'mean':>8s} {'var':>8s} {'|dvar|':>8s} {'nfe':>5s} {'sec':>6s}"
    print(header + f"\n   {'data law':32s} {MU:8.4f} {V0:8.4f}")
    for label, (tr, sec) in rows.items():
        print(f"   {label:32s} {tr.x.mean():8.4f} {tr.x.var():8.4f} {abs(tr.x.var() - V0):8.4f} "
              f"{tr.nfe:5d} {sec:6.2f}")
    print(f"   (standard errors: mean {np.sqrt(V0 / args.n):.1e}, var {V0 * np.sqrt(2 / args.n):.1e})")

    if args.no_plots:
        return 0
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\nmatplotlib is not installed: pip install 'diffsde[examples]' for figures")
        return 0
    os.makedirs(args.out, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].loglog([r[0] for r in merge], [r[1] for r in merge], "o-", label="DDPM vs EM")
    ns = np.array([r[0] for r in merge], dtype=float)
    axes[0].loglog(ns, merge[0][1] * ns[0] / ns, "k--", label="slope -1")
    axes[0].set(xlabel="N", ylabel="RMS path difference", title="a chain and its SDE limit")
    axes[0].legend()
    grid = np.linspace(MU - 4 * np.sqrt(V0), MU + 4 * np.sqrt(V0), 200)
    for label in ("em", "em, alpha=0.0", "ode_heun", "ancestral", "ddim"):
        axes[1].hist(rows[label][0].x, bins=120, density=True, histtype="step", label=label)
    axes[1].plot(grid, np.exp(-(grid - MU) ** 2 / (2 * V0)) / np.sqrt(2 * np.pi * V0), "k--", label="data")
    axes[1].set(xlim=(grid[0], grid[-1]), title="samples at t = 0", xlabel="x")
    axes[1].legend(fontsize=8)
    m, s = vp.marginal(vp.T)
    x_T = m * MU + np.sqrt(m * m * V0 + s * s) * standard_normal(15, rng=rng)
    for alpha, style in ((1.0, "-"), (0.0, "--")):
        tr = reverse(vp, LinearScore(MU, V0), x_T, args.steps, alpha=alpha, rng=rng, save_every=1)
        axes[2].plot(tr.ts, tr.xs, style, lw=0.7)
    axes[2].set(title="reverse paths: SDE (solid), ODE (dashed)", xlabel="t", ylabel="x")
    axes[2].invert_xaxis()
    fig.tight_layout()
    path = os.path.join(args.out, "tour.png")
    fig.savefig(path, dpi=110)
    print(f"\nfigure: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

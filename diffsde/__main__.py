"""python -m diffsde: a tour of the engine on Gaussian data, where every
answer is known in closed form.

Data x_0 ~ N(mu, v0) in one dimension, pushed through the VP SDE
dx = -beta(t) x / 2 dt + sqrt(beta(t)) dW with linear beta (Song et al.
2021). The exact marginal is x_t = m(t) x_0 + s(t) z with
m = exp(-B/2), s^2 = 1 - exp(-B), B(t) = int_0^t beta. The tour runs the
forward Euler-Maruyama chain and, from the prior, Anderson's reverse SDE and
the probability-flow ODE (Euler and Heun) with the exact score, and prints
their moments beside the truth.
"""
import argparse
import os
import time

import numpy as np

from . import LinearScore, StepTable, run_steps, standard_normal

BETA_MIN, BETA_MAX, T = 0.1, 20.0, 1.0
MU, V0 = 2.0, 0.25


def beta(t):
    return BETA_MIN + (BETA_MAX - BETA_MIN) * t


def marginal(t):
    big_b = BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t**2
    return np.exp(-0.5 * big_b), np.sqrt(-np.expm1(-big_b))


def forward_em(steps):
    """x_{k+1} = (1 - beta_k h / 2) x_k + sqrt(beta_k h) z_k."""
    h = T / steps
    b = beta(h * np.arange(steps))
    return StepTable.affine(1 - 0.5 * b * h, 0.0, np.sqrt(b * h))


def reverse_em(steps, alpha):
    """x_{k-1} = x_k - h [f - (1 + alpha^2)/2 g^2 s] + alpha g sqrt(h) z at t_k."""
    h = T / steps
    t = T - h * np.arange(steps)
    m, s = marginal(t)
    b = beta(t)
    return StepTable.affine(1 + 0.5 * b * h, 0.5 * (1 + alpha**2) * b * h, alpha * np.sqrt(b * h),
                            t=t, m=m, s=s, interval=np.arange(steps)[::-1])


def reverse_heun(steps):
    """Heun on dx/dt = -beta/2 (x + s), from T to 0; the last step is Euler."""
    h = T / steps
    t = T - h * np.arange(steps - 1)
    m, s = marginal(t)
    m_end, s_end = marginal(t - h)
    heun = StepTable.heun(1 + 0.5 * beta(t) * h, 0.5 * beta(t) * h, 1 + 0.5 * beta(t - h) * h,
                          0.5 * beta(t - h) * h, t=t, t_end=t - h, m=m, s=s, m_end=m_end, s_end=s_end)
    m_last, s_last = marginal(h)
    last = StepTable.affine([1 + 0.5 * beta(h) * h], 0.5 * beta(h) * h, t=h, m=m_last, s=s_last)
    return StepTable.concat(heun, last)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m diffsde", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="paths (default 200000)")
    parser.add_argument("--steps", type=int, default=100, help="steps per run (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="diffsde-tour", help="folder for figures (default diffsde-tour)")
    parser.add_argument("--no-plots", action="store_true", help="print the table only")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x0 = MU + np.sqrt(V0) * standard_normal(args.n, rng=rng)
    m_T, s_T = marginal(T)
    prior = standard_normal(args.n, rng=rng)  # N(0, 1) ~ p_T up to e^{-B(T)}
    score = LinearScore(MU, V0)
    runs = [("forward EM, x_T", x0, forward_em(args.steps), None, m_T * MU, m_T**2 * V0 + s_T**2)]
    for name, table in [("reverse SDE (alpha=1), x_0", reverse_em(args.steps, 1.0)),
                        ("prob.-flow ODE, Euler, x_0", reverse_em(args.steps, 0.0)),
                        ("prob.-flow ODE, Heun, x_0", reverse_heun(args.steps))]:
        runs.append((name, prior, table, score, MU, V0))

    print(f"diffsde tour: N({MU}, {V0}) data, VP SDE beta in [{BETA_MIN}, {BETA_MAX}], "
          f"{args.n:,} paths, {args.steps} steps")
    header = f"{'run':30s} {'mean':>9s} {'exact':>9s} {'var':>9s} {'exact':>9s} {'nfe':>5s} {'seconds':>8s}"
    print(header)
    print("-" * len(header))
    results = {}
    for name, start, table, sc, mean, var in runs:
        tic = time.perf_counter()
        res = run_steps(start, table, score=sc, rng=rng, save=np.arange(table.n_steps + 1))
        sec = time.perf_counter() - tic
        results[name] = res
        print(f"{name:30s} {res.x.mean():9.4f} {mean:9.4f} {res.x.var():9.4f} {var:9.4f} "
              f"{res.nfe:5d} {sec:8.3f}")
    print(f"(standard error of the mean ~ {np.sqrt(V0 / args.n):.1e}; the ODE and SDE "
          "columns differ from the truth by discretization error and by e^-B(T) in the prior)")

    if args.no_plots:
        return 0
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: pip install 'diffsde[examples]' for figures")
        return 0
    os.makedirs(args.out, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    grid = np.linspace(MU - 4 * np.sqrt(V0), MU + 4 * np.sqrt(V0), 200)
    for name, res in list(results.items())[1:]:
        axes[0].hist(res.x, bins=120, density=True, histtype="step", label=name.split(",")[0])
    axes[0].plot(grid, np.exp(-(grid - MU) ** 2 / (2 * V0)) / np.sqrt(2 * np.pi * V0), "k--", label="data")
    axes[0].set(xlim=(grid[0], grid[-1]), title="samples at t = 0", xlabel="x")
    axes[0].legend(fontsize=8)
    times = np.linspace(T, 0, args.steps + 1)
    for name, res in list(results.items())[1:3]:
        axes[1].plot(times, res.xs[:, :20], lw=0.6, alpha=0.7)
    axes[1].set(title="reverse paths (SDE and ODE)", xlabel="t", ylabel="x")
    axes[1].invert_xaxis()
    path = os.path.join(args.out, "tour.png")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Reverse Euler-Maruyama on the VP SDE with the exact score of 2-D eight
Gaussians: diffsde's fused C score against the same mathematics as a NumPy
loop, one thread each. A benchmark, never run by the tests.

    python benchmarks/scores.py [--paths N] [--steps N] [--threads 1]

Prints ns per path-step for both, their ratio, and the final moments of both
runs (so neither is timed on wrong work). The issue's full size is 10^6 paths
x 1000 steps; ns per path-step is flat in both sizes, so the default is
smaller (pass --paths 1000000 --steps 1000 for the full run).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import diffsde as ds  # noqa: E402


def numpy_reverse_em(gm, vp, x, steps, rng):
    """x_{k-1} = (1 + beta h/2) x + beta h s(x, t_k) + sqrt(beta h) z, with the
    mixture score in NumPy (float64, all components at once)."""
    h = vp.T / steps
    z = np.empty_like(x)
    inv_var = 1.0 / gm.lambdas[:, 0]  # isotropic components
    for k in range(steps, 0, -1):
        t = k * h
        beta = float(vp.beta(t))
        m, s = vp.marginal_coefficients(t)
        var = m * m / inv_var + s * s
        diff = m * gm.means[None] - x[:, None, :]                    # (B, K, d)
        logits = np.log(gm.weights) - 0.5 * np.sum(diff**2, axis=2) / var - np.log(var)
        logits -= logits.max(axis=1, keepdims=True)
        gamma = np.exp(logits)
        gamma /= gamma.sum(axis=1, keepdims=True)
        score = np.einsum("bk,bkd->bd", gamma / var, diff)
        rng.standard_normal(out=z)
        x *= 1 + 0.5 * beta * h
        x += (beta * h) * score
        x += np.sqrt(beta * h) * z
    return x


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    ds.set_num_threads(args.threads)
    gm = ds.datasets.eight_gaussians()
    vp = ds.VPSDE()
    x_T = gm.marginal_law(vp, 1.0).sample(args.paths, rng=0)
    work = args.paths * args.steps

    tic = time.perf_counter()
    ours = ds.reverse(vp, gm, x_T, args.steps, rng=1).x
    t_ds = time.perf_counter() - tic
    tic = time.perf_counter()
    theirs = numpy_reverse_em(gm, vp, x_T.copy(), args.steps, np.random.default_rng(1))
    t_np = time.perf_counter() - tic

    print(f"reverse EM, VP, eight Gaussians (K=8, d=2), {args.paths:,} paths x {args.steps} steps, "
          f"{args.threads} thread(s)")
    print(f"  diffsde (fused C score) {1e9 * t_ds / work:8.1f} ns per path-step   ({t_ds:.2f} s)")
    print(f"  NumPy loop              {1e9 * t_np / work:8.1f} ns per path-step   ({t_np:.2f} s)")
    print(f"  ratio NumPy / diffsde   {t_np / t_ds:8.1f}x")
    for name, x in (("diffsde", ours), ("numpy", theirs)):
        r = np.linalg.norm(x, axis=1)
        print(f"  {name:8s} mean radius {r.mean():.4f}  radial std {r.std():.4f}  mean {x.mean(axis=0).round(4)}")


if __name__ == "__main__":
    main()

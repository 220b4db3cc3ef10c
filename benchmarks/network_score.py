#!/usr/bin/env python
"""What a torch network costs in ds.reverse beyond the network itself.

Usage::

    python benchmarks/network_score.py [--steps 200] [--repeats 5] [--batch 1 256 4096]

For each batch size, times (``time.perf_counter``, median and best of
``--repeats``):

- ``network``: the bare torch MLP (``ds.training.mlp(2)``, float32, 128 hidden
  units) called ``steps`` times under ``torch.inference_mode()`` on a tensor
  made once: the floor;
- ``reverse``: ``ds.reverse(vp, net, x, steps, method="em")`` with the module
  passed directly (a torch score: DLPack in, one time per sample, float64
  states cast to the module's float32, the score cast back);
- ``eps adapter``: the same run with ``ds.network_score(net, vp, prediction="eps")``.

and prints the overhead per step, (reverse - network) / steps, in
microseconds: the conversion, the engine's C step and its callback, together.
A NumPy callable ``lambda x, t: -x`` gives the engine's own per-step cost for
comparison. This file is a benchmark, never run by the tests.
"""
import argparse
import json
import pathlib
import platform
import statistics
import time

import numpy as np
import torch

import diffsde as ds


def timed(fn, repeats):
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out), min(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 256, 4096])
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds.set_num_threads(1)
    torch.manual_seed(0)
    net = ds.training.mlp(2)
    vp = ds.VPSDE()
    eps = ds.network_score(net, vp, prediction="eps")
    rows = []
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, steps = {args.steps}, "
          f"1 thread; median (best) of {args.repeats}")
    print(f"{'batch':>6} {'network':>12} {'reverse':>12} {'eps adapter':>12} {'numpy -x':>12} "
          f"{'overhead/step':>14} {'adapter/step':>13} {'engine/step':>12}")
    for batch in args.batch:
        x = np.random.default_rng(0).normal(size=(batch, 2))
        xt = torch.from_numpy(x).float()
        tt = torch.full((batch,), 0.5)

        def bare():
            with torch.inference_mode():
                for _ in range(args.steps):
                    net(xt, tt)

        bare()  # warm up
        t_net = timed(bare, args.repeats)
        t_rev = timed(lambda: ds.reverse(vp, net, x, args.steps, method="em", rng=0), args.repeats)
        t_eps = timed(lambda: ds.reverse(vp, eps, x, args.steps, method="em", rng=0), args.repeats)
        t_np = timed(lambda: ds.reverse(vp, lambda v, t: -v, x, args.steps, method="em", rng=0), args.repeats)
        per = lambda a: 1e6 * (a - t_net[0]) / args.steps  # noqa: E731
        row = dict(batch=batch, network=t_net, reverse=t_rev, eps_adapter=t_eps, numpy=t_np,
                   overhead_us_per_step=per(t_rev[0]), adapter_us_per_step=per(t_eps[0]),
                   engine_us_per_step=1e6 * t_np[0] / args.steps)
        rows.append(row)
        print(f"{batch:>6} {t_net[0]:>8.4f} s  {t_rev[0]:>8.4f} s  {t_eps[0]:>8.4f} s  {t_np[0]:>8.4f} s  "
              f"{row['overhead_us_per_step']:>10.1f} us  {row['adapter_us_per_step']:>9.1f} us  "
              f"{row['engine_us_per_step']:>8.1f} us")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(dict(torch=torch.__version__, steps=args.steps, rows=rows),
                                                      indent=1))


if __name__ == "__main__":
    main()

"""Train the small eps network of notebooks/06_learned_vs_exact.ipynb and
write its weights (float32, ~20 KB) to notebooks/eight_gaussians_dsm.npz.

    python tools/train_eight_gaussians.py [--steps 4000] [--out PATH]

Denoising score matching (diffsde.training.train_dsm) on the eight-Gaussians
mixture under the VP SDE (beta from 0.1 to 20), torch on the CPU. The run is
seeded; torch's CPU kernels may still differ in the last bits between
machines, so the weights are shipped rather than retrained by the notebook.
"""
import argparse
import pathlib
import time

import torch

import diffsde as ds
from diffsde import training

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=512)
    # 64 hidden units: the notebook evaluates the network in NumPy a few hundred times
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--out", default=str(ROOT / "notebooks" / "eight_gaussians_dsm.npz"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    vp = ds.VPSDE(0.1, 20.0)
    start = time.perf_counter()
    torch.manual_seed(2026)
    net = training.mlp(2, hidden=args.hidden)
    net, losses = training.train_dsm(ds.datasets.eight_gaussians(), vp, net=net, steps=args.steps,
                                     batch=args.batch, rng=2026)
    seconds = time.perf_counter() - start
    training.save_mlp(net, args.out, process="VPSDE(0.1, 20.0)", data="eight_gaussians()",
                      steps=args.steps, batch=args.batch, final_loss=float(losses[-200:].mean()),
                      train_seconds=seconds)
    print(f"{args.steps} steps in {seconds:.1f} s; loss over the last 200 steps {losses[-200:].mean():.4f}; "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()

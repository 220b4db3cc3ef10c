"""Write tools/arm64/cases.txt: the inputs of the pure-C known-answer driver.

Each case is a step table built by diffsde's own methods (so the tables are
the ones users run), a built-in score's arrays, an initial state and a key.
The driver (tools/arm64/kat.c) runs the table through the C engine, and
evaluates the score at the case's (m, s) pairs on the initial state, and
prints every result as bit patterns; tools/arm64_check.sh compares those
with tools/arm64/expected.txt on every build it makes.

The file is plain text, one field a line: ``name count value ...``; real
values are written exactly in C99's hexadecimal notation (float.hex), keys
and integers in hexadecimal or decimal. ``case NAME`` opens a case and
``end`` closes it. The cases are inputs: once written, they need not be
regenerated when the kernels change (only the expected outputs do), and the
tables here come from NumPy's exp and log on the machine that wrote them.

Usage: PYTHONPATH=. python tools/arm64/make_cases.py [OUT]
"""
import sys
from pathlib import Path

import numpy as np

import diffsde as ds

HERE = Path(__file__).resolve().parent
SCORE_KINDS = {"none": 0, "linear": 1, "mixture": 3, "empirical": 4}


def hexes(values):
    return " ".join(float(v).hex() for v in np.ravel(values))


def ints(values):
    return " ".join(str(int(v)) for v in np.ravel(values))


def case(out, name, table, score, x, key, dtype, evals=()):
    """One case: `table` run on `x` (batch, dim) with `score` (None or a
    built-in score), and the score evaluated at each (m, s) of `evals`."""
    x = np.asarray(x, dtype)  # the state's values, exactly representable in dtype
    batch, dim = x.shape
    if score is None:
        kind, params = 0, ()
    else:
        kind, params = score.c_params(dim)
    names = {1: ("mu", "var0"), 3: ("log_weights", "means", "lambdas", "vectors", "uniform"),
             4: ("points", "points_t", "sq_norms", "center")}.get(kind, ())
    lines = [f"case {name}",
             f"dtype 1 {'f32' if dtype == np.float32 else 'f64'}",
             f"shape 2 {batch} {dim}",
             f"key 1 {key:#018x}",
             f"score_kind 1 {kind}"]
    for pname, arr in zip(names, params):
        lines.append(f"{pname} {np.size(arr)} {hexes(arr)}".rstrip())
    rows, width = table.src.shape
    lines += [f"table 3 {rows} {width} {table.n_registers}",
              f"kind {rows} {ints(table.kind)}",
              f"dst {rows} {ints(table.dst)}",
              f"src {rows * width} {ints(table.src)}",
              f"w {rows * width} {hexes(table.w)}",
              f"t {rows} {hexes(table.t)}",
              f"m {rows} {hexes(table.m)}",
              f"sd {rows} {hexes(table.sd)}",
              f"interval {rows} {ints(table.interval)}",
              f"stream {rows} {ints(table.stream)}",
              f"x {batch * dim} {hexes(x)}",
              f"evals {2 * len(evals)} {hexes(np.ravel(evals))}".rstrip(),
              "end"]
    out.write("\n".join(lines) + "\n")


def main(path):
    rng = np.random.default_rng(20261202)
    vp, ve, edm = ds.VPSDE(), ds.VESDE(0.01, 10.0), ds.EDM()
    gm8 = ds.datasets.eight_gaussians()
    diag = ds.GaussianMixture([0.2, 0.3, 0.5], rng.normal(size=(3, 3)) * 2,
                              rng.uniform(0.1, 1.0, (3, 3)))
    a = rng.normal(size=(2, 3, 3))
    full3 = ds.GaussianMixture([0.4, 0.6], rng.normal(size=(2, 3)),
                               a @ a.transpose(0, 2, 1) + 0.1 * np.eye(3))
    # above the tile kernel's 32 coordinates: the per-row full-covariance path
    b = rng.normal(size=(2, 33, 33)) / 6
    full33 = ds.GaussianMixture([0.7, 0.3], rng.normal(size=(2, 33)),
                                b @ b.transpose(0, 2, 1) + 0.2 * np.eye(33))
    # more points than one pass of the kernel (256), not a multiple of 8
    emp = ds.EmpiricalData(rng.normal(size=(301, 3)) * [1.0, 2.0, 0.5] + [3.0, -1.0, 0.0])
    lin = ds.LinearScore(rng.normal(size=4), rng.uniform(0.5, 2.0, 4))
    evals_vp = [(1.0, 0.05), (0.6, 0.8), (0.02, 1.0)]
    evals_ve = [(1.0, 0.1), (1.0, 3.0)]
    key = lambda: int(rng.integers(0, 2**63)) * 2 + 1  # noqa: E731
    # 70 rows: a tile of 64 and one of 6; the driver also runs blocks of 5
    # (one row at a time) and 9 rows, on 1 to 3 threads
    with open(path, "w") as out:
        case(out, "forward_em_vp_f64", ds.methods.table(vp, "em", 12, direction="forward"), None,
             rng.normal(size=(37, 3)), key(), np.float64)
        case(out, "forward_em_vp_f32", ds.methods.table(vp, "em", 12, direction="forward"), None,
             rng.normal(size=(37, 3)), key(), np.float32)
        case(out, "reverse_em_eight_gaussians_f64", ds.methods.table(vp, "em", 10), gm8,
             rng.normal(size=(70, 2)), key(), np.float64, evals_vp)
        case(out, "reverse_em_eight_gaussians_f32", ds.methods.table(vp, "em", 10), gm8,
             rng.normal(size=(70, 2)), key(), np.float32, evals_vp)
        case(out, "dpmpp_2m_diagonal_f64", ds.methods.table(vp, "dpmpp_2m", 8), diag,
             rng.normal(size=(70, 3)), key(), np.float64, evals_vp)
        case(out, "dpmpp_3m_sde_edm_diagonal_f64", ds.methods.table(edm, "dpmpp_3m_sde", 8), diag,
             80.0 * rng.normal(size=(23, 3)), key(), np.float64)
        case(out, "dpmpp_sde_edm_eight_gaussians_f32", ds.methods.table(edm, "dpmpp_sde", 6), gm8,
             80.0 * rng.normal(size=(29, 2)), key(), np.float32)
        case(out, "plms_linear_f32", ds.methods.table(vp, "plms", 8), lin,
             rng.normal(size=(19, 4)), key(), np.float32, evals_vp)
        case(out, "pc_langevin_diagonal_f32",
             ds.methods.table(ve, "reverse_diffusion", 6, corrector="langevin"), diag,
             10.0 * rng.normal(size=(70, 3)), key(), np.float32, evals_ve)
        case(out, "reverse_em_full_d3_f64", ds.methods.table(vp, "em", 10), full3,
             rng.normal(size=(70, 3)), key(), np.float64, evals_vp)
        case(out, "reverse_em_full_d33_f64", ds.methods.table(vp, "em", 4), full33,
             rng.normal(size=(11, 33)), key(), np.float64, evals_vp)
        case(out, "reverse_em_empirical_f64", ds.methods.table(vp, "em", 6), emp,
             rng.normal(size=(23, 3)), key(), np.float64, evals_vp)
        case(out, "dpmpp_2m_sde_empirical_f32", ds.methods.table(vp, "dpmpp_2m_sde", 6), emp,
             rng.normal(size=(23, 3)), key(), np.float32, evals_vp)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else HERE / "cases.txt")

"""Fingerprints of diffsde results on every SIMD path of the build it imports.

Prints one JSON object: for each path, the SHA-256 of the bytes of a few
results (normals in both dtypes, mixture reverse runs through the tiled and
the full-covariance kernels, a threaded forward run), plus the first normals
in full precision. tools/clang_check.sh runs it under a gcc and a clang
build and requires identical output; within one build it also requires every
path to match the baseline, since the paths must differ only in speed.
"""
import hashlib
import json
import sys

import numpy as np

import diffsde as ds


def fingerprint(a):
    a = np.ascontiguousarray(a)
    return f"{a.dtype.str}{a.shape}:{hashlib.sha256(a.tobytes()).hexdigest()[:20]}"


def results():
    vp, ve = ds.VPSDE(), ds.VESDE(0.01, 10.0)
    gm = ds.datasets.eight_gaussians()
    rng = np.random.default_rng(5)
    diag = ds.GaussianMixture([0.2, 0.3, 0.5], rng.normal(size=(3, 3)) * 2, rng.uniform(0.1, 1.0, (3, 3)))
    a = rng.normal(size=(2, 3, 3))
    full = ds.GaussianMixture([0.4, 0.6], rng.normal(size=(2, 3)), a @ a.transpose(0, 2, 1) + 0.1 * np.eye(3))
    x0 = rng.normal(size=(2001, 3))
    out = {
        "normal_f64": ds.standard_normal(100_003, rng=1),
        "normal_f32": ds.standard_normal(100_003, rng=1, dtype=np.float32),
        "reverse_eight_gaussians": ds.reverse(vp, gm, shape=(3001, 2), steps=50, rng=2).x,
        "reverse_diagonal_pc_f32": ds.reverse(ve, diag, shape=(1001, 3), steps=20, rng=3, corrector="langevin",
                                              dtype=np.float32).x,
        "reverse_full_cov": ds.reverse(vp, full, shape=(501, 3), steps=20, rng=4).x,
        "forward_subvp": ds.forward(ds.SubVPSDE(), x0, 40, rng=6).x,
    }
    return out


def main():
    report, first = {}, None
    before = ds.get_simd_path()
    try:
        for path in ds.simd_paths():
            ds.set_simd_path(path)
            res = results()
            report[path] = {name: fingerprint(v) for name, v in res.items()}
            if first is None:
                first = [float(v).hex() for v in res["normal_f64"][:4]]
    finally:
        ds.set_simd_path(before)
    differ = [p for p in report if report[p] != report["baseline"]]
    print(json.dumps({"first_normals": first, "paths": report}, indent=1, sort_keys=True))
    if differ:
        print(f"simd_digest: paths {differ} differ from baseline", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

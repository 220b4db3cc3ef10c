"""Regressions of the built-in exact scores: private copies of their inputs,
unaligned inputs, underflowing mixture weights on every SIMD path, workspaces
sized by the block and counted by the memory pre-check, clear errors."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import diffsde as ds
from diffsde import _engine, _validation

from conftest import on_every_simd_path

import reference

VP = ds.VPSDE(0.1, 20.0)


def unaligned(values):
    """A valid float64 array whose data starts at an odd address."""
    values = np.asarray(values, dtype=np.float64)
    buf = bytearray(values.nbytes + 1)
    out = np.frombuffer(buf, dtype=np.float64, count=values.size, offset=1).reshape(values.shape)
    out[...] = values
    assert not out.flags.aligned
    return out


# ---- private copies of the inputs ------------------------------------------

def _make_inputs(rng):
    weights = np.array([0.3, 0.7])
    means = rng.standard_normal((2, 3))
    return {
        "isotropic": (weights.copy(), means.copy(), np.array([0.5, 1.5])),
        "diagonal": (weights.copy(), means.copy(), rng.uniform(0.5, 1.5, (2, 3))),
        "full": (weights.copy(), means.copy(), np.stack([np.eye(3) * 0.7, np.diag([1.0, 2.0, 0.5])])),
    }


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
def test_gaussian_mixture_copies_its_inputs_and_leaves_their_flags(kind):
    rng = np.random.default_rng(1)
    arrays = _make_inputs(rng)[kind]
    frozen = arrays[2].copy()
    frozen.flags.writeable = False
    arrays = (arrays[0], arrays[1], frozen)
    flags = [(a.flags.writeable, a.flags.owndata) for a in arrays]
    views = [a.view() for a in arrays[:2]]  # writable views held by the caller
    gm = ds.GaussianMixture(*arrays)
    assert [(a.flags.writeable, a.flags.owndata) for a in arrays] == flags
    x = rng.standard_normal((5, 3))
    numpy_before = gm.score_at(x, 0.8, 0.6)
    c_before = reference.score_in_c(gm, x, 0.8, 0.6)
    views[0][:] = [0.9, 0.1]
    views[1][:] = 100.0
    arrays[0][0] = 0.5
    np.testing.assert_array_equal(gm.score_at(x, 0.8, 0.6), numpy_before)
    np.testing.assert_array_equal(reference.score_in_c(gm, x, 0.8, 0.6), c_before)
    np.testing.assert_array_equal(gm.weights, [0.3, 0.7])


def test_empirical_data_copies_its_points_and_leaves_their_flags():
    rng = np.random.default_rng(2)
    points = rng.standard_normal((6, 2))
    view = points.view()
    data = ds.EmpiricalData(points)
    assert points.flags.writeable and view.flags.writeable
    x = rng.standard_normal((4, 2))
    before = reference.score_in_c(data, x, 0.9, 0.5), data.score_at(x, 0.9, 0.5)
    view[:] = 50.0
    points[0, 0] = -7.0
    after = reference.score_in_c(data, x, 0.9, 0.5), data.score_at(x, 0.9, 0.5)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)
    frozen = rng.standard_normal(5)
    frozen.flags.writeable = False
    ds.EmpiricalData(frozen)
    assert not frozen.flags.writeable


def test_linear_score_keeps_copies_of_mean_and_var():
    mean, var = np.array([1.0, -2.0]), np.array([0.5, 2.0])
    view = mean.view()
    score = ds.LinearScore(mean, var)
    assert mean.flags.writeable and var.flags.writeable
    x = np.array([[0.3, 0.4], [-1.0, 2.0]])
    expected = (0.7 * np.array([1.0, -2.0]) - x) / (0.49 * np.array([0.5, 2.0]) + 0.25)
    view[:] = 9.0
    var[:] = 100.0
    np.testing.assert_allclose(score.evaluate(x, 0.7, 0.5), expected, rtol=1e-15)
    np.testing.assert_allclose(reference.score_in_c(score, x, 0.7, 0.5), expected, rtol=1e-15)


# ---- unaligned inputs --------------------------------------------------------

@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
def test_unaligned_mixture_inputs_give_the_same_bits(kind):
    arrays = _make_inputs(np.random.default_rng(3))[kind]
    x = np.random.default_rng(4).standard_normal((9, 3))
    aligned = reference.score_in_c(ds.GaussianMixture(*arrays), x, 0.8, 0.6)
    gm = ds.GaussianMixture(*(unaligned(a) for a in arrays))
    np.testing.assert_array_equal(reference.score_in_c(gm, x, 0.8, 0.6), aligned)


def test_unaligned_empirical_points_and_linear_parameters_give_the_same_bits():
    rng = np.random.default_rng(5)
    points, x = rng.standard_normal((7, 2)), rng.standard_normal((4, 2))
    np.testing.assert_array_equal(
        reference.score_in_c(ds.EmpiricalData(unaligned(points)), x, 0.9, 0.5),
        reference.score_in_c(ds.EmpiricalData(points), x, 0.9, 0.5))
    mean, var = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    np.testing.assert_array_equal(
        reference.score_in_c(ds.LinearScore(unaligned(mean), unaligned(var)), x, 0.9, 0.5),
        reference.score_in_c(ds.LinearScore(mean, var), x, 0.9, 0.5))


# ---- underflowing mixture weights -------------------------------------------

# Component 1 holds all the mass at the evaluation points; component 2's
# weight underflows to 0 while its own score is huge (1e305 and 1e307), so
# the exact score is component 1's: (m mu_1 - x) / (m^2 + s^2) with m = 1, s = 0.
UNDERFLOW_CASES = {
    "far mean": ds.GaussianMixture([0.5, 0.5], [[0.0], [1e305]], [1.0, 1.0]),
    "tiny variance": ds.GaussianMixture([0.5, 0.5], [[0.0], [1e7]], [1.0, 1e-300]),
}


@pytest.mark.parametrize("case", sorted(UNDERFLOW_CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_underflowing_component_weighs_exactly_zero_on_every_simd_path(case, dtype):
    gm = UNDERFLOW_CASES[case]
    x = np.array([0.0, 0.5, -1.0, 3.0], dtype=dtype)
    exact = (0.0 - x.astype(np.float64)).astype(dtype)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(gm.score_at(x, 1.0, 0.0).astype(dtype), exact)
    runs = on_every_simd_path(lambda: reference.score_in_c(gm, x, 1.0, 0.0, dtype))
    for path, got in runs.items():
        np.testing.assert_array_equal(got, exact, err_msg=path)
        assert got.tobytes() == runs["baseline"].tobytes()


def test_subnormal_weights_match_numpy_on_every_simd_path():
    # component 2's log-weight relative to component 1 is about -720 at x = 0:
    # e^-720 is subnormal, and its product with the per-component score
    # (about 4.6e151) is the whole score there (component 1's is exactly 0)
    c2 = 1e-300
    mu2 = np.sqrt(2 * (720 + 0.5 * np.log(1 / c2)) * c2)
    gm = ds.GaussianMixture([0.5, 0.5], [[0.0], [mu2]], [1.0, c2])
    x = np.zeros(3)
    numpy_score = gm.score_at(x, 1.0, 0.0)
    assert 0 < numpy_score[0] < 1e-150
    runs = on_every_simd_path(lambda: reference.score_in_c(gm, x, 1.0, 0.0))
    for path, got in runs.items():
        np.testing.assert_allclose(got, numpy_score, rtol=1e-9, atol=0, err_msg=path)
        assert got.tobytes() == runs["baseline"].tobytes()


@pytest.mark.filterwarnings("error")
def test_a_zero_weight_component_contributes_nothing_and_warns_nothing():
    zero = ds.GaussianMixture([0.0, 1.0], [[0.0], [1.0]], [1.0, 2.0])
    alone = ds.GaussianMixture([1.0], [[1.0]], [2.0])
    x = np.array([0.8, 1.0, -3.0])  # 1.0 = m mu_2: the exact score is 0
    np.testing.assert_array_equal(zero.score_at(x, 1.0, 0.5), alone.score_at(x, 1.0, 0.5))
    np.testing.assert_array_equal(zero.logpdf(x), alone.logpdf(x))
    runs = on_every_simd_path(lambda: reference.score_in_c(zero, x, 1.0, 0.5))
    for path, got in runs.items():
        np.testing.assert_array_equal(got, reference.score_in_c(alone, x, 1.0, 0.5), err_msg=path)
    assert runs["baseline"][1] == 0.0


def test_the_table_exp_follows_libm_into_the_subnormals_and_to_zero():
    x = np.linspace(-750.0, -700.0, 200_001)
    ours = reference.exp_nonpositive(x)
    libm = np.exp(x.astype(np.longdouble)).astype(np.float64)
    tiny = np.nextafter(0.0, 1.0)  # the spacing of the subnormals
    assert np.max(np.abs(ours - libm) / np.maximum(np.spacing(libm), tiny)) <= 2
    assert np.all(ours[x < -745.2] == 0.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mixture_bits_do_not_depend_on_the_block_size(dtype):
    rng = np.random.default_rng(6)
    gm = ds.GaussianMixture(np.full(4, 0.25), rng.standard_normal((4, 3)) * 2, rng.uniform(0.2, 1, (4, 3)))
    x = (rng.standard_normal((131, 3)) * 3).astype(dtype)
    table = ds.StepTable.affine([0.0], 1.0, 0.0, t=0.5, m=0.8, sd=0.6)

    def runs():
        return [ds.run_steps(x, table, score=gm, block_rows=b).x for b in (None, 1, 5, 63, 64, 65, 131)]

    by_path = on_every_simd_path(runs)
    base = by_path["baseline"][0]
    np.testing.assert_allclose(base, gm.score_at(x.astype(np.float64), 0.8, 0.6).astype(dtype),
                               rtol=1e-6 if dtype == np.float32 else 1e-12)
    for path, results in by_path.items():
        for got in results:
            assert got.tobytes() == base.tobytes(), path


# ---- workspaces --------------------------------------------------------------

def _big_mixture_plan(d=512**2, batch=2):
    gm = ds.GaussianMixture([1.0], np.zeros((1, d)), [1.0])
    table = ds.StepTable.affine([1.0, 1.0], 0.1, 0.1, t=0.5, m=1.0, sd=1.0)
    return gm, table, np.zeros((batch, d))


def test_mixture_workspace_is_sized_by_the_block():
    gm, table, x = _big_mixture_plan()
    kind, params = gm.c_params(x.shape[1])
    rows = _engine.BLOCK_ELEMENTS // x.shape[1] or 1
    assert rows == 1
    per_thread = _engine.workspace_bytes(table, kind, params, 2, x.shape[1], 8, rows) / min(
        2, ds.get_num_threads())
    # a block of one row: its noise and score buffers, 1/c and m mu, and a
    # one-row tile (x and the score transposed): six rows of d doubles
    assert per_thread <= 6.01 * x.nbytes / 2


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan's shadow memory and quarantine change the peak")
def test_peak_memory_of_a_one_component_mixture_stays_near_the_state_size():
    script = textwrap.dedent("""
        import resource, numpy as np, diffsde as ds
        d = 512 ** 2
        gm = ds.GaussianMixture([1.0], np.zeros((1, d)), [1.0])
        x = np.random.default_rng(0).standard_normal((2, d))
        table = ds.StepTable.affine([1.0, 1.0], 0.1, 0.1, t=0.5, m=1.0, sd=1.0)
        ds.run_steps(x[:, :64], ds.StepTable.affine([1.0], 0.0, 0.1), rng=1)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ds.run_steps(x, table, score=gm, rng=1)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
    """)
    env = dict(os.environ, DIFFSDE_NUM_THREADS="2",
               PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(ds.__file__)),
                                                        os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    grown_kib = int(out.stdout.split()[-1])
    state_kib = 2 * 512**2 * 8 / 1024
    # two threads of six rows of d doubles (see above) plus the output copy:
    # 7 states; before, 64-row tiles made it about 135 states (540 MiB)
    assert grown_kib < 10 * state_kib, f"peak memory grew by {grown_kib} KiB for a {state_kib:.0f} KiB state"


def test_the_memory_pre_check_counts_score_workspaces(monkeypatch):
    gm, table, x = _big_mixture_plan(d=4096, batch=4)
    kind, params = gm.c_params(4096)
    workspace = _engine.workspace_bytes(table, kind, params, 4, 4096, 8, 1)
    assert workspace > x.nbytes
    monkeypatch.setattr(_validation, "physical_memory_bytes", lambda: 1)
    with pytest.raises(MemoryError) as info:
        ds.run_steps(x, table, score=gm, rng=1, block_rows=1)
    found = re.search(r"with ([\d,]+) bytes of per-thread workspaces\) would need ([\d,]+) bytes",
                      str(info.value))
    counted, need = (int(g.replace(",", "")) for g in found.groups())
    assert counted == workspace
    # enough for the states but not for the workspaces: refused before C runs
    monkeypatch.setattr(_validation, "physical_memory_bytes", lambda: need - 1)
    assert need - workspace <= need - 1
    with pytest.raises(MemoryError, match=f"would need {need:,} bytes"):
        ds.run_steps(x, table, score=gm, rng=1, block_rows=1)
    monkeypatch.setattr(_validation, "physical_memory_bytes", lambda: need)
    ds.run_steps(x, table, score=gm, rng=1, block_rows=1)


# ---- clear errors ------------------------------------------------------------

@pytest.mark.parametrize("call, exc, message", [
    (lambda: ds.GaussianMixture("abc", [[0.0]], [1.0]), TypeError, "weights must be real numbers; got 'abc'"),
    (lambda: ds.GaussianMixture([1.0], [["a"]], [1.0]), TypeError, r"means must be real numbers; got \[\['a'\]\]"),
    (lambda: ds.GaussianMixture([1.0], [[0.0]], [None]), TypeError, r"covs must be real numbers; got \[None\]"),
    (lambda: ds.GaussianMixture([1.0], [[0.0]], [1 + 1j]), TypeError, "covs must be real numbers"),
    (lambda: ds.GaussianMixture([0.5, 0.5], [[0.0], [1.0, 2.0]], [1.0, 1.0]), ValueError,
     r"means must be an array of real numbers; got \[\[0.0\], \[1.0, 2.0\]\]"),
    (lambda: ds.GaussianMixture([1.0], np.zeros((1, 0)), [1.0]), ValueError, r"d >= 1; got \(1, 0\)"),
    (lambda: ds.GaussianMixture([1.0], [[np.inf]], [1.0]), ValueError, r"means must be finite; got inf at index \(0, 0\)"),
    (lambda: ds.GaussianMixture(np.array([0.6, 0.6]), [[0.0], [1.0]], [1.0, 1.0]), ValueError, "they sum to 1.2$"),
    (lambda: ds.EmpiricalData(np.zeros((3, 0))), ValueError, r"d >= 1; got shape \(3, 0\)"),
    (lambda: ds.EmpiricalData("xyz"), TypeError, "points must be real numbers; got 'xyz'"),
    (lambda: ds.LinearScore("x"), TypeError, "mean must be real numbers; got 'x'"),
    (lambda: ds.LinearScore(0.0, [1.0, None]), TypeError, "var must be real numbers"),
    (lambda: ds.datasets.eight_gaussians(std=-0.1), ValueError, "std must be finite and > 0; got -0.1"),
    (lambda: ds.datasets.eight_gaussians(radius="a"), TypeError, r"radius must be a real number \(finite and >= 0\); got 'a'"),
    (lambda: ds.datasets.eight_gaussians(radius=np.nan), ValueError, "radius must be finite and >= 0; got nan"),
    (lambda: ds.datasets.bimodal_1d(std="x"), TypeError, r"std must be a real number \(finite and > 0\); got 'x'"),
    (lambda: ds.datasets.bimodal_1d(weight=1.5), ValueError, r"weight must be in \[0, 1\]; got 1.5"),
    (lambda: ds.datasets.bimodal_1d(separation=np.float64(-1)), ValueError, "separation must be finite and >= 0; got -1.0"),
    (lambda: ds.datasets.eight_gaussians().score_at(np.zeros((2, 2)), "a", 1.0), TypeError,
     "m must be a real number; got 'a'"),
    (lambda: ds.datasets.eight_gaussians().score_at(np.zeros((2, 2)), 0.0, 0.0), ValueError,
     "m = s = 0 leaves no density"),
    (lambda: ds.EmpiricalData(np.zeros((3, 2))).score_at(np.zeros((2, 2)), np.nan, 1.0), ValueError,
     "must be finite with s >= 0; got m = nan, s = 1.0"),
    (lambda: ds.LinearScore().evaluate(np.zeros(2), 1.0, "s"), TypeError, "s must be a real number; got 's'"),
    (lambda: ds.datasets.eight_gaussians().score(ds.DDPM(np.full(10, 0.1)))(np.zeros((2, 2)), np.nan),
     ValueError, r"t must lie in \[0, T\] = \[0, 1\]; got nan"),
    (lambda: ds.datasets.eight_gaussians().score(VP)(np.zeros((2, 2)), np.array([0.1, 0.2])), TypeError,
     "t must be a real number .one time for the whole batch.; got an array of shape .2,."),
    (lambda: ds.score_from_eps(lambda x, t: x, VP)(np.zeros(2), "x"), TypeError, "t must be a real number"),
])
def test_score_constructors_and_evaluations_name_the_argument_and_its_value(call, exc, message):
    with pytest.raises(exc, match=message) as info:
        call()
    assert "np.float64" not in str(info.value) and "_core" not in str(info.value)

"""The C driver against its NumPy twin, and its promises: determinism,
inputs untouched, any memory layout, snapshots, errors."""
import gc
import sys
import warnings

import numpy as np
import pytest

import diffsde as ds
from diffsde import _threads
from diffsde._rng import key_from_rng

import reference

DTYPES = [np.float64, np.float32]


@pytest.fixture
def parallel(monkeypatch):
    """Make even small runs use threads, so the parallel paths are tested."""
    monkeypatch.setattr(_threads, "SERIAL_BELOW", 0)
    monkeypatch.setattr(_threads, "SERIAL_BELOW_WORK", 0)
    monkeypatch.setattr("diffsde._engine.CALLBACK_SERIAL_BELOW", 0)


def linear_twin(mean, var0):
    return lambda x, t, m, s: reference.linear_score(x, m, s, mean, var0)


def mixed_table(n=6):
    """Every step kind: affine with score and noise, Heun, Langevin, and
    an affine step with no score."""
    rng = np.random.default_rng(3)
    h = 1.0 / n
    t = 1.0 - h * np.arange(n)
    m = np.exp(-t)
    s = np.sqrt(1 - m**2)
    affine = ds.StepTable.affine(1 + 0.5 * h + rng.uniform(0, 0.01, n), h, np.sqrt(h), t=t, m=m, sd=s)
    heun = ds.StepTable.heun(1 + 0.5 * h, 0.5 * h, 1 + 0.4 * h, 0.5 * h, t=t, t_end=t - h,
                             m=m, sd=s, m_end=np.exp(-(t - h)), sd_end=np.sqrt(1 - np.exp(-2 * (t - h))))
    corrector = ds.StepTable.langevin(0.9, 0.16, t=t - h, m=np.exp(-(t - h)),
                                      sd=np.sqrt(1 - np.exp(-2 * (t - h))), interval=np.arange(n))
    plain = ds.StepTable.affine(np.full(n, 0.97), 0.0, 0.1, interval=np.arange(n))
    return ds.StepTable.concat(ds.StepTable.interleave(affine, corrector), heun, plain)


def reference_final(x, table, rng, mean, var0, noise=None):
    states = reference.run_table(np.asarray(x).reshape(len(x), -1), table, key_from_rng(rng),
                                 score=linear_twin(mean, var0), noise=noise)
    return states


@pytest.mark.parametrize("dtype", DTYPES)
def test_driver_matches_twin_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 3)).astype(dtype)
    mean, var0 = np.array([0.5, -1.0, 2.0]), np.array([0.3, 1.0, 2.5])
    table = mixed_table()
    result = ds.run_steps(x, table, score=ds.LinearScore(mean, var0), rng=11)
    expected = reference_final(x, table, 11, mean, var0)[-1]
    # Same operations in the same order in the same type: equal to the bit.
    np.testing.assert_array_equal(result.x, expected)
    assert result.x.dtype == dtype
    assert result.nfe == table.nfe


@pytest.mark.parametrize("dtype", DTYPES)
def test_python_score_matches_builtin_and_twin(dtype):
    x = np.random.default_rng(1).standard_normal((29, 2)).astype(dtype)
    mean, var0 = np.array([1.0, -2.0]), np.array([0.5, 2.0])
    table = mixed_table()
    calls = []

    def score(xv, t):
        calls.append(t)
        assert not xv.flags.writeable and isinstance(t, float)
        i = int(np.flatnonzero(table.t == t)[0])
        return reference.linear_score(xv, table.m[i], table.sd[i], mean, var0)

    via_python = ds.run_steps(x, table, score=score, rng=5)
    builtin = ds.run_steps(x, table, score=ds.LinearScore(mean, var0), rng=5)
    np.testing.assert_array_equal(via_python.x, builtin.x)
    assert len(calls) == table.nfe == via_python.nfe


@pytest.mark.parametrize("dtype", DTYPES)
def test_user_noise_replaces_step_noise(dtype):
    n, batch = 8, 16
    x = np.linspace(-1, 1, batch).astype(dtype)
    noise = np.random.default_rng(2).standard_normal((n, batch)).astype(dtype)
    a, c = np.linspace(0.9, 1.0, n), np.linspace(0.1, 0.3, n)
    table = ds.StepTable.affine(a, 0.0, c)
    result = ds.run_steps(x, table, noise=noise)
    expected = x.copy()
    for k in range(n):
        expected = dtype(a[k]) * expected + dtype(c[k]) * noise[k]
    np.testing.assert_array_equal(result.x, expected)


def test_snapshots_hold_the_states_after_the_requested_steps():
    x = np.random.default_rng(4).standard_normal((10, 3))
    table = mixed_table(5)
    states = reference_final(x, table, 9, 0.0, 1.0)
    last_row = np.r_[-1, table.last_row_of_step()]
    save = [0, 2, 7, table.n_steps]
    result = ds.run_steps(x, table, score=ds.LinearScore(0.0, 1.0), rng=9, save=save)
    assert result.saved.tolist() == save
    for i, n in enumerate(save):
        np.testing.assert_array_equal(result.xs[i], states[last_row[n] + 1])
    default = ds.run_steps(x, table, score=ds.LinearScore(0.0, 1.0), rng=9)
    assert default.saved.tolist() == [0, table.n_steps]
    np.testing.assert_array_equal(default.xs[0], x)
    np.testing.assert_array_equal(default.xs[1], default.x)


def _mixture():
    rng = np.random.default_rng(50)
    return ds.GaussianMixture(np.full(3, 1 / 3), rng.standard_normal((3, 4)), rng.uniform(0.5, 1.5, (3, 4)))


SCORES = {
    "none": (None, lambda: ds.StepTable.affine(np.full(7, 0.99), 0.0, 0.1)),
    "linear": (ds.LinearScore(0.2, 1.5), mixed_table),
    "python": (lambda x, t: -x / (1.0 + t), mixed_table),
    "mixture": (_mixture().score(ds.VPSDE()), mixed_table),
    "empirical": (ds.EmpiricalData(np.random.default_rng(51).standard_normal((300, 4))).score(ds.VPSDE()),
                  mixed_table),
}


@pytest.mark.parametrize("which", sorted(SCORES))
def test_threads_blocks_and_prefix_never_change_a_bit(which, parallel):
    score, make_table = SCORES[which]
    table = make_table()
    x = np.random.default_rng(5).standard_normal((203, 4))
    runs = []
    for threads in (1, 2):
        ds.set_num_threads(threads)
        for block_rows in (None, 1, 7, 64):
            runs.append(ds.run_steps(x, table, score=score, rng=21, block_rows=block_rows).x)
    ds.set_num_threads(None)
    for other in runs[1:]:
        np.testing.assert_array_equal(other, runs[0])
    prefix = ds.run_steps(x[:50], table, score=score, rng=21).x
    np.testing.assert_array_equal(prefix, runs[0][:50])


@pytest.mark.parametrize("layout", ["fortran", "strided", "byteswapped", "readonly"])
def test_any_memory_layout_gives_the_contiguous_result(layout):
    base = np.random.default_rng(6).standard_normal((40, 3))
    table = mixed_table()
    expected = ds.run_steps(base, table, score=ds.LinearScore(0.0, 2.0), rng=3).x
    if layout == "fortran":
        x = np.asfortranarray(base)
    elif layout == "strided":
        x = np.zeros((80, 6))[::2, ::2]
        x[...] = base
    elif layout == "byteswapped":
        x = base.astype(base.dtype.newbyteorder())
    else:
        x = base.copy()
        x.flags.writeable = False
    got = ds.run_steps(x, table, score=ds.LinearScore(0.0, 2.0), rng=3).x
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.float64 and got.dtype.isnative


def test_inputs_are_never_modified():
    x = np.random.default_rng(7).standard_normal((25, 2))
    noise = np.random.default_rng(8).standard_normal((6, 25, 2))
    table = ds.StepTable.affine(np.full(6, 0.9), 0.1, 0.2)
    copies = x.copy(), noise.copy()
    mean = np.array([1.0, 2.0])
    score = ds.LinearScore(mean, 1.0)
    ds.run_steps(x, table, score=score, noise=noise, rng=1)
    ds.run_steps(x, mixed_table(), score=lambda v, t: -v, rng=1)
    np.testing.assert_array_equal(x, copies[0])
    np.testing.assert_array_equal(noise, copies[1])
    np.testing.assert_array_equal(score.mean, mean)


def test_out_receives_the_result_and_may_alias_x():
    x = np.random.default_rng(9).standard_normal((30, 2))
    table = mixed_table()
    expected = ds.run_steps(x, table, score=ds.LinearScore(), rng=2).x
    out = np.empty_like(x)
    got = ds.run_steps(x, table, score=ds.LinearScore(), rng=2, out=out)
    assert got.x is out
    np.testing.assert_array_equal(out, expected)
    aliased = x.copy()
    ds.run_steps(aliased, table, score=ds.LinearScore(), rng=2, out=aliased)
    np.testing.assert_array_equal(aliased, expected)
    strided = np.zeros((30, 4))[:, ::2]
    ds.run_steps(x, table, score=ds.LinearScore(), rng=2, out=strided)
    np.testing.assert_array_equal(strided, expected)


def test_integer_and_bool_inputs_run_in_float64_and_scalars_per_row():
    table = ds.StepTable.affine([0.5, 0.5])
    np.testing.assert_array_equal(ds.run_steps(np.array([4, 8]), table).x, [1.0, 2.0])
    assert ds.run_steps(np.array([True, False]), table).x.dtype == np.float64
    assert ds.run_steps(np.ones(3, np.float32), table, dtype=np.float64).x.dtype == np.float64


def test_empty_batch_runs():
    result = ds.run_steps(np.zeros((0, 3)), mixed_table(), score=ds.LinearScore(), rng=0)
    assert result.x.shape == (0, 3) and result.xs.shape == (2, 0, 3)


def test_event_axes_reach_a_python_score_in_the_caller_s_shape():
    x = np.random.default_rng(10).standard_normal((4, 2, 3))
    seen = []

    def score(v, t):
        seen.append(v.shape)
        return -v

    result = ds.run_steps(x, ds.StepTable.affine([1.0], -0.5, 0.0), score=score)
    assert seen == [(4, 2, 3)]
    np.testing.assert_array_equal(result.x, x * 1.0 + -0.5 * -x)


# ---- errors ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float16, np.complex128, object, np.longdouble])
def test_unsupported_dtypes_raise_type_error(dtype):
    x = np.ones((3, 2), dtype=dtype)
    with pytest.raises(TypeError, match="float32 or float64"):
        ds.run_steps(x, ds.StepTable.affine([1.0]))


def test_bad_tables_raise_value_error_naming_the_column():
    with pytest.raises(ValueError, match="column a is nan at row 1"):
        ds.StepTable.affine([1.0, np.nan])
    with pytest.raises(ValueError, match="column c is inf"):
        ds.StepTable.affine([1.0], 0.0, np.inf)
    with pytest.raises(ValueError, match="one entry per step|different lengths"):
        ds.StepTable.affine([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="no steps"):
        ds.run_steps(np.ones(3), ds.StepTable.affine(np.zeros(0)))
    with pytest.raises(TypeError, match="StepTable"):
        ds.run_steps(np.ones(3), {"a": [1.0]})


def test_bad_arguments_raise_clear_errors():
    x = np.ones((5, 2))
    table = ds.StepTable.affine(np.ones(3), 0.5, 0.1)
    with pytest.raises(ValueError, match="score=None"):
        ds.run_steps(x, table)
    with pytest.raises(ValueError, match=r"noise must have shape .*\(3, 5, 2\)"):
        ds.run_steps(x, table, score=ds.LinearScore(), noise=np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        ds.run_steps(x, table, score=ds.LinearScore(), noise=np.full((3, 5, 2), np.nan))
    with pytest.raises(ValueError, match="do not fit"):
        ds.run_steps(x, table, score=ds.LinearScore([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="nonfinite"):
        ds.run_steps(x, table, score=ds.LinearScore(), nonfinite="quiet")
    with pytest.raises(ValueError, match=r"save entries must lie in \[0, 3\]"):
        ds.run_steps(x, table, score=ds.LinearScore(), save=[4])
    with pytest.raises(ValueError, match="out must have shape"):
        ds.run_steps(x, table, score=ds.LinearScore(), out=np.empty((5, 3)))
    with pytest.raises(ValueError, match="batch axis"):
        ds.run_steps(1.0, table, score=ds.LinearScore())
    with pytest.raises(TypeError, match="score must be"):
        ds.run_steps(x, table, score="gaussian")


def test_score_errors_name_the_step_and_time():
    x = np.ones((5, 2))
    table = ds.StepTable.affine(np.ones(4), 0.5, 0.0, t=[0.9, 0.8, 0.7, 0.6])
    with pytest.raises(ValueError, match=r"shape \(5,\) at step 0 of 4 \(t = 0.9\)"):
        ds.run_steps(x, table, score=lambda v, t: v[:, 0])
    with pytest.raises(FloatingPointError, match=r"non-finite value nan .*step 2 of 4 \(t = 0.7\)"):
        ds.run_steps(x, table, score=lambda v, t: v * (np.nan if t < 0.75 else 1.0))
    with pytest.raises(TypeError, match="complex128"):
        ds.run_steps(x, table, score=lambda v, t: v + 0j)

    def failing(v, t):
        if t < 0.85:
            raise RuntimeError("model exploded")
        return -v

    with pytest.raises(RuntimeError, match="model exploded") as info:
        ds.run_steps(x, table, score=failing)
    assert any("step 1 of 4 (t = 0.8)" in note for note in info.value.__notes__)


@pytest.mark.parametrize("which", ["none", "linear", "python"])
def test_nonfinite_states_are_reported_with_step_and_time(which):
    n = 10
    a = np.full(n, 1.0)
    a[6] = 1e300  # step 6 overflows float64 for |x| > ~1.8e8
    table = ds.StepTable.affine(a, 0.0 if which == "none" else 1e-30, 0.0, t=np.linspace(1, 0.1, n))
    score = {"none": None, "linear": ds.LinearScore(), "python": lambda v, t: -v}[which]
    x = np.full((1000, 2), 1e10)
    with pytest.raises(FloatingPointError, match=r"step 6 of 10 \(t = 0.4\)"):
        ds.run_steps(x, table, score=score)
    with pytest.warns(RuntimeWarning, match="step 6 of 10"):
        result = ds.run_steps(x, table, score=score, nonfinite="warn")
    assert not np.any(np.isfinite(result.x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.run_steps(x, table, score=score, nonfinite="ignore")


def test_runs_too_large_for_memory_fail_before_allocating():
    x = np.broadcast_to(np.zeros(1), (10**6,))
    table = ds.StepTable.affine(np.ones(10**5), 0.0, 0.0)
    with pytest.raises(MemoryError, match="bytes"):
        ds.run_steps(x, table, save=np.arange(10**5 + 1))


def test_no_reference_or_memory_leaks_over_many_calls():
    import tracemalloc

    x = np.random.default_rng(11).standard_normal((64, 2))
    table = mixed_table(3)
    bad_table = ds.StepTable.affine(np.ones(3), 0.5, 0.0)
    score = ds.LinearScore(0.0, 1.0)

    def pyscore(v, t):
        return -v

    def failing(v, t):
        raise ValueError("nope")

    def many_calls():
        for _ in range(1000):
            ds.run_steps(x, table, score=score, rng=1)
            ds.run_steps(x, table, score=pyscore, rng=1)
            for bad in (failing, lambda v, t: v[:1]):
                try:
                    ds.run_steps(x, bad_table, score=bad)
                except ValueError:
                    pass

    many_calls()  # warm caches
    gc.collect()
    refs = [sys.getrefcount(obj) for obj in (x, table, score, pyscore)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    many_calls()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert [sys.getrefcount(obj) for obj in (x, table, score, pyscore)] == refs
    assert after - before < 64 * 1024, f"{after - before} bytes still held after 4000 calls"


@pytest.mark.parametrize("which", sorted(SCORES))
def test_progress_runs_in_chunks_of_steps_without_changing_a_bit(which, capsys):
    score, make_table = SCORES[which]
    table = ds.StepTable.concat(*[make_table() for _ in range(30)])  # > 100 steps
    x = np.random.default_rng(12).standard_normal((33, 4))
    save = [0, 1, 57, 58, table.n_steps - 1, table.n_steps]
    # 540 steps of this table may leave the finite range: compare whatever comes
    whole = ds.run_steps(x, table, score=score, rng=4, save=save, nonfinite="ignore")
    chunked = ds.run_steps(x, table, score=score, rng=4, save=save, progress=True, nonfinite="ignore")
    np.testing.assert_array_equal(chunked.x, whole.x)
    np.testing.assert_array_equal(chunked.xs, whole.xs)


def test_progress_reports_the_first_nonfinite_step_of_the_whole_run():
    a = np.ones(300)
    a[250] = 1e300
    table = ds.StepTable.affine(a, 0.0, 0.0)
    with pytest.raises(FloatingPointError, match="step 250 of 300"):
        ds.run_steps(np.full(4, 1e10), table, progress=True)


# ---- regressions from the C review --------------------------------------------

def test_a_python_score_failing_mid_run_never_hangs_the_threads(parallel):
    """A score that raises on a later call stopped the master at one barrier
    and a worker at another; every thread must leave at the same point."""
    ds.set_num_threads(2)
    try:
        x = np.zeros((20_000, 1))
        table = ds.StepTable.affine(np.ones(6), 0.1, 0.0)
        for fail_at in range(1, 5):
            for _ in range(10):
                calls = []

                def score(v, t):
                    calls.append(t)
                    return v[:1] if len(calls) > fail_at else -v

                with pytest.raises(ValueError, match="returned shape"):
                    ds.run_steps(x, table, score=score, block_rows=7)
    finally:
        ds.set_num_threads(None)


def test_absurd_block_rows_and_thread_counts_are_capped():
    x = np.random.default_rng(13).standard_normal(1000)
    table = ds.StepTable.affine(np.full(4, 0.9), 0.0, 0.1)
    expected = ds.run_steps(x, table, rng=1).x
    for block_rows in (2**61, 2**62, 10**9):
        np.testing.assert_array_equal(ds.run_steps(x, table, rng=1, block_rows=block_rows).x, expected)
    ds.set_num_threads(100_000)
    try:
        np.testing.assert_array_equal(ds.run_steps(np.tile(x, 200), table, rng=1, block_rows=1).x[:1000],
                                      expected)
    finally:
        ds.set_num_threads(None)


def test_user_noise_is_needed_only_where_a_row_draws_noise():
    table = ds.StepTable.affine(np.ones(3), 0.0, [1.0, 1.0, 0.0])
    noise = np.ones((2, 4))
    np.testing.assert_array_equal(ds.run_steps(np.zeros(4), table, noise=noise).x, np.full(4, 2.0))
    heun = ds.StepTable.heun(1.0, 0.1, 1.0, 0.1, t=1.0, t_end=0.5)
    both = ds.StepTable.concat(ds.StepTable.affine([1.0], 0.0, 1.0), heun)
    got = ds.run_steps(np.zeros(4), both, noise=np.ones((1, 4)), score=lambda v, t: -v).x
    np.testing.assert_allclose(got, 1.0 * (0.5 + 0.5 * (0.9 + 0.1 * -0.9)))
    assert ds.run_steps(np.zeros((0, 2)), table, noise=np.ones((2, 0, 2))).x.shape == (0, 2)
    assert ds.run_steps(np.zeros(4), table, save=[]).xs.shape == (0, 4)


def test_langevin_at_a_mode_stays_put_instead_of_becoming_nan():
    x = np.zeros((3, 4))
    x[1] = 1.0
    table = ds.StepTable.langevin(1.0, 0.16, t=0.5, m=1.0, sd=0.0)
    result = ds.run_steps(x, table, score=ds.LinearScore(0.0, 1.0), rng=2)
    np.testing.assert_array_equal(result.x[[0, 2]], 0.0)  # score 0: no step
    assert np.all(np.isfinite(result.x)) and not np.array_equal(result.x[1], x[1])
    expected = reference.run_table(x, table, key_from_rng(2), score=linear_twin(0.0, 1.0))[-1]
    np.testing.assert_array_equal(result.x, expected)


@pytest.mark.parametrize("change, message", [
    (dict(dst=np.array([3], np.int32)), "row 0 has kind 2, dst 3 or sources out of range"),
    (dict(kind=np.array([7], np.int32)), "row 0 has kind 7"),
    (dict(src=np.array([[0, -1, 1, -1, -1, -1, -1, -1]], np.int32)), "sources out of range"),
    (dict(kind=np.array([1], np.int32), dst=np.array([0], np.int32),
          src=np.full((1, 8), -1, np.int32)), "register 0 is written by normal rows"),
    (dict(n_registers=0), r"n_registers = 0 is outside \[1, 256\]"),
    (dict(src=np.array([[1, -1, -1, -1, -1, -1, -1, -1]], np.int32)), "reads register 1, which no row writes"),
])
def test_direct_core_calls_cannot_crash_on_bad_programs(change, message):
    """_core.run re-checks what would crash it: kinds, register indices, the
    source lists and the noise registers (a register pointing into the
    caller's noise is never written through)."""
    from diffsde import _core

    x = np.zeros((2, 2))
    src = np.full((1, 8), -1, np.int32)
    src[0, 0] = 0
    table = dict(kind=np.array([2], np.int32), dst=np.zeros(1, np.int32), src=src, w=np.zeros((1, 8)),
                 t=np.zeros(1), m=np.ones(1), sd=np.zeros(1), interval=np.zeros(1, np.int64),
                 stream=np.zeros(1, np.int64), n_registers=2)
    table.update(change)
    options = dict(key=0, noise=None, score_kind=0, score_params=(), callback=None, registers=None,
                   save_rows=np.zeros(0, np.int64), snapshots=np.zeros((0, 2, 2)), check_finite=True,
                   stop_on_nonfinite=True, num_threads=1, block_rows=1, row_offset=0)
    with pytest.raises(ValueError, match=message):
        _core.run(x, table, options)


@pytest.mark.parametrize("layout", ["unaligned", "byteswapped"])
def test_scores_returning_odd_layouts_are_read_correctly(layout):
    x = np.random.default_rng(14).standard_normal((16, 3))
    table = ds.StepTable.affine(np.ones(3), 0.5, 0.0)

    def score(v, t):
        value = -np.asarray(v)
        if layout == "byteswapped":
            return value.astype(value.dtype.newbyteorder())
        odd = np.frombuffer(np.empty(value.nbytes + 1, np.uint8)[1:], np.float64).reshape(value.shape)
        assert not odd.flags.aligned
        odd[...] = value
        return odd

    got = ds.run_steps(x, table, score=score).x
    np.testing.assert_allclose(got, x * 0.5**3, rtol=1e-15)

"""Regressions of issue 14 in the engine: step tables, out=, noise layouts,
thread and block bounds, save_at, the corrector table and the messages of
errors from C.

Each test failed before its fix; the defect it covers is named in its
docstring.
"""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import diffsde as ds
from diffsde import _steptable, _threads

VP = ds.VPSDE()
SHAPE = (6, 3)
STEPS = 12


def _x0(seed=0):
    return np.random.default_rng(seed).standard_normal(SHAPE)


def _noise(seed=1, steps=STEPS):
    return np.random.default_rng(seed).standard_normal((steps,) + SHAPE)


def _score():
    return ds.LinearScore(np.array([0.5, -1.0, 2.0]), np.array([0.3, 1.0, 2.5]))


# ---- defect 2: out= sharing memory with an input ------------------------------

@pytest.mark.parametrize("k", [0, 5, STEPS - 1])
def test_forward_out_inside_noise_equals_the_run_without_out(k):
    """Defect 2: out=noise[k] let the state overwrite noise still to be read
    (off by up to 7.8); the result must be the run without out=, bit for bit."""
    noise = _noise()
    expected = ds.forward(VP, _x0(), STEPS, noise=noise.copy(), save_every=1)
    out = noise[k]
    got = ds.forward(VP, _x0(), STEPS, noise=noise, out=out, save_every=1)
    assert got.x is out
    np.testing.assert_array_equal(got.x, expected.x)
    np.testing.assert_array_equal(got.xs, expected.xs)


@pytest.mark.parametrize("k", [0, 6, STEPS - 1])
def test_reverse_out_inside_noise_equals_the_run_without_out(k):
    """Defect 2, reverse (off by up to 1.1 before the fix)."""
    noise = _noise(2)
    expected = ds.reverse(VP, _score(), _x0(3), STEPS, noise=noise.copy()).x
    out = noise[k]
    got = ds.reverse(VP, _score(), _x0(3), STEPS, noise=noise, out=out).x
    assert got is out
    np.testing.assert_array_equal(got, expected)


def test_reverse_with_a_python_score_and_out_inside_noise():
    noise = _noise(4)
    score = lambda x, t: -x / (1.0 + t)  # noqa: E731
    expected = ds.reverse(VP, score, _x0(5), STEPS, noise=noise.copy()).x
    got = ds.reverse(VP, score, _x0(5), STEPS, noise=noise, out=noise[2]).x
    np.testing.assert_array_equal(got, expected)


def test_run_steps_out_overlapping_noise_at_an_offset():
    """Defect 2 through run_steps: an out that straddles two noise intervals."""
    table = ds.StepTable.affine(np.full(8, 0.9), 0.0, 0.3)
    noise = np.random.default_rng(6).standard_normal((8, 4, 2))
    expected = ds.run_steps(np.ones((4, 2)), table, noise=noise.copy()).x
    flat = noise.reshape(-1)
    out = flat[13:21].reshape(4, 2)  # half of interval 1, half of interval 2
    got = ds.run_steps(np.ones((4, 2)), table, noise=noise, out=out).x
    assert got is out
    np.testing.assert_array_equal(got, expected)


def test_out_sharing_memory_with_the_linear_score_parameters():
    """Defect 2, 'any input': C reads the built-in score's parameters every
    step; an out over the caller's mean array must not change them mid-run."""
    mean = np.array([[0.5, -1.0, 2.0]])
    var0 = np.array([0.3, 1.0, 2.5])
    x = np.full((1, 3), 0.25)
    table = ds.StepTable.affine(np.full(5, 1.01), 0.1, 0.0, t=0.5, m=0.8, sd=0.6)
    expected = ds.run_steps(x, table, score=ds.LinearScore(mean.copy()[0], var0)).x
    out = mean  # the same memory as the score's mean
    got = ds.run_steps(x, table, score=ds.LinearScore(mean[0], var0), out=out).x
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shift", [0, 1, -1])
def test_out_overlapping_x_still_works(shift):
    """out may be x itself or overlap it: x is read once, before the first write."""
    table = ds.StepTable.affine(np.full(6, 0.95), 0.0, 0.2)
    buf = np.random.default_rng(7).standard_normal((6, 3))
    x = buf[1:5]
    expected = ds.run_steps(x.copy(), table, rng=9).x
    out = buf[1 + shift:5 + shift]
    got = ds.run_steps(x, table, rng=9, out=out).x
    assert got is out
    np.testing.assert_array_equal(got, expected)
    buf = np.random.default_rng(7).standard_normal((6, 3))
    forward_expected = ds.forward(VP, buf[1:5].copy(), STEPS, rng=3).x
    np.testing.assert_array_equal(ds.forward(VP, buf[1:5], STEPS, rng=3, out=buf[1 + shift:5 + shift]).x,
                                  forward_expected)


# ---- defect 5: unaligned, byte-swapped and strided noise -----------------------

def _unaligned_copy(arr):
    raw = bytearray(arr.nbytes + 1)
    view = np.frombuffer(raw, dtype=arr.dtype, offset=1, count=arr.size).reshape(arr.shape)
    view[...] = arr
    assert not view.flags.aligned
    return view


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_unaligned_noise_is_accepted(direction):
    """Defect 5: np.frombuffer at an odd offset was rejected with an internal
    _core message; the result must equal the aligned run bit for bit."""
    noise = _noise(8)
    variants = {"unaligned": _unaligned_copy(noise), "swapped": noise.astype(noise.dtype.newbyteorder()),
                "strided": np.repeat(noise, 2, axis=0)[::2], "fortran": np.asfortranarray(noise)}
    if direction == "forward":
        run = lambda z: ds.forward(VP, _x0(), STEPS, noise=z).x  # noqa: E731
    else:
        run = lambda z: ds.reverse(VP, _score(), _x0(), STEPS, noise=z).x  # noqa: E731
    expected = run(noise)
    for name, z in variants.items():
        np.testing.assert_array_equal(run(z), expected, err_msg=name)


def test_unaligned_float32_noise_is_accepted():
    noise = _noise(9).astype(np.float32)
    x = _x0().astype(np.float32)
    expected = ds.forward(VP, x, STEPS, noise=noise).x
    np.testing.assert_array_equal(ds.forward(VP, x, STEPS, noise=_unaligned_copy(noise)).x, expected)


# ---- defect 4: thread counts and block sizes ----------------------------------

@pytest.mark.parametrize("n", [2**31, 2**63, 10**30])
def test_set_num_threads_beyond_a_c_int_is_refused(n):
    """Defect 4: 2**31 was accepted and every threaded run then raised OverflowError."""
    before = ds.get_num_threads()
    with pytest.raises(ValueError,
                       match=r"n must be an int in \[1, 2\*\*31 - 1\] = \[1, 2147483647\] or None; got " + str(n)):
        ds.set_num_threads(n)
    assert ds.get_num_threads() == before


def test_the_largest_thread_count_runs(parallel_runs):
    x = np.random.default_rng(10).standard_normal((20_000, 1))
    table = ds.StepTable.affine(np.full(3, 0.9), 0.0, 0.1)
    expected = ds.run_steps(x, table, rng=2).x
    ds.set_num_threads(2**31 - 1)
    try:
        np.testing.assert_array_equal(ds.run_steps(x, table, rng=2).x, expected)
    finally:
        ds.set_num_threads(None)


def test_environment_thread_count_beyond_a_c_int_is_refused(monkeypatch):
    monkeypatch.setattr(_threads, "_requested", None)
    monkeypatch.setenv("DIFFSDE_NUM_THREADS", str(2**31))
    with pytest.raises(ValueError, match=r"DIFFSDE_NUM_THREADS must be an int in \[1, 2\*\*31 - 1\]"):
        ds.get_num_threads()


@pytest.mark.parametrize("block_rows", [2**63, np.uint64(2**63), 2**64, 10**40])
def test_block_rows_beyond_int64_is_refused_in_python(block_rows):
    """Defect 4: block_rows=2**63 failed with 'int too big to convert'."""
    with pytest.raises(ValueError, match=r"block_rows must be an int >= 1 and <= 2\*\*63 - 1; got \d+$"):
        ds.run_steps(np.zeros((3, 1)), ds.StepTable.affine([0.5]), block_rows=block_rows)


def test_block_rows_at_the_int64_limit_runs():
    x = np.random.default_rng(11).standard_normal((30, 2))
    table = ds.StepTable.affine(np.full(4, 0.9), 0.0, 0.1)
    np.testing.assert_array_equal(ds.run_steps(x, table, rng=1, block_rows=2**63 - 1).x,
                                  ds.run_steps(x, table, rng=1).x)


@pytest.fixture
def parallel_runs(monkeypatch):
    monkeypatch.setattr(_threads, "SERIAL_BELOW", 0)
    monkeypatch.setattr(_threads, "SERIAL_BELOW_WORK", 0)
    monkeypatch.setattr("diffsde._engine.CALLBACK_SERIAL_BELOW", 0)


# ---- defect 6: the StepTable constructor --------------------------------------

def _columns(n=3, **changes):
    """n combine rows x <- 0.9 x, one per step."""
    src = np.full((n, ds.StepTable.MAX_TERMS), -1, np.int32)
    src[:, 0] = 0
    w = np.zeros((n, ds.StepTable.MAX_TERMS))
    w[:, 0] = 0.9
    cols = dict(kind=np.full(n, ds.StepTable.ROW_KINDS["combine"], np.int32), dst=np.zeros(n, np.int32), src=src, w=w,
                t=np.zeros(n), m=np.ones(n), sd=np.zeros(n), interval=np.arange(n), stream=np.zeros(n, np.int64),
                step=np.arange(n))
    cols.update(changes)
    return cols


@pytest.mark.parametrize("step, message", [
    ([0, 2, 3], "row 1 has step 2 after step 0"),
    ([5, 6, 7], "row 0 has step 5"),
    ([0, 1, 0], "row 2 has step 0 after step 1"),
])
def test_step_column_gaps_are_refused_at_construction(step, message):
    """Defect 6: a gap or a first step of 5 constructed, then run_steps raised IndexError."""
    with pytest.raises(ValueError, match="steps must start at 0 and grow by 0 or 1 per row; " + message):
        ds.StepTable(**_columns(step=np.array(step)))


def test_a_register_carried_over_steps_keeps_progress_runs_whole():
    """Defect 6 (a Heun pair split over two steps ran without a progress bar
    and failed with one) in the register form: a scratch register written in
    one step and read in the next is carried, and a progress run never cuts
    the table there, so it gives the bits of a run without progress."""
    cols = _columns(n=120)
    cols["dst"][0::2] = 1  # even rows write register 1, odd rows read it
    cols["src"][1::2, 0] = 1
    cols["step"] = np.arange(120)
    table = ds.StepTable(**cols)
    assert table.carried_steps()[1::2].all() and not table.carried_steps()[0::2].any()
    x = np.random.default_rng(2).standard_normal((4, 2))
    expected = ds.run_steps(x, table, save=np.arange(121)).xs
    np.testing.assert_array_equal(ds.run_steps(x, table, save=np.arange(121), progress=True).xs, expected)


def test_other_integer_and_float_dtypes_are_converted():
    """Defect 6: int64 kind or a float32 column gave an internal _core message;
    they hold exactly what the canonical dtypes hold, so they are converted."""
    x = np.random.default_rng(12).standard_normal((5, 2))
    w = _columns()["w"]
    w[:, 0] = [0.5, 0.25, 0.75]
    canonical = ds.StepTable(**_columns(w=w, m=np.array([0.5, 1.0, 0.125])))
    other = ds.StepTable(**_columns(kind=np.full(3, 2, np.int64), w=w.astype(np.float32),
                                    m=np.array([0.5, 1.0, 0.125], np.float16), t=np.zeros(3, np.int8),
                                    dst=np.zeros(3, np.uint8), src=_columns()["src"].astype(np.int64),
                                    interval=np.arange(3, dtype=np.uint8), stream=np.zeros(3, np.int32),
                                    step=np.arange(3, dtype=np.uint16)))
    assert other.kind.dtype == np.int32 and other.w.dtype == np.float64 and other.step.dtype == np.int64
    assert other.src.dtype == np.int32 and other.dst.dtype == np.int32
    for progress in (False, True):
        np.testing.assert_array_equal(ds.run_steps(x, other, rng=4, progress=progress).x,
                                      ds.run_steps(x, canonical, rng=4).x)


@pytest.mark.parametrize("column, value, error, message", [
    ("step", np.arange(3.0), TypeError, "column step must hold integers; got dtype float64"),
    ("kind", np.zeros(3, bool), TypeError, "column kind must hold integers; got dtype bool"),
    ("t", np.ones(3, np.longdouble), TypeError, "column t must hold real numbers of at most float64"),
    ("t", np.ones(3, complex), TypeError, "column t must hold real numbers"),
    ("interval", np.array([0, 1, 2**63], np.uint64), ValueError, r"interval has the value 9223372036854775808"),
    ("stream", np.array([0, 0, 2**32]), ValueError, r"stream has the value 4294967296; .* \[0, 4294967295\]"),
    ("kind", np.array([0, 2**40, 0]), ValueError, "unknown kind"),
    ("t", np.ones((3, 1)), ValueError, r"column t must be 1-D .* got shape \(3, 1\)"),
    ("w", np.ones(3), ValueError, r"column w must be 2-D \(rows, width\), width <= 8; got shape \(3,\)"),
    ("src", np.zeros((3, 9), np.int32), ValueError,
     r"column src must have shape \(rows, width\) with 1 <= width <= 8; got \(3, 9\)"),
    ("src", np.zeros((3, 4), np.int32), ValueError,
     r"columns src and w must have the same width \(terms per row\); got 4 and 8"),
    ("dst", np.array([0, 256, 0]), ValueError, r"column dst has the value 256; .* \[0, 255\]"),
])
def test_bad_columns_are_refused_with_a_clear_message(column, value, error, message):
    if value.dtype == np.longdouble and np.finfo(np.longdouble).bits == 64:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(error, match=message):
        ds.StepTable(**_columns(**{column: value}))


def test_builders_refuse_longdouble_like_the_constructor():
    if np.finfo(np.longdouble).bits == 64:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match="a must be real numbers of at most float64 precision"):
        ds.StepTable.affine(np.ones(2, np.longdouble))


def test_constructor_copies_and_leaves_the_callers_arrays_writeable():
    cols = _columns()
    table = ds.StepTable(**cols)
    assert all(arr.flags.writeable for arr in cols.values())
    cols["w"][0, 0] = 7.0
    assert table.w[0, 0] == 0.9 and not table.w.flags.writeable


def test_concat_and_interleave_need_step_tables():
    """Defect 9: StepTable.concat() gave a NumPy error."""
    with pytest.raises(ValueError, match="StepTable.concat needs at least one StepTable; got none"):
        ds.StepTable.concat()
    with pytest.raises(ValueError, match="StepTable.interleave needs at least one StepTable; got none"):
        ds.StepTable.interleave()
    with pytest.raises(TypeError, match="StepTable.concat takes StepTables; argument 1 is a list"):
        ds.StepTable.concat(ds.StepTable.affine([1.0]), [1.0])


# ---- defect 7: save_at must be finite -----------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_save_at_is_refused(bad):
    """Defect 7: save_at=[nan] silently saved t = 0."""
    with pytest.raises(ValueError, match=f"save_at times must be finite grid times; got {bad}"):
        ds.forward(VP, _x0(), STEPS, save_at=[0.5, bad])
    with pytest.raises(ValueError, match=f"save_at times must be finite grid times; got {bad}"):
        ds.reverse(VP, _score(), _x0(), STEPS, save_at=[bad])


# ---- defect 10: repr of an empty trajectory -----------------------------------

def test_repr_of_a_trajectory_with_nothing_saved():
    """Defect 10: repr raised IndexError with save_at=[]."""
    forward = ds.forward(VP, _x0(), STEPS, save_at=[])
    assert repr(forward) == "Trajectory(x.shape=(6, 3), no saved states, nfe=0)"
    reverse = ds.reverse(VP, _score(), _x0(), STEPS, save_at=[])
    assert repr(reverse) == f"Trajectory(x.shape=(6, 3), no saved states, nfe={STEPS})"
    assert repr(ds.forward(VP, _x0(), 4, save_every=2)) == \
        "Trajectory(x.shape=(6, 3), 3 saved states at t = 0 .. 1, nfe=0)"


# ---- defect 11: the corrector table -------------------------------------------

def _loop_corrector(grid, snr, n_steps, at_start):
    """The original construction, one StepTable per sub-step: the twin."""
    k = grid.run_order() if at_start else grid.run_order()[:-1] - 1
    r = np.exp(grid.log_abar[k] - grid.log_abar[k - 1]) if grid.log_abar is not None else np.ones(k.size)
    return [ds.StepTable.langevin(r, snr, t=grid.t[k], m=grid.m[k], sd=grid.sd[k], interval=k, sub_step=sub)
            for sub in range(n_steps)]


@pytest.mark.parametrize("process", [ds.VPSDE(), ds.VESDE(), ds.SubVPSDE(),
                                     ds.DDPM.from_sde(ds.VPSDE(), 9, rule="exact")])
@pytest.mark.parametrize("n_sub", [1, 2, 5])
@pytest.mark.parametrize("at_start", [True, False])
def test_vectorized_corrector_table_equals_the_per_sub_step_tables(process, n_sub, at_start):
    """Defect 11: the table built in one pass is the old one, column by column."""
    steps = None if isinstance(process, ds.DDPM) else 9
    method = "em" if isinstance(process, ds.SubVPSDE) else "reverse_diffusion"
    law = ds.methods.view(process, method, steps)
    predictor = ds.methods.table(process, method, steps)
    new = ds.methods.get("langevin", "corrector").build(law, snr=0.16, n_corrector_steps=n_sub,
                                                        corrector_at_start=at_start)
    old = _loop_corrector(law, 0.16, n_sub, at_start)
    if at_start:  # the corrector at t_k before the predictor step from t_k
        new, old = ds.StepTable.interleave(*new, predictor), ds.StepTable.interleave(*old, predictor)
    else:
        new, old = ds.StepTable.interleave(predictor, *new), ds.StepTable.interleave(predictor, *old)
    for name in ("kind", "dst", "src", "w", "t", "m", "sd", "interval", "stream", "step"):
        assert getattr(new, name).dtype == getattr(old, name).dtype
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name), err_msg=name)


def test_huge_corrector_is_refused_before_anything_is_built(monkeypatch):
    """Defect 11: n_corrector_steps=10**6 built one StepTable per sub-step with
    no size check and hung; the size is now checked first (MemoryError with
    the bytes), against a fixed 'physical memory' here so the test does not
    depend on the machine."""
    monkeypatch.setattr(_steptable, "physical_memory_bytes", lambda: 10**6)
    rows = 100 * 100
    need = rows * _steptable.BUILD_BYTES_PER_ROW
    with pytest.raises(MemoryError, match=f"a Langevin corrector of 100 sub-steps at each of 100 grid times makes "
                                          f"a step table of {rows:,} rows, which needs about {need:,} bytes"):
        ds.reverse(VP, _score(), _x0(), 100, corrector="langevin", n_corrector_steps=100)


def test_a_million_corrector_sub_steps_fail_fast():
    """Defect 11 as reported: 10**6 sub-steps at each of 1000 grid times need
    about 2e11 bytes to build: refused at once on any machine with less."""
    limit = _steptable.physical_memory_bytes()
    if limit is None or limit >= 1000 * 10**6 * _steptable.BUILD_BYTES_PER_ROW:
        pytest.skip("this machine could hold the table")
    with pytest.raises(MemoryError, match="1,000,000,000 rows"):
        ds.reverse(VP, _score(), _x0(), corrector="langevin", n_corrector_steps=10**6)


# ---- defect 9: messages --------------------------------------------------------

@pytest.mark.parametrize("rng", [-1, np.int64(-3), -2**70])
def test_negative_seeds_say_so(rng):
    """Defect 9: rng=-1 said 'must be ... an int'."""
    with pytest.raises(ValueError, match=f"got {int(rng)}: negative seeds are not allowed"):
        ds.standard_normal(3, rng=rng)
    with pytest.raises(ValueError, match="negative seeds are not allowed"):
        ds.forward(VP, _x0(), 3, rng=rng)


def test_a_seed_sequence_with_a_negative_entry_is_a_value_error():
    with pytest.raises(ValueError, match=r"rng=\[3, -1\] is not a valid seed: seeds are ints >= 0"):
        ds.standard_normal(3, rng=[3, -1])


@pytest.mark.parametrize("T, error, message", [
    (-1, ValueError, "T must be finite and > 0; got -1$"),
    (0.0, ValueError, "T must be finite and > 0; got 0.0$"),
    (np.nan, ValueError, "T must be finite and > 0; got nan$"),
    (np.float64(np.inf), ValueError, "got inf$"),
    ("a", TypeError, r"T must be a real number \(finite and > 0\); got 'a'$"),
])
def test_brownian_increments_check_T(T, error, message):
    """Defect 9: T=-1 said 'math domain error'; T=nan gave NaN increments."""
    with pytest.raises(error, match=message):
        ds.BrownianPath((2,), 3, rng=1).increments(4, T=T)


def test_brownian_increments_scale_by_sqrt_T():
    path = ds.BrownianPath((3,), 4, rng=2)
    np.testing.assert_allclose(path.increments(8, T=4.0), 2.0 * path.increments(8))


_NOMEM_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import diffsde as ds

    def vm_bytes():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    if sys.argv[1] == "frozen":
        table = ds.StepTable.affine(np.full(2_000_000, 0.5))
        x = np.zeros((1, 1))
        headroom = 32 << 20
    else:
        x = np.zeros((1, 1 << 25))
        table = ds.StepTable.affine(np.full(2, 0.5), 0.0, 1.0)
        headroom = (1 << 28) + (64 << 20)
    ds.run_steps(x, ds.StepTable.affine([0.5]), save=[])
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + headroom, resource.RLIM_INFINITY))
    try:
        ds.run_steps(x, table, save=[], rng=1)
        print("ran")
    except MemoryError as exc:
        print("MemoryError:", exc)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux") or "asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="needs Linux address-space limits (and no sanitizer's reservations)")
@pytest.mark.parametrize("which, message", [
    # read-only columns (a StepTable's own) are read in place: the run needs
    # no copy of the table's 288 MB (it copied 136 MB before, and failed here)
    ("frozen", r"ran$"),
    # one 2**25-element float64 noise buffer, plus the small rest
    ("workspace", r"MemoryError: diffsde: could not allocate 2684\d{5} bytes \(25[67] MiB\) for one thread's "
                  r"work buffers \(each of the run's 1 thread\(s\) has its own\); use fewer threads"),
])
def test_memory_errors_from_c_state_the_bytes(which, message, tmp_path):
    """Defect 9: a failed allocation in C raised a MemoryError with no message.
    A child process limits its address space just above what it uses, so the
    C allocation (not NumPy's) is the one that fails."""
    script = tmp_path / "nomem.py"
    script.write_text(_NOMEM_SCRIPT)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
               DIFFSDE_NUM_THREADS="1", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(script), which], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.match(message, done.stdout), done.stdout

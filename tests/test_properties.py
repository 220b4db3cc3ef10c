"""Property-based tests (hypothesis): random shapes, dtypes, strides, step
tables and seeds. The C driver equals its NumPy twin bit for bit, and thread
count and chunking never change a bit."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diffsde as ds
from diffsde import _threads
from diffsde._rng import key_from_rng

import reference

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

coefficient = st.floats(-1.5, 1.5, allow_nan=False, width=64)


@st.composite
def tables(draw):
    """A table of 1-6 steps mixing every step kind, with marginals (m, s)."""
    n = draw(st.integers(1, 6))
    parts = []
    for k in range(n):
        kind = draw(st.sampled_from(["affine", "affine_noise_only", "heun", "langevin"]))
        t = draw(st.floats(0.05, 1.0))
        m, s = draw(st.floats(0.2, 1.0)), draw(st.floats(0.1, 1.0))
        if kind == "affine":
            parts.append(ds.StepTable.affine([draw(coefficient)], draw(coefficient), draw(coefficient),
                                             t=t, m=m, sd=s, interval=[k]))
        elif kind == "affine_noise_only":
            parts.append(ds.StepTable.affine([draw(coefficient)], 0.0, draw(coefficient), interval=[k]))
        elif kind == "heun":
            parts.append(ds.StepTable.heun(draw(coefficient), draw(coefficient), draw(coefficient),
                                           draw(coefficient), t=t, t_end=t / 2, m=m, sd=s, m_end=m, sd_end=s))
        else:
            parts.append(ds.StepTable.langevin(draw(st.floats(0.1, 1.0)), draw(st.floats(0.0, 0.3)),
                                               t=t, m=m, sd=s, interval=[k], sub_step=draw(st.integers(0, 2))))
    return ds.StepTable.concat(*parts)


@st.composite
def states(draw):
    """(array, dtype): any batch (0-40), event size 1-5, either dtype, and a
    memory layout that is C, Fortran, strided or byte-swapped."""
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    batch, dim = draw(st.integers(0, 40)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).standard_normal((batch, dim)).astype(dtype)
    layout = draw(st.sampled_from(["c", "fortran", "strided", "swapped"]))
    if layout == "fortran":
        x = np.asfortranarray(x)
    elif layout == "strided":
        big = np.zeros((batch * 2, dim * 3), dtype)
        big[::2, ::3] = x
        x = big[::2, ::3]
    elif layout == "swapped":
        x = x.astype(x.dtype.newbyteorder())
    return x


def twin(x, table, seed, mean, var):
    rows = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
    states_ = reference.run_table(rows, table, key_from_rng(seed),
                                  score=lambda v, t, m, s: reference.linear_score(v, m, s, mean, var))
    return states_[-1]


@SETTINGS
@given(x=states(), table=tables(), seed=st.integers(0, 2**63 - 1), mean=coefficient,
       var=st.floats(0.0, 2.0))
def test_driver_equals_the_numpy_twin(x, table, seed, mean, var):
    before = x.copy()
    got = ds.run_steps(x, table, score=ds.LinearScore(mean, var), rng=seed, nonfinite="ignore").x
    np.testing.assert_array_equal(got, twin(x, table, seed, mean, var))
    np.testing.assert_array_equal(x, before)


@SETTINGS
@given(x=states(), table=tables(), seed=st.integers(0, 2**63 - 1), block_rows=st.integers(1, 50),
       threads=st.sampled_from([1, 2, 3]))
def test_threads_and_chunking_never_change_a_bit(x, table, seed, block_rows, threads):
    score = ds.LinearScore(0.3, 0.7)
    whole = ds.run_steps(x, table, score=score, rng=seed, nonfinite="ignore").x
    saved = (_threads.SERIAL_BELOW, _threads.SERIAL_BELOW_WORK)
    _threads.SERIAL_BELOW = _threads.SERIAL_BELOW_WORK = 0
    ds.set_num_threads(threads)
    try:
        chunked = ds.run_steps(x, table, score=score, rng=seed, nonfinite="ignore", block_rows=block_rows).x
    finally:
        ds.set_num_threads(None)
        _threads.SERIAL_BELOW, _threads.SERIAL_BELOW_WORK = saved
    np.testing.assert_array_equal(chunked, whole)
    if x.shape[0] > 1:
        prefix = ds.run_steps(x[: x.shape[0] // 2], table, score=score, rng=seed, nonfinite="ignore").x
        np.testing.assert_array_equal(prefix, whole[: x.shape[0] // 2])


@SETTINGS
@given(n=st.integers(0, 3000), j0=st.integers(0, 2**40), seed=st.integers(0, 2**63 - 1),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_any_slice_of_the_normal_sequence_is_the_same_numbers(n, j0, seed, dtype):
    from diffsde import _core

    key = key_from_rng(seed)
    whole = np.empty(n + 3, dtype)
    _core.fill_normal(whole, key, 0, 3, j0, 1)
    part = np.empty(n, dtype)
    _core.fill_normal(part, key, 0, 3, j0 + 3, 2)  # another offset and thread count
    np.testing.assert_array_equal(part, whole[3:])

"""The step table as a register program: every row kind in C against its
NumPy twin (tests/reference.py) bit for bit, random programs, the
constructor's rules, the shared constants, and a multistep sampler built
from row groups."""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diffsde as ds
from diffsde import _core, _engine, _steptable
from diffsde._rng import key_from_rng
from diffsde._steptable import MAX_TERMS, ROW_KINDS, Rows

import reference
from conftest import on_every_simd_path

DTYPES = [np.float64, np.float32]
SCORE, NORMAL, COMBINE, LANGEVIN = (ROW_KINDS[k] for k in ("score", "normal", "combine", "langevin"))
MEAN, VAR0 = np.array([0.5, -1.0, 2.0]), np.array([0.3, 1.0, 2.5])


def marginal(t):
    """VP-like (m, sd) as functions of t, so a Python score can find them."""
    m = np.exp(-np.asarray(t, np.float64))
    return m, np.sqrt(1 - m * m)


def python_linear(v, t):
    m, sd = marginal(t)
    return reference.linear_score(v, m, sd, MEAN[: v.shape[1]], VAR0[: v.shape[1]])


def twin_linear(v, t, m, sd):
    return reference.linear_score(v, m, sd, MEAN[: v.shape[1]], VAR0[: v.shape[1]])


def every_kind_table(n=5):
    """A program using every row kind and every term count 1..MAX_TERMS:
    scores stored raw, as eps, as a denoised value and in place; normals of
    several streams; a multistep history kept across steps; Langevin."""
    t = np.linspace(0.9, 0.3, n)
    m, sd = marginal(t)
    i = np.arange(n)
    extra = _steptable.STREAM_EXTRA
    groups = [
        ds.StepTable.score_rows(1, 0, 0.0, 1.0, t=t, m=m, sd=sd, step=i),             # E = s(x)
        ds.StepTable.score_rows(4, 0, 0.0, -sd, t=t, m=m, sd=sd, step=i),             # eps
        ds.StepTable.score_rows(5, 0, 1 / m, sd**2 / m, t=t, m=m, sd=sd, step=i),     # denoised
        ds.StepTable.normal_rows(2, interval=i, step=i),                              # step noise
        ds.StepTable.normal_rows(3, interval=i, stream=extra + 1, step=i),            # in-step draw
        # a history register: step k reads what step k-1 left in register 6
        ds.StepTable.combine_rows(6, [(0.5, 5)], t=t[:1], step=[0]),
        ds.StepTable.combine_rows(0, [(0.97, 0), (0.01, 1), (0.02, 4), (0.01, 5), (0.03, 6), (0.05, 2),
                                      (0.01, 3), (-0.004, 1)][: (n % MAX_TERMS) + 1], t=t, step=i),
        ds.StepTable.combine_rows(6, [(0.25, 6), (0.5, 5)], t=t, step=i),
        ds.StepTable.score_rows(7, 0, 1.0, 0.1, t=t, m=m, sd=sd, step=i),            # w0 != 0
        ds.StepTable.score_rows(7, 7, 0.5, 0.05, t=t, m=m, sd=sd, step=i),           # dst == src
        ds.StepTable.combine_rows(0, [(0.9, 0), (0.1, 7)], t=t, step=i),
        ds.StepTable.score_rows(1, 0, t=t, m=m, sd=sd, step=i),
        ds.StepTable.normal_rows(3, interval=i, stream=_steptable.STREAM_CORRECTOR, step=i),
        ds.StepTable.langevin_rows(0, 0, 1, 3, 0.5, 0.16, t=t, step=i),
    ]
    table = ds.StepTable.program(*groups)
    # every term count appears somewhere
    for k in range(1, MAX_TERMS + 1):
        terms = ds.StepTable.combine_rows(0, [(1.0 / (j + 2), 0) for j in range(k)], t=0.2, step=[0])
        table = ds.StepTable.concat(table, ds.StepTable.program(terms))
    return table


def c_run(x, table, score, rng, **kw):
    return ds.run_steps(x, table, score=score, rng=rng, nonfinite="ignore", **kw)


def twin_run(x, table, rng, noise=None):
    return reference.run_table(x, table, key_from_rng(rng), score=twin_linear, noise=noise)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_row_kind_matches_the_twin_bit_for_bit_on_every_simd_path(dtype):
    x = np.random.default_rng(0).standard_normal((23, 3)).astype(dtype)
    table = every_kind_table()
    assert set(np.unique(table.kind)) == set(ROW_KINDS.values())
    saves = np.arange(table.n_steps + 1)
    expected = np.stack([twin_run(x, table, 5)[r + 1] for r in np.r_[-1, table.last_row_of_step()]])
    runs = on_every_simd_path(lambda: [c_run(x, table, score, 5, save=saves).xs
                                       for score in (ds.LinearScore(MEAN, VAR0), python_linear)])
    for path, (builtin, python) in runs.items():
        np.testing.assert_array_equal(builtin, expected, err_msg=f"built-in score, {path}")
        np.testing.assert_array_equal(python, expected, err_msg=f"Python score, {path}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("score", ["builtin", "python"])
def test_threads_blocks_offsets_and_progress_never_change_a_bit(dtype, score, monkeypatch):
    monkeypatch.setattr("diffsde._threads.SERIAL_BELOW", 0)
    monkeypatch.setattr("diffsde._threads.SERIAL_BELOW_WORK", 0)
    monkeypatch.setattr(_engine, "CALLBACK_SERIAL_BELOW", 0)
    fn = ds.LinearScore(MEAN, VAR0) if score == "builtin" else python_linear
    x = np.random.default_rng(1).standard_normal((41, 3)).astype(dtype)
    table = ds.StepTable.concat(*[every_kind_table(4) for _ in range(30)])  # > 100 steps: progress cuts
    whole = c_run(x, table, fn, 9).x
    try:
        for n_threads in (1, 2, 3):
            ds.set_num_threads(n_threads)
            for block_rows in (1, 4, 1000):
                np.testing.assert_array_equal(c_run(x, table, fn, 9, block_rows=block_rows).x, whole)
        np.testing.assert_array_equal(c_run(x, table, fn, 9, progress=True).x, whole)
    finally:
        ds.set_num_threads(None)
    # a slice of the batch with its row_offset computes as in the whole batch
    np.testing.assert_array_equal(c_run(x[7:30], table, fn, 9, row_offset=7).x, whole[7:30])


@pytest.mark.parametrize("dtype", DTYPES)
def test_user_noise_replaces_stream_zero_and_is_never_written(dtype):
    x = np.random.default_rng(2).standard_normal((9, 3)).astype(dtype)
    table = every_kind_table()
    noise = np.random.default_rng(3).standard_normal((table.n_noise_intervals,) + x.shape).astype(dtype)
    noise.flags.writeable = False
    before = noise.copy()
    for score in (ds.LinearScore(MEAN, VAR0), python_linear):
        got = c_run(x, table, score, 4, noise=noise).x
        np.testing.assert_array_equal(got, twin_run(x, table, 4, noise=noise)[-1])
    np.testing.assert_array_equal(noise, before)


# ---- random programs ---------------------------------------------------------------

@st.composite
def programs(draw):
    """Valid random programs: every register read was written before, noise
    registers hold only noise and the score never reads one."""
    n_regs = draw(st.integers(1, 6))
    noise_regs = {n_regs - 1} if n_regs >= 3 else set()
    value_regs = [k for k in range(n_regs) if k not in noise_regs]
    written = {0}
    weight = st.floats(-1.25, 1.25, allow_nan=False).map(lambda v: round(v, 3))
    groups, n_steps = [], draw(st.integers(1, 4))
    for step in range(n_steps):
        t = draw(st.floats(0.05, 1.5))
        m, sd = marginal(t)
        for _ in range(draw(st.integers(1, 5))):
            kind = draw(st.sampled_from(["score", "normal", "combine", "langevin"]))
            if kind == "normal" and noise_regs:
                dst = n_regs - 1
                stream = draw(st.sampled_from([0, 1, 2, 5, _steptable.STREAM_EXTRA]))
                groups.append(ds.StepTable.normal_rows(dst, interval=draw(st.integers(0, 3)), stream=stream,
                                                       t=t, step=[step]))
            elif kind == "score":
                dst = draw(st.sampled_from(value_regs))
                src = draw(st.sampled_from(sorted(written - noise_regs)))
                w0 = draw(st.sampled_from([0.0, 0.5, -1.0]))
                w1 = draw(st.sampled_from([1.0, -0.3, 0.25]))
                groups.append(ds.StepTable.score_rows(dst, src, w0, w1, t=t, m=m, sd=sd, step=[step]))
            elif kind == "langevin" and len(written) > 1:
                dst = draw(st.sampled_from(value_regs))
                srcs = [draw(st.sampled_from(sorted(written - noise_regs))),
                        draw(st.sampled_from(sorted(written))), draw(st.sampled_from(sorted(written)))]
                groups.append(ds.StepTable.langevin_rows(dst, *srcs, draw(st.floats(0, 1)), draw(st.floats(0, 0.5)),
                                                         t=t, step=[step]))
            else:
                dst = draw(st.sampled_from(value_regs))
                k = draw(st.integers(1, MAX_TERMS))
                terms = [(draw(weight), draw(st.sampled_from(sorted(written)))) for _ in range(k)]
                groups.append(ds.StepTable.combine_rows(dst, terms, t=t, step=[step],
                                                        drop_zero=draw(st.booleans())))
            written.add(dst)
    return ds.StepTable.program(*groups)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=programs(), dtype=st.sampled_from(DTYPES), python=st.booleans(),
       block_rows=st.sampled_from([1, 3, 64]))
def test_random_programs_match_the_twin_bit_for_bit(table, dtype, python, block_rows):
    x = np.random.default_rng(4).standard_normal((7, 3)).astype(dtype)
    score = python_linear if python else ds.LinearScore(MEAN, VAR0)
    with np.errstate(all="ignore"):
        got = c_run(x, table, score, 6, block_rows=block_rows).x
        np.testing.assert_array_equal(got, twin_run(x, table, 6)[-1])


# ---- the old kinds as programs ------------------------------------------------------

def test_affine_heun_and_langevin_are_the_documented_programs():
    t = ds.StepTable.affine([0.9, 0.8], [0.1, 0.0], [0.0, 0.3], t=[1.0, 0.5], m=0.5, sd=0.7)
    assert t.kind.tolist() == [SCORE, COMBINE, NORMAL, COMBINE] and t.step.tolist() == [0, 0, 1, 1]
    assert t.src[1, :3].tolist() == [0, 1, -1] and t.w[1, :2].tolist() == [0.9, 0.1]
    assert t.src[3, :3].tolist() == [0, 2, -1] and t.w[3, :2].tolist() == [0.8, 0.3]
    h = ds.StepTable.heun(0.9, 0.1, 0.8, 0.2, t=1.0, t_end=0.5)
    assert h.kind.tolist() == [SCORE, COMBINE, SCORE, COMBINE, COMBINE]
    assert h.dst.tolist() == [1, 3, 1, 3, 0] and h.src[2, 0] == 3 and h.t.tolist() == [1.0, 1.0, 0.5, 0.5, 0.5]
    assert h.w[4, :2].tolist() == [0.5, 0.5] and h.nfe == 2
    lg = ds.StepTable.langevin([0.5, 0.4], 0.16, t=0.3, interval=[4, 5], sub_step=[0, 1], step=[0, 0])
    assert lg.kind.tolist() == [SCORE, NORMAL, LANGEVIN] * 2 and lg.n_steps == 1
    assert lg.stream[1::3].tolist() == [_steptable.STREAM_CORRECTOR + m for m in (0, 1)] == [2, 3]
    assert lg.interval[1::3].tolist() == [4, 5] and lg.w[2::3, :2].tolist() == [[0.5, 0.16], [0.4, 0.16]]


def test_affine_coefficients_round_trip_and_refuse_other_programs():
    table = ds.StepTable.affine([0.9, 0.8, 1.0], [0.1, 0.0, 0.2], [0.0, 0.3, 0.4], t=[1.0, 0.5, 0.2],
                                m=[0.5, 0.6, 0.7], sd=[0.7, 0.6, 0.5], interval=[2, 1, 0])
    coef = table.affine_coefficients()
    again = ds.StepTable.affine(**coef)
    for name in ("kind", "dst", "src", "w", "t", "m", "sd", "interval", "stream", "step"):
        np.testing.assert_array_equal(getattr(again, name), getattr(table, name), err_msg=name)
    with pytest.raises(ValueError, match="needs a table of affine steps"):
        ds.StepTable.heun(0.9, 0.1, 0.8, 0.2, t=1.0, t_end=0.5).affine_coefficients()


def test_table_moments_of_a_program_equal_the_affine_recursion():
    """The register-tracking moments of reference.table_moments against the
    one-stage recursion m <- (a + b l) m + b r, v <- (a + b l)^2 v + c^2."""
    t = np.linspace(0.9, 0.1, 6)
    m, sd = marginal(t)
    a, b, c = 1 + 0.05 * t, 0.1 * t, 0.2 * np.sqrt(t)
    table = ds.StepTable.affine(a, b, c, t=t, m=m, sd=sd)
    mean, var = 0.3, 1.7
    for k in range(6):
        big_v = m[k] ** 2 * VAR0[0] + sd[k] ** 2
        gain = a[k] - b[k] / big_v
        mean, var = gain * mean + b[k] * m[k] * MEAN[0] / big_v, gain**2 * var + c[k] ** 2
    got = reference.table_moments(table, 0.3, 1.7, MEAN[0], VAR0[0])
    assert got[0] == pytest.approx(mean, rel=1e-13) and got[1] == pytest.approx(var, rel=1e-13)


# ---- constants shared with C ---------------------------------------------------------

def test_codes_come_from_the_c_core_and_streams_never_collide():
    assert ROW_KINDS == _core.ROW_KINDS == ds.StepTable.ROW_KINDS
    assert MAX_TERMS == _core.MAX_TERMS == 8
    streams = _core.STREAMS
    assert (streams["step"], streams["initial"], streams["corrector"]) == (0, 1, 2)
    corrector = (streams["corrector"], streams["corrector"] + streams["max_sub_steps"])
    extra = (streams["extra"], streams["extra"] + streams["max_extra"])
    assert corrector[1] <= streams["brownian"] < extra[0] and extra[1] <= 2**32
    from diffsde import brownian
    assert brownian.STREAM_BROWNIAN == streams["brownian"]
    assert _engine._SCORE_PYTHON == _core.SCORE_KINDS["python"]


def test_corrector_sub_steps_are_capped_below_the_brownian_stream():
    with pytest.raises(ValueError, match=r"sub_step must lie in \[0, 1073741824\)"):
        ds.StepTable.langevin(1.0, 0.1, t=0.5, sub_step=2**30)
    with pytest.raises(ValueError, match=r"sub_step must lie in \[0, 1073741824\) .*; got -1"):
        ds.StepTable.langevin(1.0, 0.1, t=0.5, sub_step=-1)


def test_s_is_a_deprecated_alias_of_sd():
    with pytest.warns(DeprecationWarning, match="keyword s .* deprecated; pass sd="):
        old = ds.StepTable.affine([0.9], 0.1, t=0.5, m=0.8, s=0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = ds.StepTable.affine([0.9], 0.1, t=0.5, m=0.8, sd=0.6)
    np.testing.assert_array_equal(old.sd, new.sd)
    with pytest.warns(DeprecationWarning, match="pass sd_end="):
        ds.StepTable.heun(0.9, 0.1, 0.9, 0.1, t=0.5, t_end=0.2, sd=0.3, s_end=0.2)
    with pytest.raises(TypeError, match="pass sd only; s is its deprecated name"):
        ds.StepTable.langevin(1.0, 0.1, t=0.5, sd=0.3, s=0.3)


# ---- the constructor's rules -------------------------------------------------------

def _combine(n=2, **changes):
    src = np.full((n, MAX_TERMS), -1, np.int32)
    src[:, 0] = 0
    w = np.zeros((n, MAX_TERMS))
    w[:, 0] = 0.9
    cols = dict(kind=np.full(n, COMBINE, np.int32), dst=np.zeros(n, np.int32), src=src, w=w, t=np.zeros(n),
                m=np.ones(n), sd=np.zeros(n), interval=np.zeros(n, np.int64), stream=np.zeros(n, np.int64),
                step=np.arange(n))
    cols.update(changes)
    return cols


def _with(cols, name, row, index, value):
    arr = cols[name].copy()
    arr[(row,) + index] = value
    cols[name] = arr
    return cols


def _normal_row_0(cols, dst):
    """Row 0 becomes a normal row into register dst."""
    cols = _with(_with(_with(cols, "kind", 0, (), NORMAL), "dst", 0, (), dst), "src", 0, (0,), -1)
    return _with(cols, "w", 0, (0,), 0.0)


@pytest.mark.parametrize("edit, message", [
    (lambda c: _with(c, "src", 1, (slice(None),), [0, -1, 0, -1, -1, -1, -1, -1]),
     r"row 1 \(combine, step 1\): its sources .* continue after a -1"),
    (lambda c: _with(c, "src", 0, (0,), -1), r"row 0 \(combine, step 0\): it reads 0 registers; this kind reads 1 to 8"),
    (lambda c: _with(c, "w", 0, (3,), 0.5), r"row 0 .*: it has weights .* beyond its terms"),
    (lambda c: _with(c, "w", 1, (0,), np.inf), r"column w is inf at row 1"),
    (lambda c: _with(c, "sd", 0, (), -0.5), r"column sd \(marginal std\) is -0.5 < 0 at row 0"),
    (lambda c: _with(_with(c, "kind", 0, (), SCORE), "dst", 0, (), 1),
     r"row 0 \(score, step 0\): a score row needs a score weight w1 != 0"),
    (lambda c: _with(_with(c, "src", 1, (0,), 2), "dst", 0, (), 1),
     r"row 1 \(combine, step 1\): it reads register 2 before any row writes it"),
    (lambda c: _with(c, "src", 0, (0,), 1), r"row 0 \(combine, step 0\): it reads register 1 before"),
    (lambda c: _normal_row_0(c, dst=1) | dict(dst=np.array([1, 1], np.int32)),
     r"row 0 \(normal, step 0\): register 1 is written by normal rows and by other rows"),
    (lambda c: _normal_row_0(c, dst=0), r"register 0 is written by normal rows and by other rows \(or is the state\)"),
])
def test_bad_programs_are_refused_naming_the_row_and_the_rule(edit, message):
    with pytest.raises(ValueError, match=message):
        ds.StepTable(**edit(_combine()))


def test_a_score_never_reads_a_noise_register_and_langevin_weights_are_non_negative():
    with pytest.raises(ValueError, match=r"row 1 \(score, step 0\): the score is evaluated on register 2, "
                                         r"which holds noise"):
        ds.StepTable.program(ds.StepTable.normal_rows(2, interval=0, step=[0]),
                             ds.StepTable.score_rows(1, 2, t=0.5, step=[0]))
    with pytest.raises(ValueError, match=r"langevin rows need r = w0 >= 0 and snr = w1 >= 0; got r = -0.5"):
        ds.StepTable.program(ds.StepTable.score_rows(1, t=0.5, step=[0]),
                             ds.StepTable.normal_rows(2, interval=0, step=[0]),
                             ds.StepTable.langevin_rows(0, 0, 1, 2, -0.5, 0.1, step=[0]))


def test_program_needs_row_groups_and_builders_check_their_terms():
    with pytest.raises(TypeError, match="StepTable.program takes Rowss; argument 0 is a StepTable"):
        ds.StepTable.program(ds.StepTable.affine([1.0]))
    with pytest.raises(ValueError, match="combine_rows takes 1 to 8 \\(weight, src\\) terms; got 9"):
        ds.StepTable.combine_rows(0, [(1.0, 0)] * 9)
    with pytest.raises(ValueError, match="steps must start at 0"):
        ds.StepTable.program(ds.StepTable.combine_rows(0, [(1.0, 0)], step=[1, 2]))


def test_combine_rows_drop_zero_weights_but_keep_one_term():
    rows = ds.StepTable.combine_rows(0, [(np.array([0.0, 1.0, 0.0]), 0), (np.array([2.0, 0.0, 0.0]), 0)])
    assert isinstance(rows, Rows)
    assert rows.src[:, :2].tolist() == [[0, -1], [0, -1], [0, -1]]
    assert rows.w[:, 0].tolist() == [2.0, 1.0, 0.0]


def test_carried_registers_keep_progress_cuts_between_whole_histories():
    """A two-step history (register 1 written at step k, read at k + 1 and
    k + 2) forbids cuts before the steps that read it."""
    n = 150
    i = np.arange(n)
    table = ds.StepTable.program(
        ds.StepTable.combine_rows(0, [(0.99, 0), (0.01, 1)], step=i[2:]),
        ds.StepTable.combine_rows(0, [(0.999, 0), (0.001, 1)], step=i[1:]),
        ds.StepTable.combine_rows(1, [(0.5, 0)], step=i),
    )
    carried = table.carried_steps()
    assert not carried[0] and carried[1:].all()
    x = np.random.default_rng(5).standard_normal((3, 2))
    np.testing.assert_array_equal(ds.run_steps(x, table, progress=True, save=i).xs,
                                  ds.run_steps(x, table, save=i).xs)


def test_workspace_bytes_count_one_block_per_written_scratch_register():
    table = every_kind_table()
    written = np.unique(table.dst[table.dst > 0]).size
    lin = ds.LinearScore(MEAN, VAR0)
    kind, params = lin.c_params(3)
    rows = 10
    work = _core.score_work_size(kind, params, 3, rows) + 1
    threads = min(ds.get_num_threads(), 10) if _core.openmp() else 1
    # built-in: every written scratch register and a score buffer (rows that
    # do not store the raw score), a block each
    assert _engine.workspace_bytes(table, kind, params, 100, 3, 8, rows) == threads * (
        (written + 1) * rows * 3 * 8 + 8 * work)
    # Python scores: whole-batch registers, counted by prepare instead
    assert _engine.workspace_bytes(table, _engine._SCORE_PYTHON, (), 100, 3, 8, rows) == threads * 8


# ---- a sampler from row groups --------------------------------------------------------

def dpmpp_2m(process, t):
    r"""DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) on the probability-flow
    ODE of x_t = m x_0 + s z, as a register program: D = denoised value
    (x + s^2 score)/m, h_k = lambda_{k+1} - lambda_k, lambda = log(m/s),

    .. math:: x_{k+1} = \frac{s_{k+1}}{s_k} x_k - m_{k+1}(e^{-h_k} - 1) D'_k,
              \quad D'_k = (1 + \tfrac{1}{2 r_k}) D_k - \tfrac{1}{2 r_k} D_{k-1},
              \quad r_k = h_{k-1}/h_k

    (D'_0 = D_0). The history D_{k-1} lives in register 2 between steps."""
    m, s = process.marginal_coefficients(t)
    lam = np.log(m / s)
    h = np.diff(lam)
    n = h.size
    i = np.arange(n)
    c = -m[1:] * np.expm1(-h)
    r = np.r_[1.0, h[:-1] / h[1:]]
    cur, prev = np.where(i == 0, 1.0, 1 + 0.5 / r), np.where(i == 0, 0.0, -0.5 / r)
    return ds.StepTable.program(
        ds.StepTable.score_rows(1, 0, 1 / m[:-1], s[:-1] ** 2 / m[:-1], t=t[:-1], m=m[:-1], sd=s[:-1], step=i),
        ds.StepTable.combine_rows(0, [(s[1:] / s[:-1], 0), (c * cur, 1), (c * prev, 2)], t=t[1:], step=i),
        ds.StepTable.combine_rows(2, [(1.0, 1)], t=t[1:], step=i),
    )


def test_dpm_solver_2m_from_row_groups_converges_at_second_order():
    """Gaussian data N(mu, v0): the probability-flow ODE maps x_T to
    mu + sqrt(v0) (x_T - m_T mu) / sqrt(m_T^2 v0 + s_T^2) exactly; the
    two-step solver's error falls 4x per halving of the step."""
    vp = ds.VPSDE()
    mu, v0 = 0.7, 0.3
    score = ds.LinearScore(mu, v0)
    x = np.linspace(-2.0, 2.0, 9)[:, None]
    t_end, t_start = 1e-3, 1.0
    m_T, s_T = vp.marginal_coefficients(t_start)
    m_0, s_0 = vp.marginal_coefficients(t_end)
    u = (x - m_T * mu) / np.sqrt(m_T**2 * v0 + s_T**2)
    exact = m_0 * mu + np.sqrt(m_0**2 * v0 + s_0**2) * u
    errors = []
    for n in (32, 64, 128, 256):
        t = np.linspace(t_start, t_end, n + 1)
        table = dpmpp_2m(vp, t)
        assert table.nfe == n and table.carried_steps()[1:].all()
        errors.append(np.max(np.abs(ds.run_steps(x, table, score=score).x - exact)))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.5) & (ratios < 4.6)), ratios


@pytest.mark.parametrize("layout", ["writeable", "read-only view of a writeable array"])
def test_table_columns_that_can_change_mid_run_are_copied_first(layout):
    """C reads a StepTable's own (read-only) columns in place, but copies any
    column the run's Python could change: here a score callback rewrites the
    weights after the first row, and the run still uses the original ones."""
    table = ds.StepTable.affine(np.full(4, 0.5), 0.25, 0.0, t=0.5)
    x = np.random.default_rng(6).standard_normal((3, 2))
    expected = ds.run_steps(x, table, score=lambda v, t: -v).x
    w = np.array(table.w)  # writeable
    cols = {name: getattr(table, name) for name in ("kind", "dst", "src", "t", "m", "sd", "interval", "stream")}
    cols["w"] = w if layout == "writeable" else w.view()
    if layout != "writeable":
        cols["w"].flags.writeable = False
    cols["n_registers"] = table.n_registers

    def score(row):
        w[:] = 7.0  # what a careless callback could do
        return np.ascontiguousarray(-work)

    work = np.array(x)
    registers = (work,) + tuple(np.zeros_like(work) for _ in range(table.n_registers - 1))
    options = dict(key=0, noise=None, score_kind=_engine._SCORE_PYTHON, score_params=(), callback=score,
                   registers=registers, save_rows=np.zeros(0, np.int64), snapshots=np.zeros((0, 3, 2)),
                   check_finite=True, stop_on_nonfinite=True, num_threads=1, block_rows=3, row_offset=0)
    assert _core.run(work, cols, options) == -1
    np.testing.assert_array_equal(work, expected)

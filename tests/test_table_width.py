"""Step tables as narrow as their rows: the width (terms per row) C reads
from the table, the builders' fast path that skips the constructor's
checks, and the values a run derives from a table."""
import numpy as np
import pytest

import diffsde as ds
from diffsde import _core, _engine
from diffsde._rng import key_from_rng
from diffsde._steptable import _COLUMNS, MAX_TERMS, ROW_KINDS

SCORE, NORMAL, COMBINE, LANGEVIN = (ROW_KINDS[k] for k in ("score", "normal", "combine", "langevin"))


def _checked(table):
    """The same columns through the public constructor, every check run."""
    return ds.StepTable(**{name: np.array(getattr(table, name)) for name in _COLUMNS})


def _derived(table):
    return (table.n_registers, table.nfe, table.n_steps, table.n_noise_intervals,
            table.last_row_of_step().tolist(), table._written_scratch().tolist(),
            _engine._needs_score_buffer(table))


def _builder_tables():
    vp, ve = ds.VPSDE(), ds.VESDE()
    a, b, c = np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.3]), np.array([0.3, 0.2, 0.1])
    t = np.array([0.9, 0.6, 0.3])
    yield "affine a,0,c", ds.StepTable.affine(a, 0.0, c, t=t)
    yield "affine a,b,c", ds.StepTable.affine(a, b, c, t=t, m=a, sd=c, interval=[5, 3, 1], stream=[0, 7, 0])
    yield "affine a,b,0", ds.StepTable.affine(a, b, t=t)
    yield "affine a only", ds.StepTable.affine(a)
    yield "affine mixed", ds.StepTable.affine(a, [0.1, 0.0, 0.3], [0.0, 0.2, 0.1], t=t)
    yield "affine empty", ds.StepTable.affine(np.zeros(0))
    yield "heun", ds.StepTable.heun(a, b, a, b, t=t, t_end=t / 2, m=a, sd=c, m_end=b, sd_end=c)
    yield "heun mixed", ds.StepTable.heun(a, [0.1, 0.0, 0.2], a, [0.0, 0.1, 0.2], t=t, t_end=t / 2)
    yield "heun no score", ds.StepTable.heun(a, 0.0, a, 0.0, t=t, t_end=t / 2)
    yield "langevin", ds.StepTable.langevin([0.5, 0.4], 0.16, t=0.3, interval=[4, 5], sub_step=[0, 1], step=[0, 0])
    yield "concat", ds.StepTable.concat(ds.StepTable.affine(a, 0.0, c), ds.StepTable.heun(a, b, a, b, t=t, t_end=t))
    for process in (vp, ve):
        for method in [m for m in ds.methods.available(process) if m != "rk45"]:  # rk45 has no fixed table
            yield f"{type(process).__name__} {method}", ds.methods.table(process, method, 6)
        yield f"{type(process).__name__} em + langevin", ds.methods.table(process, "em", 6, corrector="langevin")
    yield "VPSDE forward em", ds.methods.table(vp, "em", 6, direction="forward")


@pytest.mark.parametrize("name, table", list(_builder_tables()), ids=lambda v: v if isinstance(v, str) else "")
def test_builders_make_the_tables_the_checked_constructor_makes(name, table):
    """The builders skip the constructor's checks and seed the values a run
    derives from the table: both must be what the constructor, computing
    everything afresh, gets from the same columns."""
    checked = _checked(table)
    for col in _COLUMNS:
        got = getattr(table, col)
        want = getattr(checked, col)
        # the constructor may narrow further: the columns past its width are unused
        if col in ("src", "w"):
            assert np.all(got[:, want.shape[1]:] == (-1 if col == "src" else 0))
            got = got[:, :want.shape[1]]
        assert got.dtype == want.dtype and got.flags.c_contiguous and not got.flags.writeable, col
        np.testing.assert_array_equal(got, want, err_msg=col)
    assert _derived(table) == _derived(checked)


def test_tables_store_only_the_term_columns_their_rows_use():
    """A row was 156 bytes with 8 term columns whatever it used; now the
    table is as wide as its widest row: Euler-Maruyama forward needs two
    (x, noise), reverse three (x, score, noise), Heun two, Langevin three."""
    vp = ds.VPSDE()
    forward = ds.methods.table(vp, "em", 10, direction="forward")
    assert forward.src.shape == forward.w.shape == (20, 2)
    assert ds.methods.table(vp, "em", 10).src.shape == (30, 3)
    assert ds.methods.table(vp, "ode_heun", 10).w.shape[1] == 2
    assert ds.StepTable.langevin(0.1, 0.2, t=0.5).src.shape == (3, 3)
    # a user's 8-wide table keeps the columns its rows use, values unchanged
    n = 4
    src = np.full((n, MAX_TERMS), -1, np.int32)
    src[:, 0] = 0
    w = np.zeros((n, MAX_TERMS))
    w[:, 0] = 0.9
    user = ds.StepTable(kind=np.full(n, COMBINE, np.int32), dst=np.zeros(n, np.int32), src=src, w=w,
                        t=np.zeros(n), m=np.ones(n), sd=np.zeros(n), interval=np.zeros(n, np.int64),
                        stream=np.zeros(n, np.int64), step=np.arange(n))
    assert user.src.shape == user.w.shape == (n, 1)
    assert user.src[:, 0].tolist() == [0] * n and user.w[:, 0].tolist() == [0.9] * n
    x = np.linspace(-1, 1, 6).reshape(3, 2)
    np.testing.assert_array_equal(ds.run_steps(x, user).x, x * 0.9 * 0.9 * 0.9 * 0.9)


def _mapping(table, width):
    """The table's columns as a mapping for _core.run, src/w padded to ``width``."""
    cols = {name: getattr(table, name) for name in _COLUMNS if name != "step"}
    for name, fill in (("src", -1), ("w", 0.0)):
        col = np.full((table.n_rows, width), fill, cols[name].dtype)
        col[:, :min(width, cols[name].shape[1])] = cols[name][:, :width]
        cols[name] = col
    cols["n_registers"] = table.n_registers
    return cols


def _options(table, score=ds.LinearScore(0.5, 2.0), x_shape=(4, 3)):
    kind, params = score.c_params(x_shape[1])
    return {"key": key_from_rng(7), "noise": None, "score_kind": kind, "score_params": params, "callback": None,
            "registers": (None,) * table.n_registers, "check_finite": True, "stop_on_nonfinite": True,
            "num_threads": 1, "block_rows": 2, "row_offset": 0,
            "save_rows": np.zeros(0, np.int64), "snapshots": np.zeros((0, *x_shape))}


def test_c_reads_the_width_from_the_table_and_refuses_a_bad_one():
    """C took every table as (rows, 8): a narrow table was refused (src
    'has 30 elements, expected 120'). It now reads the width from src,
    any width 1..MAX_TERMS gives the same bits, and a width above
    MAX_TERMS, a w that disagrees, or a score row in a one-term table
    (it reads two weights) is refused before any row is read."""
    table = ds.methods.table(ds.VPSDE(), "em", 10)
    x0 = np.random.default_rng(3).standard_normal((4, 3))
    results = []
    for width in (3, 5, MAX_TERMS):
        x = x0.copy()
        assert _core.run(x, _mapping(table, width), _options(table)) == -1
        results.append(x)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[0], ds.run_steps(x0, table, score=ds.LinearScore(0.5, 2.0), rng=7,
                                                           block_rows=2).x)
    too_wide = _mapping(table, MAX_TERMS + 1)
    with pytest.raises(ValueError, match=rf"table.src has width {MAX_TERMS + 1}; a row takes 1 to {MAX_TERMS} terms"):
        _core.run(x0.copy(), too_wide, _options(table))
    disagree = _mapping(table, 3)
    disagree["w"] = np.zeros((table.n_rows, 4))
    with pytest.raises(ValueError, match=r"table.w must have the shape of table.src, \(30, 3\)"):
        _core.run(x0.copy(), disagree, _options(table))
    flat = _mapping(table, 3)
    flat["src"] = flat["src"][:, 0].copy()
    with pytest.raises(ValueError, match=r"table.src must be a 2-D array of 30 rows"):
        _core.run(x0.copy(), flat, _options(table))
    one = _mapping(ds.StepTable.affine([0.9, 0.8], [0.1, 0.1], t=0.5), 1)
    with pytest.raises(ValueError, match=r"row 0 has kind 0, dst 1 or sources out of range"):
        _core.run(x0.copy(), one, _options(table))


def test_the_constructor_needs_two_weights_for_score_and_langevin_rows():
    n = 2
    cols = dict(kind=np.array([SCORE, COMBINE], np.int32), dst=np.array([1, 0], np.int32),
                src=np.array([[0], [1]], np.int32), w=np.array([[0.0], [1.0]]), t=np.zeros(n), m=np.ones(n),
                sd=np.ones(n), interval=np.zeros(n, np.int64), stream=np.zeros(n, np.int64), step=np.zeros(n, np.int64))
    with pytest.raises(ValueError, match=r"row 0 \(score, step 0\): its kind reads two weights \(w0, w1\), but "
                                         r"the table has width 1"):
        ds.StepTable(**cols)


@pytest.mark.parametrize("build, message", [
    (lambda: ds.StepTable.affine([0.9, 0.8], 0.1, 0.2, sd=[0.1, -0.5]), r"sd \(marginal std\) is -0.5 < 0 at step 1"),
    (lambda: ds.StepTable.affine([0.9, 0.8], 0.0, 0.2, interval=[0, 2**32]),
     r"column interval has the value 4294967296; its entries must lie in \[0, 4294967295\]"),
    (lambda: ds.StepTable.affine([0.9, 0.8], 0.0, 0.2, stream=-1), r"column stream has the value -1"),
    (lambda: ds.StepTable.affine([0.9, 0.8], [0.1, 0.0], [0.0, 0.2], sd=-1.0), r"sd \(marginal std\) is -1.0 < 0"),
    (lambda: ds.StepTable.heun(0.9, 0.1, 0.9, 0.1, t=0.5, t_end=0.2, sd_end=-0.25), r"is -0.25 < 0 at step 0"),
    (lambda: ds.StepTable.affine([0.9, np.nan], 0.0, 0.2), r"column a is nan at row 1"),
])
def test_the_builders_fast_path_still_refuses_what_the_constructor_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_concat_and_interleave_recheck_the_noise_registers():
    """Joined tables are valid part by part; what ties them together is
    checked again: a register holding noise in one part and a state in
    another is refused."""
    noise_in_2 = ds.StepTable.affine([0.9], 0.0, 0.1)
    writes_2 = ds.StepTable.program(ds.StepTable.combine_rows(2, [(1.0, 0)], step=[0]),
                                    ds.StepTable.combine_rows(0, [(0.5, 0), (0.5, 2)], step=[0]))
    for join in (ds.StepTable.concat, ds.StepTable.interleave):
        with pytest.raises(ValueError, match="register 2 is written by normal rows and by other rows"):
            join(noise_in_2, writes_2)

"""The validated entry point to the C step driver: :func:`run_steps`.

Everything is checked here, before C sees it; ``diffsde._core.run`` only
re-checks what would otherwise crash. A reader follows a run from a method's
table (``StepTable``) to :func:`run_steps` to ``csrc/driver.c`` and back.
"""
import math
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from . import _core
from ._validation import check_fits, shown, working_dtype
from ._frameworks import array_in, state_in
from ._rng import key_from_rng
from ._steptable import NORMAL, SCORE, StepTable
from ._threads import get_num_threads, threads_for

#: Target number of state elements per block: the block, its noise, score
#: and Heun buffers stay in the L2 cache while every step runs over it.
BLOCK_ELEMENTS = 4096
#: Below this many state elements a run with a Python score is serial. The
#: callback runs on one thread while the others wait, and it costs about as
#: much as the step itself, so a second thread saves little; measured with
#: benchmarks/callback.py on 2 cores, 2 threads break even from about 2**17.
CALLBACK_SERIAL_BELOW = 2**17
#: The largest block_rows C accepts (an int64).
MAX_BLOCK_ROWS = 2**63 - 1

#: Score kind codes, defined once in the C core (csrc/scores.h).
_SCORE_NONE, _SCORE_LINEAR, _SCORE_PYTHON, _SCORE_MIXTURE, _SCORE_EMPIRICAL = (
    _core.SCORE_KINDS[k] for k in ("none", "linear", "python", "mixture", "empirical"))
_NONFINITE = ("raise", "warn", "ignore")


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_steps` returns.

    Attributes
    ----------
    x : ndarray
        The final state, shape of the input (``out`` when given).
    xs : ndarray
        Saved states, shape ``(len(saved), *x.shape)``.
    saved : ndarray of int
        For each saved state, the number of steps taken before it (0 = the
        initial state).
    nfe : int
        Score evaluations of the whole batch.
    """

    x: np.ndarray
    xs: np.ndarray
    saved: np.ndarray
    nfe: int


def describe_row(table, row):
    """'step k of N (t = ...)' for messages about a table row."""
    return f"step {int(table.step[row])} of {table.n_steps} (t = {float(table.t[row]):.6g})"


def as_state(x, dtype=None, name="x"):
    """``x`` as an array with a batch axis, and the dtype a run computes in."""
    x = np.asarray(x)
    dtype = working_dtype(x.dtype, dtype, name)
    if x.ndim == 0:
        raise ValueError(f"{name} must have a batch axis: shape (batch, *event); got a scalar")
    return x, dtype


def _score_source(score, table, dim, event_ndim):
    """(kind, params) for _core.run: built-in scores give C arrays, a
    callable runs in Python."""
    if score is None:
        if table.nfe:
            row = int(np.flatnonzero(table.needs_score)[0])
            raise ValueError(
                f"the step table evaluates a score ({table.nfe} rows, first at "
                f"{describe_row(table, row)}) but score=None"
            )
        return _SCORE_NONE, ()
    c_params = getattr(score, "c_params", None)
    if c_params is not None:
        if event_ndim > 1:
            raise ValueError(
                f"built-in scores need states of shape (batch,) or (batch, d); got event "
                f"shape with {event_ndim} axes. Flatten the event axes or pass a callable score"
            )
        kind, params = c_params(dim)
        _check_builtin_defined(score, kind, table)
        return kind, params
    if callable(score):
        return _SCORE_PYTHON, ()
    raise TypeError(f"score must be None, a built-in score or a callable score(x, t); got {score!r}")


def _check_builtin_defined(score, kind, table):
    """A built-in score needs a non-degenerate marginal wherever it is used."""
    rows = table.needs_score
    if kind == _SCORE_EMPIRICAL:
        bad = rows & ~(table.sd > 0)
        why = "the smoothed empirical score needs s(t) > 0"
    else:
        bad = rows & (table.m == 0) & (table.sd == 0)
        why = "m(t) = s(t) = 0 leaves no density"
    if np.any(bad):
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{score!r} is evaluated at {describe_row(table, row)}, where {why}")


def _checked_score(value, shape, dtype, where, check_finite, state):
    value = np.asarray(value)
    if value.shape != shape:
        raise ValueError(f"the score returned shape {value.shape} at {where}; expected {shape}, the shape of x")
    if value.dtype.kind not in "biuf" or not np.can_cast(value.dtype, dtype, casting="same_kind"):
        raise TypeError(f"the score returned dtype {value.dtype} at {where}; expected real values castable to {dtype}")
    if check_finite and not np.all(np.isfinite(value)):
        bad = np.argwhere(~np.isfinite(value))[0]
        raise FloatingPointError(
            f"the score returned a non-finite value {value[tuple(bad)]} at index {tuple(bad.tolist())}, {where}"
        )
    if np.may_share_memory(value, state):
        return np.array(value, dtype=dtype, order="C")
    return np.require(value, dtype=dtype, requirements=["C", "A"])


def _python_score_callback(score, table, views, dtype, check_finite, registers, evaluate=None,
                            denoised=None):
    """The function C calls for a Python score: callback(row) -> the score
    of the register the row reads, ``views[src]`` (read-only views of the
    registers in the caller's shape).

    ``callback.row_offset`` maps the rows of a chunk of the table (progress
    runs) back to the whole table, for messages and times. ``evaluate(row,
    x)``, when given, replaces ``score(x, t_row)`` (a built-in score run
    through this path for a step callback). ``denoised``: an array of the
    state's shape that receives, at each step's first score row, the
    denoised estimate (x + sd^2 score) / m of that row (step callbacks).
    """

    times = table.t.tolist()
    reads = table.src[:, 0].tolist()
    shape = views[0].shape
    keep = {}
    if denoised is not None:
        for row in _first_score_rows(table):
            if row >= 0:
                keep[int(row)] = (float(table.sd[row]) ** 2, float(table.m[row]))

    def callback(row):
        row += callback.row_offset
        src = reads[row]
        try:
            if evaluate is None:
                value = score(views[src], times[row])
            else:
                value = evaluate(row, views[src])
        except Exception as exc:
            exc.add_note(f"diffsde: raised by the score at {describe_row(table, row)}")
            raise
        # The common case costs a few attribute checks: a fresh array is
        # writeable, while views of the (read-only) registers are not.
        # Anything else goes through the full check, which also writes the
        # messages. C scans the values for inf/NaN and calls nonfinite_error
        # on a hit.
        if not (type(value) is np.ndarray and value.dtype == dtype and value.shape == shape
                and value.flags.c_contiguous and value.flags.aligned and value.flags.writeable):
            value = _checked_score(value, shape, dtype, describe_row(table, row), check_finite,
                                   registers[src])
        if row in keep:
            # the state this row read is still intact here: C applies the
            # row only after the callback returns
            sd2, m = keep[row]
            np.multiply(value, sd2, out=denoised)
            np.add(denoised, views[src], out=denoised)
            np.divide(denoised, m, out=denoised)
        return value

    def nonfinite_error(row, value):
        row += callback.row_offset
        _checked_score(value, shape, dtype, describe_row(table, row), True, value)

    callback.row_offset = 0
    callback.nonfinite_error = nonfinite_error
    return callback


def _first_score_rows(table):
    """Per step, the row of its first score evaluation, or -1."""
    first = np.full(table.n_steps, -1, np.int64)
    rows = np.flatnonzero(table.kind == SCORE)
    steps, at = np.unique(table.step[rows], return_index=True)
    first[steps] = rows[at]
    return first


def _builtin_evaluator(plan, table, key, threads, row_offset):
    """evaluate(row, x) -> the built-in score of the state ``x`` at ``row``'s
    (t, m, sd): a one-row table that writes the raw score into a copy of
    ``x``, run by the same C kernels as a run without a step callback."""
    batch, dim = plan.x.shape[0], math.prod(plan.x.shape[1:])
    none = np.empty((0, batch, dim), dtype=plan.dtype)
    src = np.full((1, table.src.shape[1]), -1, np.int32)
    src[0, 0] = 0
    w = np.zeros((1, table.w.shape[1]))
    w[0, 1] = 1.0
    options = {"key": key, "noise": None, "score_kind": plan.score_kind,
               "score_params": plan.score_params, "callback": None, "registers": (None,),
               "check_finite": False, "stop_on_nonfinite": False, "num_threads": threads,
               "block_rows": plan.block_rows, "row_offset": row_offset,
               "save_rows": np.empty(0, np.int64), "snapshots": none}

    dst = np.zeros(1, np.int32)

    def evaluate(row, x):
        value = np.array(x, dtype=plan.dtype, order="C")
        rows = {"kind": table.kind[row:row + 1], "t": table.t[row:row + 1], "m": table.m[row:row + 1],
                "sd": table.sd[row:row + 1], "interval": table.interval[row:row + 1],
                "stream": table.stream[row:row + 1], "dst": dst, "src": src, "w": w, "n_registers": 1}
        _core.run(value.reshape(batch, dim), rows, options)
        return value

    return evaluate


def _check_callback(callback, table, score_kind, noise):
    if not callable(callback):
        raise TypeError(f"callback must be a callable callback(info) or None; got {shown(callback)}")
    # a run with a callback is cut before every step; what C keeps only for
    # one call (block registers without a score, the pointer of a register
    # to the caller's noise) must not be carried over a step
    carried = table.carried_steps().any()
    if carried and (score_kind == _SCORE_NONE or (noise is not None and _carries_noise(table))):
        raise ValueError("callback: this step table carries a register over steps, which a run "
                         "with a step callback cannot do without a score or with a noise array")
    first = _first_score_rows(table)
    rows = first[first >= 0]
    bad = rows[table.m[rows] == 0]
    if bad.size:
        row = int(bad[0])
        raise ValueError(f"callback: the denoised estimate (x + s^2 score) / m is undefined at "
                         f"{describe_row(table, row)}, where m(t) = 0; start the run below that time")


def _carries_noise(table):
    """Is a register written by a normal row read in a later step?"""
    for k in np.unique(table.dst[table.kind == NORMAL]):
        writes = np.flatnonzero(table.dst == k)
        reads = np.flatnonzero((table.src == k).any(axis=1))
        seen = writes[np.searchsorted(writes, reads) - 1]
        if np.any(table.step[seen] < table.step[reads]):
            return True
    return False


def _callback_state(value, shape, dtype, step, check_finite):
    """A state returned by the step callback, checked like a score."""
    value = np.asarray(value)
    where = f"after step {step + 1}"
    if value.shape != shape:
        raise ValueError(f"the callback returned shape {value.shape} {where}; expected {shape}, the shape of x")
    if value.dtype.kind not in "biuf" or not np.can_cast(value.dtype, dtype, casting="same_kind"):
        raise TypeError(f"the callback returned dtype {value.dtype} {where}; expected real values "
                        f"castable to {dtype}")
    return value


def _noise_array(noise, table, shape, dtype):
    if noise is None:
        return None
    needed = table.n_noise_intervals
    if needed == 0:
        raise ValueError("noise was given but this step table draws no step noise")
    noise = np.asarray(noise)
    expected = (needed,) + shape
    if noise.shape != expected:
        raise ValueError(f"noise must have shape (intervals, *x.shape) = {expected}; got {noise.shape}")
    if noise.dtype.kind not in "biuf" or not np.can_cast(noise.dtype, dtype, casting="same_kind"):
        raise TypeError(f"noise must be real, castable to {dtype}; got {noise.dtype}")
    # C reads native, aligned, C-ordered values: an unaligned (np.frombuffer
    # at an odd offset), byte-swapped or strided array is copied, once.
    noise = np.require(noise, dtype=dtype, requirements=["C", "A"])
    if not np.all(np.isfinite(noise)):
        raise ValueError("noise contains non-finite values")
    return noise


def _save_rows(save, table):
    n_steps = table.n_steps
    if save is None:
        return np.array([0, n_steps], dtype=np.int64), np.array([-1, table.n_rows - 1], dtype=np.int64)
    else:
        arr = np.asarray(save)
        if arr.size == 0:
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"save must be step counts (integers); got dtype {arr.dtype}")
        saved = arr.astype(np.int64).ravel()
        if saved.size > 1 and not (saved[1:] > saved[:-1]).all():
            saved = np.unique(saved)
        if saved.size and (saved[0] < 0 or saved[-1] > n_steps):
            raise ValueError(f"save entries must lie in [0, {n_steps}] (step counts); got {save!r}")
    # the row ending step k - 1 for k >= 1, -1 (before the first row) for k = 0
    rows = table.last_row_of_step()[np.maximum(saved - 1, 0)].astype(np.int64)
    rows[saved == 0] = -1
    return saved, rows


def _output(out, shape, dtype):
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array; got {type(out).__name__}")
    if out.shape != shape or out.dtype.newbyteorder("=") != dtype:
        raise ValueError(f"out must have shape {shape} and dtype {dtype}; got {out.shape} {out.dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


@dataclass
class RunPlan:
    """A validated run, ready for a key: what :func:`prepare` returns."""

    x: np.ndarray
    table: StepTable
    dtype: np.dtype
    score: object
    score_kind: int
    score_params: tuple
    noise: np.ndarray
    saved: np.ndarray
    save_rows: np.ndarray
    out: np.ndarray
    nonfinite: str
    block_rows: int
    progress: bool
    callback: object = None
    times: np.ndarray = None


def prepare(x, table, *, score=None, noise=None, save=None, dtype=None, nonfinite="raise",
            out=None, progress=False, block_rows=None, name="x", callback=None, times=None):
    """Validate a run's arguments (see :func:`run_steps`); nothing is drawn or allocated.

    ``callback``: a step callback (see ``diffsde.reverse``), called after
    every step with the run-order grid ``times`` (``n_steps + 1`` times).
    """
    if not isinstance(table, StepTable):
        raise TypeError(f"table must be a StepTable; got {type(table).__name__}")
    if table.n_steps == 0:
        raise ValueError("the step table has no steps; a run needs at least one")
    x, dtype = as_state(x, dtype, name)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False (a progress bar: tqdm when installed, "
                        f"else a line on stderr); got {shown(progress)}")
    if nonfinite not in _NONFINITE:
        raise ValueError(f"nonfinite must be one of {_NONFINITE}; got {shown(nonfinite)}")
    if nonfinite == "raise" and x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{name} contains a non-finite value {x[tuple(bad)]} at index {tuple(bad.tolist())} "
                         f"(pass nonfinite='ignore' to run anyway)")
    shape = x.shape
    dim = math.prod(shape[1:])
    score_kind, score_params = _score_source(score, table, dim, x.ndim - 1)
    if callback is not None:
        _check_callback(callback, table, score_kind, noise)
        times = np.asarray(times, dtype=np.float64)
        if times.shape != (table.n_steps + 1,):
            raise ValueError(f"times must hold the {table.n_steps + 1} grid times of the run; "
                             f"got shape {times.shape}")
    noise = _noise_array(noise, table, shape, dtype)
    saved, save_rows = _save_rows(save, table)
    out = _output(out, shape, dtype)
    if block_rows is None:
        block_rows = max(1, BLOCK_ELEMENTS // max(dim, 1))
    elif (isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer))
          or not 1 <= block_rows <= MAX_BLOCK_ROWS):
        # C holds block_rows in an int64; any value above the batch size
        # means one block of the whole batch.
        raise ValueError(f"block_rows must be an int >= 1 and <= 2**63 - 1; got {shown(block_rows)}")
    # the state, the snapshots and, for a Python score, its scratch registers
    buffers = 1 + len(saved) + (score_kind == _SCORE_PYTHON) * int(_written_scratch(table).sum())
    if callback is not None:
        # registers as for a Python score, the denoised estimate, a score copy
        buffers += int(_written_scratch(table).sum()) * (score_kind != _SCORE_PYTHON) + 2
    workspace = workspace_bytes(table, score_kind, score_params, shape[0], dim, dtype.itemsize,
                                int(block_rows))
    check_fits(shape[0] * dim * dtype.itemsize * buffers + workspace,
               f"a run of {table.n_steps} steps on a batch of shape {shape} "
               f"(with {workspace:,} bytes of per-thread workspaces)")
    return RunPlan(x, table, dtype, score, score_kind, score_params, noise, saved, save_rows, out,
                   nonfinite, int(block_rows), bool(progress), callback, times)


def _written_scratch(table):
    """Scratch registers (index >= 1) some row writes: the buffers a run
    allocates."""
    return table._written_scratch()


def _needs_score_buffer(table):
    """Does a score row need a buffer for the score values, apart from its
    destination (csrc/driver.c stores a raw score straight into a scratch
    register)?"""
    def compute():
        rows = np.flatnonzero(table.kind == SCORE)
        if not rows.size:
            return False  # the table may then be a single term wide
        w, dst = table.w[rows], table.dst[rows]
        raw = (w[:, 0] == 0) & (w[:, 1] == 1) & (dst != 0) & (dst != table.src[rows, 0])
        return not raw.all()
    return table._memo("needs_score_buffer", compute)


def workspace_bytes(table, score_kind, score_params, batch, dim, itemsize, block_rows):
    """Bytes of the per-thread buffers csrc/driver.c allocates for a run, for
    as many threads as may run: with a built-in score, a block of each
    scratch register the table writes and of the score values where a row
    does not store them raw, and the built-in score's workspace. (A Python
    score's registers are whole-batch arrays, counted by :func:`prepare`.)"""
    if batch == 0 or dim == 0:
        return 0
    rows = min(block_rows, batch)
    builtin = score_kind != _SCORE_PYTHON
    buffers = builtin * (int(_written_scratch(table).sum()) + _needs_score_buffer(table))
    work = _core.score_work_size(score_kind, score_params, dim, rows) + 1
    per_thread = buffers * rows * dim * itemsize + 8 * work
    n_blocks = -(-batch // rows)
    threads = min(get_num_threads(), n_blocks) if _core.openmp() else 1
    return threads * per_thread


#: A progress run calls C once per chunk of steps, and each call starts and
#: joins the threads: on a loaded machine the join waits for a thread that
#: lost its CPU, a scheduler time slice (about 7 ms measured on 2 shared
#: cores, where 100 equal chunks cost a half-second run 70% or more). So
#: chunks are sized by time: a first step on one thread (no join) measures
#: the rate, then each chunk lasts about this many seconds (re-measured after
#: every chunk). benchmarks/overhead.py measures the cost.
PROGRESS_SECONDS = 0.5


def _free_cuts(table):
    """Step counts where a run may be cut: before a step that carries no
    scratch register over from earlier steps (a multistep method's history),
    as each call of the C driver starts with fresh scratch registers; and the
    end. A run with a Python score keeps its registers across calls (they are
    whole-batch arrays), so it may be cut before any step."""
    return np.r_[np.flatnonzero(~table.carried_steps()), table.n_steps]


def _reads_during_run(out, plan):
    """Does C read memory of ``out`` after the run has started writing it?

    The state is written step by step while the noise and the built-in
    score's parameters are still being read, so an ``out`` sharing memory with
    them (say a view into ``noise``) would feed the state back in as noise.
    Such a run computes in a fresh buffer and copies into ``out`` at the end.
    The initial state is read once, before the first write, so ``out`` may be
    ``x`` itself. ``may_share_memory`` compares bounds only: a false alarm
    costs one copy of the state, never a wrong result.
    """
    inputs = [plan.noise, *plan.score_params]
    return any(arr is not None and np.may_share_memory(out, arr) for arr in inputs)


def check_row_offset(row_offset, batch, dim):
    """``row_offset`` as an int; the element counters of the rows it reaches
    must fit the generator's 64-bit counter (csrc/rng.h)."""
    if (isinstance(row_offset, (bool, np.bool_)) or not isinstance(row_offset, (int, np.integer))
            or row_offset < 0):
        shown = int(row_offset) if isinstance(row_offset, np.integer) else row_offset
        raise ValueError(f"row_offset must be an int >= 0; got {shown!r}")
    row_offset = int(row_offset)
    if (row_offset + batch) * max(dim, 1) > 2**64:
        raise ValueError(f"row_offset = {row_offset} puts the last element of the batch past the "
                         f"generator's 2**64 elements per (stream, interval)")
    return row_offset


def execute(plan, key, row_offset=0):
    """Run a prepared plan with a 64-bit key; returns a :class:`RunResult`.

    ``row_offset``: the global index of the plan's first batch row (see
    :func:`run_steps`).
    """
    table, x, dtype = plan.table, plan.x, plan.dtype
    shape = x.shape
    batch, dim = shape[0], math.prod(shape[1:])
    row_offset = check_row_offset(row_offset, batch, dim)
    out = plan.out
    in_place = (out is not None and out.flags.c_contiguous and out.flags.aligned and out.dtype.isnative
                and not _reads_during_run(out, plan))
    if in_place:
        np.copyto(out, x, casting="unsafe")
        work = out.reshape(batch, dim)
    else:
        work = np.array(x, dtype=dtype, order="C", copy=True).reshape(batch, dim)
    xs = np.empty((len(plan.saved),) + shape, dtype=dtype)
    snapshots = xs.reshape(len(plan.saved), batch, dim)

    callback = None
    registers = (None,) * table.n_registers
    threads = threads_for(batch * dim, table.n_rows)
    step_callback = plan.callback
    denoised = None
    score_kind = plan.score_kind
    if score_kind == _SCORE_PYTHON or (step_callback is not None and score_kind != _SCORE_NONE):
        # a step callback runs every score through the Python-score path: its
        # registers are whole-batch arrays that outlive a call of C, so the
        # run can stop after any step, and the score values pass through
        # Python, where the denoised estimate is taken
        written = _written_scratch(table)
        registers = tuple(work if k == 0 else np.zeros_like(work) if written[k] else None
                          for k in range(table.n_registers))
        views = []
        for buf in registers:
            if buf is None:
                views.append(None)
                continue
            view = buf.view().reshape(shape)
            view.flags.writeable = False
            views.append(view)
        evaluate = None
        if score_kind != _SCORE_PYTHON:
            evaluate = _builtin_evaluator(plan, table, key, threads_for(batch * dim, 1), row_offset)
            score_kind = _SCORE_PYTHON
        if step_callback is not None:
            denoised = np.zeros(shape, dtype)
        callback = _python_score_callback(plan.score, table, views, dtype, plan.nonfinite == "raise",
                                          registers, evaluate, denoised)

    bar = _progress_bar(table.n_steps) if plan.progress else None
    if callback is not None and batch * dim < CALLBACK_SERIAL_BELOW:
        threads = 1
    options = {"key": key, "noise": plan.noise, "score_kind": score_kind,
               "score_params": plan.score_params, "callback": callback, "registers": registers,
               "check_finite": plan.nonfinite != "ignore", "stop_on_nonfinite": plan.nonfinite == "raise",
               "num_threads": threads, "block_rows": plan.block_rows, "row_offset": row_offset}
    ends = np.r_[0, table.last_row_of_step() + 1]
    # looked up once: a run with a step callback calls C once per step
    columns = [(name, getattr(table, name)) for name in
               ("kind", "dst", "src", "w", "t", "m", "sd", "interval", "stream")]
    n_registers = table.n_registers
    bad_row = -1

    def run_chunk(s0, s1, num_threads, save=True):
        """Steps [s0, s1) in one call of C; the first non-finite row of the
        whole table, or -1."""
        r0, r1 = int(ends[s0]), int(ends[s1])
        first = np.searchsorted(plan.save_rows, r0 - 1 if r0 == 0 else r0)
        last = np.searchsorted(plan.save_rows, r1) if save else first
        if callback is not None:
            callback.row_offset = r0
        if r0 == 0 and r1 == table.n_rows:
            rows = table  # C reads its read-only columns in place
        else:
            rows = {name: column[r0:r1] for name, column in columns}
            rows["n_registers"] = n_registers
        options["save_rows"] = plan.save_rows[first:last] - r0
        options["snapshots"] = snapshots[first:last]
        options["num_threads"] = num_threads
        bad = _core.run(work, rows, options)
        return bad + r0 if bad >= 0 else -1

    try:
        if step_callback is not None:
            bad_row = _run_with_step_callback(plan, run_chunk, threads, work, shape, denoised,
                                              snapshots, bar)
        elif bar is None:
            bad_row = run_chunk(0, table.n_steps, threads)
        else:
            bad_row = _run_with_progress(table, run_chunk, threads, bar, plan.nonfinite == "raise")
    finally:
        if bar is not None:
            bar.close()
    if bad_row >= 0:
        message = (f"the state became non-finite at {describe_row(table, bad_row)} "
                   f"({table.kind_name(bad_row)} row {bad_row})")
        if plan.nonfinite == "raise":
            raise FloatingPointError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    final = work.reshape(shape)
    if out is not None:
        if not in_place:
            np.copyto(out, final)
        final = out
    return RunResult(x=final, xs=xs, saved=plan.saved, nfe=table.nfe)


def _run_with_progress(table, run_chunk, threads, bar, stop_on_nonfinite):
    """A run in chunks of about PROGRESS_SECONDS, the bar updated after each;
    the first non-finite row or -1. The first chunk is one step on one
    thread (no join to wait for), which gives the rate the next chunk is
    sized by; every later chunk is sized by the rate of the one before, and
    takes the rest of the run when that would last less than
    PROGRESS_SECONDS: a run shorter than that calls C twice."""
    free = _free_cuts(table)
    done, bad_row, per_step = 0, -1, None
    while done < table.n_steps:
        if per_step is None:
            want = done + 1
        else:
            want = done + max(1, int(PROGRESS_SECONDS / per_step))
            if (table.n_steps - want) * per_step < PROGRESS_SECONDS:
                want = table.n_steps  # no short chunk at the end: one join less
        cut = int(free[np.searchsorted(free, min(want, table.n_steps))])
        start = time.perf_counter()
        # the first step runs on one thread, so its rate is pessimistic: the
        # chunk after it is shorter than planned, and measures the real rate
        bad = run_chunk(done, cut, 1 if per_step is None else threads)
        per_step = max(time.perf_counter() - start, 1e-9) / (cut - done)
        bar.update(cut - done)
        done = cut
        if bad >= 0:
            bad_row = bad if bad_row < 0 else bad_row
            if stop_on_nonfinite:
                break
    return bad_row


def _run_with_step_callback(plan, run_chunk, threads, work, shape, denoised, snapshots, bar):
    """One call of C per step, then the step callback; snapshots are taken
    after the callback, so a saved state is the one the run continued from."""
    table, times, dtype = plan.table, plan.times, plan.dtype
    check = plan.nonfinite == "raise"
    state = work.reshape(shape)
    has_score = _first_score_rows(table) >= 0
    saved = plan.saved.tolist()
    if denoised is not None:
        view = denoised.view()
        view.flags.writeable = False
    for j, k in enumerate(saved):
        if k == 0:
            snapshots[j] = work
    bad_row = -1
    for k in range(table.n_steps):
        bad = run_chunk(k, k + 1, threads, save=False)
        if bad >= 0:
            bad_row = bad if bad_row < 0 else bad_row
            if check:
                break
        info = {"i": k, "t": float(times[k]), "t_next": float(times[k + 1]), "x": state,
                "denoised": view if has_score[k] else None}
        try:
            new = plan.callback(info)
        except Exception as exc:
            exc.add_note(f"diffsde: raised by the callback after step {k + 1} of {table.n_steps}")
            raise
        if new is not None and new is not state:
            np.copyto(state, _callback_state(new, shape, dtype, k, check), casting="same_kind")
        # one pass without a temporary: the sum is finite when every value
        # is, and an overflowing sum only sends us to the exact check
        if check and not np.isfinite(state.sum()) and not np.all(np.isfinite(state)):
            bad = np.argwhere(~np.isfinite(state))[0]
            raise FloatingPointError(
                f"the callback left a non-finite value {state[tuple(bad)]} at index "
                f"{tuple(bad.tolist())} after step {k + 1} of {table.n_steps} (t = {times[k + 1]:.6g})")
        for j in range(len(saved)):
            if saved[j] == k + 1:
                snapshots[j] = work
        if bar is not None:
            bar.update(1)
    return bad_row


class _TextBar:
    """A minimal progress bar on stderr when tqdm is not installed."""

    def __init__(self, total):
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def update(self, n):
        self.done += n
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(f"\rdiffsde: {self.done}/{self.total} steps, {elapsed:.1f} s")
        sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")


def _progress_bar(total):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _TextBar(total)
    return tqdm(total=total, unit="step", desc="diffsde")


def run_steps(x, table, *, score=None, rng=None, noise=None, save=None, dtype=None,
              nonfinite="raise", out=None, progress=False, block_rows=None, row_offset=0):
    r"""Run every row of a :class:`StepTable` on a batch, in C.

    Each row applies one stage (see :class:`StepTable`), e.g. the affine
    update

    .. math:: x \leftarrow a_k x + b_k\, s(x, t_k) + c_k z_k

    with :math:`z_k` normal ``j`` of ``(key, stream_k, interval_k)`` for
    element ``j`` (C order), or ``noise[interval_k]`` for stream 0 when
    ``noise`` is given. Results are bit-identical for any thread count, any
    ``block_rows``, any batch prefix and with or without ``progress``.

    Parameters
    ----------
    x : array_like, torch.Tensor or jax.Array, shape ``(batch, *event)``
        Initial state; never modified. bool and integers become float64.
        For a CPU torch tensor or JAX array, the result's ``x`` and ``xs``
        are of its type (docs/networks.md, "Tensors as states").
    table : StepTable
    score : None, LinearScore or callable
        A callable is called as ``score(x, t)`` with a read-only view of the
        current state (valid only during the call) and ``t`` a Python float;
        it must return a real, finite array of ``x``'s shape.
    rng : None, int, SeedSequence, BitGenerator or Generator
        SPEC 7 seed; exactly one 64-bit key is drawn from it.
    noise : array_like, shape ``(intervals, *x.shape)``, optional
        Step noise (stream 0) instead of generated normals. Any memory
        layout, byte order or alignment; a layout C cannot read directly is
        copied once.
    save : sequence of int, optional
        Step counts after which to keep the state (0 = initial). Default: the
        first and last states.
    dtype : float32 or float64, optional
        Default: ``x``'s dtype (float32/float64), float64 for bool and ints.
    nonfinite : {"raise", "warn", "ignore"}
        What a non-finite state does: ``FloatingPointError`` naming the first
        step and its time, a ``RuntimeWarning``, or nothing (no check).
    out : ndarray or torch.Tensor, optional
        Receives the final state (a CPU torch tensor of the run's dtype is
        written in place, too). It may be ``x`` itself or share memory
        with any input: when it overlaps ``noise`` or a built-in score's
        parameters, which are read at every step, the run computes in a
        fresh buffer and copies into ``out`` at the end.
    progress : bool
        Show a progress bar (tqdm when installed), updated between chunks of
        steps.
    block_rows : int in [1, 2**63 - 1], optional
        Batch rows per block of work (tuning and tests only; never changes
        results). Values above the batch size mean one block.
    row_offset : int >= 0
        The global index of ``x``'s first row in a larger batch: row ``i``
        draws the normals of row ``row_offset + i`` (elements
        ``(row_offset + i) * dim + col``, for step noise, corrector noise and
        every other stream). A batch cut into row ranges ``x[r0:r1]``, each
        run with ``row_offset=r0`` (and the same ``rng`` and the rows
        ``noise[:, r0:r1]`` of a ``noise`` array), concatenates to the whole
        run bit for bit, provided a callable score computes each row
        independently of the others. This is how the dask path
        (docs/dask.md) splits a run over workers.

    Returns
    -------
    RunResult
    """
    x, dtype, out, io = state_in(x, "x", dtype, out)
    noise = array_in(noise, "noise", np.float64)[0]
    plan = prepare(x, table, score=score, noise=noise, save=save, dtype=dtype,
                   nonfinite=nonfinite, out=out, progress=progress, block_rows=block_rows)
    return io.result(execute(plan, key_from_rng(rng), row_offset))

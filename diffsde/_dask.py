"""ds.forward and ds.reverse on dask arrays: the same run, block by block.

A run on a ``dask.array.Array`` becomes one task per block of batch rows.
Each task runs :func:`diffsde._engine.execute` on its rows with
``row_offset`` = the block's first global row, so row ``j`` draws the same
normals (csrc/rng.h: element ``j * dim + col`` of each stream and interval)
as in the in-memory run, and the concatenated blocks equal that run bit for
bit on any chunking and any scheduler (threads, processes, distributed).
See docs/dask.md.

dask is imported only when a run needs it: a dask array in hand means dask is
already imported, and ``reverse(..., shape=..., chunks=...)`` imports it
through :func:`diffsde._optional.require`.
"""
import math
import numbers
import pickle
import sys

import numpy as np

from ._engine import _SCORE_PYTHON, check_row_offset, execute, prepare
from ._optional import EXTRAS, require
from ._rng import STREAM_INITIAL, fill_normal
from ._validation import integer, shown, working_dtype

# the extra that installs dask, for require()'s message (kept here, with the
# feature, rather than in the shared table)
EXTRAS.setdefault("dask", "dask")


def is_dask_array(x):
    """True for a ``dask.array.Array`` (without importing dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(x, module.Array)


def _scheduler_pickles():
    """Does the active dask scheduler send tasks to other processes?

    The default for arrays and the explicit threaded and synchronous
    schedulers run tasks in this process; ``scheduler="processes"`` and a
    ``distributed.Client`` pickle every task's arguments.
    """
    import dask
    import dask.local
    import dask.threaded
    get = dask.base.get_scheduler()
    return get is not None and get not in (dask.threaded.get, dask.local.get_sync)


def _dumps(value):
    """Pickle as dask does for tasks (cloudpickle: lambdas and closures too),
    with protocol 4 (see :class:`_Shipped`)."""
    try:
        import cloudpickle
        return cloudpickle.dumps(value, protocol=4)
    except ImportError:  # dask depends on cloudpickle; plain pickle is stricter
        return pickle.dumps(value, protocol=4)


_UNPICKLABLE_HELP = ("Use a built-in score (GaussianMixture, EmpiricalData, LinearScore), a picklable "
                     "callable (a module-level function or an object without locks, open files or "
                     "generators), or the threaded scheduler (dask.config.set(scheduler='threads'))")


def _check_picklable(score):
    """A score shipped to worker processes must pickle."""
    try:
        _dumps(score)
    except Exception as exc:
        raise TypeError(
            f"the score {score!r} cannot be pickled ({type(exc).__name__}: {exc}), so it cannot be "
            f"sent to the worker processes of the active dask scheduler. {_UNPICKLABLE_HELP}") from exc


def _batch_chunked(x, name):
    """``x`` chunked along the batch axis only: the event axes are merged
    into whole chunks (a row must be in one block: the built-in scores and
    the corrector read whole rows)."""
    if x.ndim == 0:
        raise ValueError(f"{name} must have a batch axis: shape (batch, *event); got a scalar")
    if any(math.isnan(c) for axis in x.chunks for c in axis):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")
    if any(len(axis) > 1 for axis in x.chunks[1:]):
        x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
    return x


def row_chunks(chunks, shape):
    """The batch-axis chunks of ``reverse(shape=..., chunks=...)``: an int
    (rows per block) or a tuple of block sizes summing to the batch."""
    da = require("dask.array", "reverse(..., chunks=...)")
    if isinstance(chunks, (bool, np.bool_)):
        raise TypeError(f"chunks must be rows per block (an int >= 1) or a tuple of block sizes; got {shown(chunks)}")
    if isinstance(chunks, numbers.Integral) and shape[0] > 0:
        chunks = integer(chunks, "chunks", 1)
    try:
        normal = da.core.normalize_chunks((chunks,) + tuple(-1 for _ in shape[1:]), shape)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"chunks must be rows per block (an int >= 1) or a tuple of block sizes "
                         f"summing to the batch {shape[0]}; got {shown(chunks)} ({exc})") from None
    return normal[0]


def _prior_block(*, key, scale, out_dtype, event, block_info=None):
    """Prior draws of one block: stream 1 normals of its global rows, times s(t_start)."""
    (r0, r1) = block_info[None]["array-location"][1]
    dim = math.prod(event)
    out = np.empty((1, r1 - r0) + tuple(event), dtype=out_dtype)
    fill_normal(out, key, STREAM_INITIAL, 0, r0 * dim)
    out *= out_dtype.type(scale)
    return out


def prior(shape, chunks, key, scale, dtype):
    """The prior sample N(0, scale^2 I) as a dask array of shape (1, *shape),
    drawn block by block."""
    da = require("dask.array", "reverse(..., shape=..., chunks=...)")
    chunks = ((1,), tuple(row_chunks(chunks, shape))) + tuple((n,) for n in shape[1:])
    return da.map_blocks(_prior_block, chunks=chunks, dtype=dtype, meta=np.empty((0,) * len(chunks), dtype),
                         token="diffsde-prior", key=key, scale=float(scale), out_dtype=np.dtype(dtype),
                         event=tuple(shape[1:]))


class _Shipped:
    """The run's table, score and options, pickled in-band when a task leaves
    this process.

    distributed sends NumPy arrays as out-of-band buffers that can arrive
    unaligned, and the C driver reads aligned arrays only; pickle protocol 4
    keeps the array bytes inside the pickle, and unpickling copies them into
    fresh (aligned) arrays. On threads nothing is pickled.
    """

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        try:
            blob = _dumps(self.value)
        except Exception as exc:
            # the run was built while a threaded scheduler was active, and is
            # computed on one that pickles
            raise TypeError(f"the score {self.value[1]!r} cannot be pickled ({type(exc).__name__}: "
                            f"{exc}), so it cannot be sent to the worker processes of the active "
                            f"dask scheduler. {_UNPICKLABLE_HELP}") from exc
        return _unpack_shipped, (blob,)


def _unpack_shipped(blob):
    return _Shipped(pickle.loads(blob))


_REWORDED = (FloatingPointError, ValueError, TypeError, ArithmeticError)


def _in_block(exc, index, r0, r1):
    """The block's exception with the block named first: the message of the
    engine already names the step and its time."""
    where = f"in block {index} (rows {r0}:{r1} of the batch)"
    if type(exc) in _REWORDED:
        new = type(exc)(f"{where}: {exc}")
        new.__notes__ = list(getattr(exc, "__notes__", []))
        return new
    exc.add_note(f"diffsde: {where}")
    return exc


def _run_block(x, *rest, block_info=None):
    """One block of rows: ``x`` of shape (1, rows, *event), then the block's
    noise if any, then the run's :class:`_Shipped` spec; returns the saved
    states, shape (n_saved, rows, *event)."""
    *noise, spec = rest
    info = block_info[0]
    (r0, r1) = info["array-location"][1]
    index = info["chunk-location"][1]
    table, score, saved, dtype, nonfinite, key, name = spec.value
    try:
        plan = prepare(x[0], table, score=score, noise=noise[0] if noise else None, save=saved,
                       dtype=dtype, nonfinite=nonfinite, name=name)
        return execute(plan, key, row_offset=r0).xs
    except Exception as exc:
        raise _in_block(exc, index, r0, r1) from None


def run(x, table, saved, *, key, score=None, noise=None, dtype=None, nonfinite="raise", out=None,
        progress=False, name="x", prior_scale=None, chunks=None, shape=None):
    """The lazy run: ``(x, xs)`` as dask arrays.

    ``x`` is the dask state, or None with ``shape``, ``chunks`` and
    ``prior_scale`` to draw the prior block by block.
    """
    da = require("dask.array", "a run on a dask array (or reverse with chunks=)")
    dask = require("dask", "a run on a dask array (or reverse with chunks=)")

    if out is not None:
        raise TypeError("out applies to NumPy runs only; a dask run returns dask arrays "
                        "(store them with dask.array.store or to_zarr)")
    if progress:
        raise ValueError(
            "progress=True does not apply to a dask run, which is computed later, block by block; "
            "wrap the compute in dask.diagnostics.ProgressBar() (local schedulers) or use "
            "distributed.progress (a Client) for one bar over the blocks")
    if x is not None:
        x = _batch_chunked(x, name)
        shape = x.shape
        dtype = working_dtype(x.dtype, dtype, name)
    else:
        dtype = working_dtype(np.float64, dtype, name)
    dim = math.prod(shape[1:])
    check_row_offset(0, shape[0], dim)
    saved = np.asarray(saved, dtype=np.int64)
    # validate everything but the rows once, here, on a one-row probe
    probe = np.zeros((min(shape[0], 1),) + tuple(shape[1:]), dtype=dtype)
    plan = prepare(probe, table, score=score, save=saved, dtype=dtype, nonfinite=nonfinite, name=name)
    if plan.score_kind == _SCORE_PYTHON and _scheduler_pickles():
        _check_picklable(score)

    if x is None:
        start = prior(shape, chunks, key, prior_scale, dtype)
    else:
        start = x[None]
    rows = start.chunks[1]
    args = [start]
    if noise is not None:
        expected = (table.n_noise_intervals,) + tuple(shape)
        if np.shape(noise) != expected:
            raise ValueError(f"noise must have shape (intervals, *x.shape) = {expected}; got {np.shape(noise)}")
        noise_chunks = ((expected[0],), rows) + tuple((n,) for n in shape[1:])
        if is_dask_array(noise):
            noise = noise.rechunk(noise_chunks)
        else:
            noise = da.from_array(np.asarray(noise), chunks=noise_chunks)
        args.append(noise)

    # every block keeps the final state too: x is the last of its snapshots
    n_steps = table.n_steps
    run_saved = np.union1d(saved, [n_steps]).astype(np.int64)
    out_chunks = ((len(run_saved),), rows) + tuple((n,) for n in shape[1:])
    # one graph key for the table and score, which every block depends on:
    # a worker receives it once, however many blocks it runs (an
    # EmpiricalData score can hold a large data set)
    spec = dask.delayed(_Shipped((table, score, run_saved, dtype, nonfinite, key, name)), pure=False)
    states = da.map_blocks(_run_block, *args, spec, chunks=out_chunks, dtype=dtype,
                           meta=np.empty((0,) * len(out_chunks), dtype), token="diffsde-run")
    final = states[-1]
    if len(run_saved) == len(saved):
        xs = states
    else:
        xs = states[np.searchsorted(run_saved, saved)]
    return final, xs

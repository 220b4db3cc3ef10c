"""StepTable: the per-step scalars the C driver runs.

Almost every discretization of a diffusion SDE or chain is the affine update

    x <- a_k x + b_k s(x, t_k) + c_k z_k,        z_k ~ N(0, I),

so a method is a table of (a, b, c, t, m, s) per step, computed once in
Python, vectorized over steps. A *row* is one stage of a step:

=============  ==============================================================
kind           update of one row
=============  ==============================================================
affine         x <- a x + b s(x, t) + c z
heun_predict   x~ <- a x + b s(x, t)                  (Euler predictor)
heun_correct   x <- x/2 + (a x~ + b s(x~, t))/2        (trapezoidal corrector)
langevin       x <- x + e s + sqrt(2 e) z, per batch row,
               e = 2 a (c |z| / |s|)^2                (a = r, c = snr)
=============  ==============================================================

``(m, s)`` is the marginal x_t = m x_0 + s z at the score time t, used by the
built-in scores. Noise for a row is normal j of (key, stream, interval)
(``csrc/rng.h``); a term whose coefficient is exactly 0 is skipped (no score
call, no noise draw). Heun with ``a = 1 + h p(t)``, ``b = h q(t)`` for both
stages integrates dx = (p x + q s) dt with the trapezoidal rule:
x' = x + h/2 [D(x, t) + D(x~, t')].

The Langevin step size uses the norms of each batch row, so results do not
depend on how the batch is chunked; score_sde uses the batch mean of the
norms instead.
"""
from dataclasses import dataclass

import numpy as np

from ._validation import physical_memory_bytes

KINDS = {"affine": 0, "heun_predict": 1, "heun_correct": 2, "langevin": 3}
_KIND_NAMES = {v: k for k, v in KINDS.items()}
_FLOAT_COLUMNS = ("a", "b", "c", "t", "m", "s")
_UINT32_LIMIT = 2**32
_INT_COLUMNS = ("kind", "interval", "stream", "step")
_INT_DTYPES = {"kind": np.int32, "interval": np.int64, "stream": np.int64, "step": np.int64}
_INT_RANGES = {"kind": (0, len(KINDS) - 1), "interval": (0, _UINT32_LIMIT - 1),
               "stream": (0, _UINT32_LIMIT - 1), "step": (0, 2**63 - 1)}


def _column(value, n, name, dtype=np.float64):
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers; got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        # the table is float64: rounding a longdouble silently would surprise
        raise TypeError(f"{name} must be real numbers of at most float64 precision; got dtype {arr.dtype}")
    try:
        arr = np.broadcast_to(arr.astype(dtype), (n,))
    except ValueError:
        raise ValueError(
            f"{name} must be a scalar or have one entry per step ({n}); got shape {np.shape(value)}"
        ) from None
    return np.ascontiguousarray(arr)


def _steps_of(*values):
    sizes = {np.size(v) for v in values if np.ndim(v) > 0}
    if len(sizes) > 1:
        raise ValueError(f"per-step arrays have different lengths {sorted(sizes)}")
    return sizes.pop() if sizes else 1


class _Owned:
    """A column this module has just made (a private copy of the right
    dtype): the constructor takes it over instead of copying it again, which
    for tables of millions of rows is most of the building time."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


def _own_column(value, name):
    """A private, read-only copy of one column in the dtype C reads.

    Integer columns (``kind``, ``interval``, ``stream``, ``step``) take any
    integer dtype, range-checked before the conversion so nothing wraps;
    float columns take bool, integers and floats up to float64, which
    float64 holds exactly (integers up to 2**53). The caller's array is
    copied, never frozen.
    """
    owned = isinstance(value, _Owned)
    arr = value.array if owned else np.asarray(value)
    if arr.ndim != 1:
        raise ValueError(f"StepTable column {name} must be 1-D (one entry per row); got shape {arr.shape}")
    if name in _INT_COLUMNS:
        if arr.dtype.kind not in "iu":
            raise TypeError(f"StepTable column {name} must hold integers; got dtype {arr.dtype}")
        if arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            low, high = _INT_RANGES[name]
            if name == "kind" and (lo < low or hi > high):
                bad = lo if lo < low else hi
                raise ValueError(f"StepTable has an unknown kind {bad} "
                                 f"(known: {', '.join(f'{v} {k}' for k, v in KINDS.items())})")
            if lo < low or hi > high:
                bad = lo if lo < low else hi
                raise ValueError(f"StepTable column {name} has the value {bad}; its entries must lie "
                                 f"in [{low}, {high}]")
        dtype = _INT_DTYPES[name]
    else:
        if arr.dtype.kind not in "biuf" or (arr.dtype.kind == "f" and arr.dtype.itemsize > 8):
            raise TypeError(f"StepTable column {name} must hold real numbers of at most float64 "
                            f"precision; got dtype {arr.dtype}")
        dtype = np.float64
    if owned and arr.dtype == dtype and arr.flags.c_contiguous:
        own = arr
    else:
        own = np.array(arr, dtype=dtype, order="C", copy=True)
    own.setflags(write=False)
    return own


#: Peak bytes per row while a corrector table is built and interleaved with
#: its predictor: the table (76 bytes a row), its interleaved copy, the sort's
#: int64 keys and order and one column in flight; tracemalloc measured 181.
BUILD_BYTES_PER_ROW = 200


def check_rows_fit(n_rows, what, advice):
    """MemoryError, before anything is allocated, when building ``n_rows``
    table rows cannot fit in physical memory."""
    need = int(n_rows) * BUILD_BYTES_PER_ROW
    limit = physical_memory_bytes()
    if limit is not None and need > limit:
        raise MemoryError(f"{what} makes a step table of {int(n_rows):,} rows, which needs about "
                          f"{need:,} bytes ({need / 2**30:.1f} GiB) to build, but this machine has "
                          f"{limit:,} bytes of physical memory; {advice}")


def _check_tables(tables, what):
    if not tables:
        raise ValueError(f"StepTable.{what} needs at least one StepTable; got none")
    for i, tab in enumerate(tables):
        if not isinstance(tab, StepTable):
            raise TypeError(f"StepTable.{what} takes StepTables; argument {i} is a {type(tab).__name__}")


@dataclass(frozen=True, eq=False)
class StepTable:
    """Rows of the step loop; see the module docstring for their meaning.

    Build tables with :meth:`affine`, :meth:`heun` and :meth:`langevin`, and
    combine them with :meth:`concat` (one after another) or :meth:`interleave`
    (step by step, e.g. a predictor followed by a corrector). ``step[r]`` is
    the step (0-based, in run order) row r belongs to; the rows of a step are
    contiguous.

    The constructor takes the ten columns directly, as 1-D arrays of one
    length (the rows), and checks everything a run relies on, so a table
    that constructs always runs:

    - ``kind``: codes of :data:`KINDS` (any integer dtype; kept as int32);
    - ``a, b, c, t, m, s``: finite reals, ``s >= 0`` (bool, integers and
      floats up to float64; kept as float64);
    - ``interval``, ``stream``: integers in [0, 2**32) (kept as int64);
    - ``step``: integers 0, 1, 2, ... in order, each repeated for the rows
      of its step: it starts at 0 and grows by 0 or 1 from row to row;
    - each ``heun_predict`` row is followed by one ``heun_correct`` row of
      the same step, with ``c = 0``; ``langevin`` rows have ``a, c >= 0``.

    The columns are copies, read-only; the arrays passed in are not changed.
    """

    kind: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    t: np.ndarray
    m: np.ndarray
    s: np.ndarray
    interval: np.ndarray
    stream: np.ndarray
    step: np.ndarray

    def __post_init__(self):
        for name in _INT_COLUMNS + _FLOAT_COLUMNS:
            object.__setattr__(self, name, _own_column(getattr(self, name), name))
        n = self.kind.shape[0]
        for name in _INT_COLUMNS + _FLOAT_COLUMNS:
            col = getattr(self, name)
            if col.shape != (n,):
                raise ValueError(f"StepTable column {name} has shape {col.shape}, expected ({n},) "
                                 "like column kind")
        for name in _FLOAT_COLUMNS:
            col = getattr(self, name)
            bad = np.flatnonzero(~np.isfinite(col))
            if bad.size:
                r = bad[0]
                raise ValueError(
                    f"StepTable column {name} is {col[r]} at row {r} (step {self.step[r]}); "
                    "coefficients must be finite"
                )
        if np.any((self.s < 0)):
            r = np.flatnonzero(self.s < 0)[0]
            raise ValueError(f"StepTable column s (marginal std) is {self.s[r]} < 0 at row {r}")
        if n:
            # The driver and the progress bar find step k's rows by counting
            # steps: a gap or a first step other than 0 would index past them.
            jumps = np.diff(self.step)
            if self.step[0] != 0:
                raise ValueError(f"StepTable steps must start at 0 and grow by 0 or 1 per row; "
                                 f"row 0 has step {self.step[0]}")
            if np.any((jumps < 0) | (jumps > 1)):
                r = int(np.flatnonzero((jumps < 0) | (jumps > 1))[0]) + 1
                raise ValueError(f"StepTable steps must start at 0 and grow by 0 or 1 per row; "
                                 f"row {r} has step {self.step[r]} after step {self.step[r - 1]}")
        predict = np.flatnonzero(self.kind == KINDS["heun_predict"])
        correct = np.flatnonzero(self.kind == KINDS["heun_correct"])
        if not np.array_equal(predict + 1, correct):
            raise ValueError("each heun_predict row must be followed by exactly one heun_correct row")
        split = self.step[predict] != self.step[correct]
        if np.any(split):
            r = int(predict[split][0])
            raise ValueError(f"a heun_predict row and its heun_correct row belong to one step; rows {r} "
                             f"and {r + 1} have steps {self.step[r]} and {self.step[r + 1]}")
        heun = (self.kind == KINDS["heun_predict"]) | (self.kind == KINDS["heun_correct"])
        if np.any(heun & (self.c != 0)):
            raise ValueError("Heun rows are deterministic: their noise coefficient c must be 0")
        langevin = self.kind == KINDS["langevin"]
        if np.any(langevin & ((self.a < 0) | (self.c < 0))):
            raise ValueError("langevin rows need r = a >= 0 and snr = c >= 0")

    # ---- construction --------------------------------------------------
    @classmethod
    def _build(cls, kind, n, a, b, c, t, m, s, interval, stream, step):
        # _column copies, so the constructor need not copy again
        return cls(
            kind=_Owned(_column(kind, n, "kind", np.int32)),
            a=_Owned(_column(a, n, "a")),
            b=_Owned(_column(b, n, "b")),
            c=_Owned(_column(c, n, "c")),
            t=_Owned(_column(t, n, "t")),
            m=_Owned(_column(m, n, "m")),
            s=_Owned(_column(s, n, "s")),
            interval=_Owned(_column(np.arange(n) if interval is None else interval, n, "interval", np.int64)),
            stream=_Owned(_column(stream, n, "stream", np.int64)),
            step=_Owned(_column(np.arange(n) if step is None else step, n, "step", np.int64)),
        )

    @classmethod
    def affine(cls, a, b=0.0, c=0.0, *, t=0.0, m=1.0, s=0.0, interval=None, stream=0):
        """Steps ``x <- a x + b score(x, t) + c z``, one per entry.

        Scalars broadcast to the number of steps, given by the longest array.
        ``interval`` defaults to ``0, 1, ..., n-1``.
        """
        n = _steps_of(a, b, c, t, m, s, interval)
        return cls._build(KINDS["affine"], n, a, b, c, t, m, s, interval, stream, None)

    @classmethod
    def heun(cls, a, b, a_end, b_end, *, t, t_end, m=1.0, s=0.0, m_end=1.0, s_end=0.0):
        """Heun (trapezoidal) steps: two rows each.

        ``x~ = a x + b score(x, t)``, then
        ``x' = x/2 + (a_end x~ + b_end score(x~, t_end))/2``.
        """
        n = _steps_of(a, b, a_end, b_end, t, t_end, m, s, m_end, s_end)
        cols = []
        for first, second in ((a, a_end), (b, b_end), (t, t_end), (m, m_end), (s, s_end)):
            pair = np.stack([_column(first, n, "heun"), _column(second, n, "heun")], axis=1)
            cols.append(pair.reshape(-1))
        kind = np.tile([KINDS["heun_predict"], KINDS["heun_correct"]], n)
        a2, b2, t2, m2, s2 = cols
        return cls._build(kind, 2 * n, a2, b2, 0.0, t2, m2, s2, np.repeat(np.arange(n), 2), 0,
                          np.repeat(np.arange(n), 2))

    @classmethod
    def langevin(cls, r, snr, *, t, m=1.0, s=0.0, interval=None, sub_step=0, step=None):
        """Langevin corrector steps ``x <- x + e score + sqrt(2 e) z``.

        ``e = 2 r (snr |z| / |score|)^2`` per batch row; noise from stream
        ``2 + sub_step`` (a scalar or one per row). ``step`` (one per row)
        groups rows into steps, e.g. the sub-steps of one corrector; default
        one row per step.
        """
        n = _steps_of(r, snr, t, m, s, interval, sub_step, step)
        return cls._build(KINDS["langevin"], n, r, 1.0, snr, t, m, s, interval, 2 + np.asarray(sub_step), step)

    @classmethod
    def concat(cls, *tables):
        """The rows of ``tables`` one after another; steps are renumbered."""
        _check_tables(tables, "concat")
        offset, steps = 0, []
        for tab in tables:
            steps.append(tab.step + offset)
            offset += tab.n_steps
        cols = {name: _Owned(np.concatenate([getattr(tab, name) for tab in tables]))
                for name in ("kind", "interval", "stream") + _FLOAT_COLUMNS}
        return cls(step=_Owned(np.concatenate(steps)), **cols)

    @classmethod
    def interleave(cls, *tables):
        """Step k is step k of each table in turn.

        The first table must have every step; later ones may stop earlier
        (a corrector that skips the last step, say).
        """
        _check_tables(tables, "interleave")
        counts = [tab.n_steps for tab in tables]
        if any(n > counts[0] for n in counts[1:]):
            raise ValueError(f"interleave: later tables may not have more steps than the first; got {counts}")
        # Order the rows by each table's own step, keeping table order
        # within a step (stable sort); one column at a time, to keep the
        # peak memory near two copies of the table.
        own_step = np.concatenate([tab.step for tab in tables])
        order = np.argsort(own_step, kind="stable")
        cols = {name: _Owned(np.concatenate([getattr(tab, name) for tab in tables])[order])
                for name in ("kind", "interval", "stream") + _FLOAT_COLUMNS}
        return cls(step=_Owned(own_step[order]), **cols)

    # ---- derived -------------------------------------------------------
    @property
    def n_rows(self):
        return self.kind.shape[0]

    @property
    def n_steps(self):
        return int(self.step[-1]) + 1 if self.n_rows else 0

    @property
    def needs_score(self):
        """Boolean per row: does the row evaluate the score?"""
        return (self.kind == KINDS["langevin"]) | (self.b != 0)

    @property
    def needs_noise(self):
        """Boolean per row: does the row draw noise?"""
        return (self.kind == KINDS["langevin"]) | ((self.kind == KINDS["affine"]) & (self.c != 0))

    @property
    def nfe(self):
        """Score evaluations (of the whole batch) a run of this table makes."""
        return int(np.count_nonzero(self.needs_score))

    @property
    def n_noise_intervals(self):
        """Length of a user noise array: 1 + the largest stream-0 interval."""
        rows = self.needs_noise & (self.stream == 0)
        return int(self.interval[rows].max()) + 1 if np.any(rows) else 0

    def last_row_of_step(self):
        """Row index ending each step (array of length n_steps)."""
        return np.flatnonzero(np.r_[self.step[1:] != self.step[:-1], True]) if self.n_rows else self.step

    def kind_name(self, row):
        return _KIND_NAMES[int(self.kind[row])]

    def __repr__(self):
        return f"StepTable({self.n_steps} steps, {self.n_rows} rows, nfe={self.nfe})"

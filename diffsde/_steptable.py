r"""StepTable: the register program the C driver runs.

A method is computed once in Python, vectorized over steps, as a table of
*rows*. Each row writes one *register*, a buffer of the state's shape:
register 0 is the state x, registers 1, 2, ... are scratch (stage states,
score values, noise, the history of a multistep method: a ring of earlier
values is register indices chosen modulo the ring's size by the builder).
There are four row kinds:

==========  ==================================================================
kind        update of one row (``w = (w0, w1, ...)``, ``src = (src0, ...)``)
==========  ==================================================================
score       reg[dst] = w0 reg[src0] + w1 s(reg[src0], t)
normal      reg[dst] = z, normal j of (key, stream, interval), or noise[interval]
combine     reg[dst] = w0 reg[src0] + w1 reg[src1] + ...   (up to MAX_TERMS)
langevin    reg[dst] = reg[src0] + e reg[src1] + sqrt(2 e) reg[src2], per batch
            row, e = 2 w0 (w1 |reg[src2]| / |reg[src1]|)^2   (w0 = r, w1 = snr)
==========  ==================================================================

A score row's terms of weight exactly 0 are absent, so ``w0 = 0, w1 = 1``
stores the raw score, ``w0 = 0, w1 = -sd`` the noise prediction
:math:`\hat\varepsilon = -\sigma s` and ``w0 = 1/m, w1 = sd^2/m`` the
denoised value :math:`(x + \sigma^2 s)/m` (Tweedie's formula, Efron 2011)
in one pass. Arithmetic is in the state's element type, each weight rounded
to it once, left to right in the order written; ``dst`` may equal any
source. Row norms (langevin) accumulate in double; the step size is 0 when
the score's norm is 0. The Langevin step size uses the norms of each batch
row, so results do not depend on how the batch is chunked (score_sde uses
the batch mean of the norms instead; Song et al. 2021, Algorithm 5).

``(m, sd)`` is the marginal x_t = m x_0 + sd z at the score time t, used by
the built-in scores. Normal j of (key, stream, interval) is the counter-based
generator's (docs/conventions.md); a user's ``noise`` array replaces stream 0.
The stream numbers are constants of the C core: :data:`STREAM_STEP` for step
noise, :data:`STREAM_CORRECTOR` + m for corrector sub-step m, and
:data:`STREAM_EXTRA` + i for further draws inside a step.

The classic one-stage update :math:`x \leftarrow a x + b s(x, t) + c z`
(:meth:`StepTable.affine`) is the program
``[score E <- s(x, t)] [normal Z <- z] combine x <- a x + b E + c Z``,
Heun's trapezoidal step (:meth:`StepTable.heun`) is
``score E <- s(x, t); combine X <- a x + b E; score E <- s(X, t');
combine X <- a' X + b' E; combine x <- x/2 + X/2``, i.e. with
``a = 1 + h p(t)``, ``b = h q(t)`` it integrates dx = (p x + q s) dt by
x' = x + h/2 [D(x, t) + D(x~, t')]. New samplers are assembled from
vectorized row groups (:func:`score_rows`, :func:`normal_rows`,
:func:`combine_rows`, :func:`langevin_rows`) with :meth:`StepTable.program`.
"""
import math
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import _core, _rng
from ._validation import physical_memory_bytes

#: Row kind codes, defined once in the C core (csrc/step.h).
ROW_KINDS = dict(_core.ROW_KINDS)
_KIND_NAMES = {v: k for k, v in ROW_KINDS.items()}
SCORE, NORMAL, COMBINE, LANGEVIN = (ROW_KINDS[k] for k in ("score", "normal", "combine", "langevin"))
#: Terms (source registers) per row.
MAX_TERMS = _core.MAX_TERMS
#: Registers a table may use, the state included.
MAX_REGISTERS = _core.MAX_REGISTERS
#: Noise streams of the counter layout (csrc/step.h).
STREAM_STEP = _rng.STREAM_STEP
STREAM_CORRECTOR = _rng.STREAM_CORRECTOR
#: Corrector sub-steps m < MAX_SUB_STEPS draw from stream STREAM_CORRECTOR + m.
MAX_SUB_STEPS = _core.STREAMS["max_sub_steps"]
#: Further draws inside a step (churn noise, a second increment): stream
#: STREAM_EXTRA + i, i < MAX_EXTRA; never a corrector's or the Brownian tree's.
STREAM_EXTRA = _rng.STREAM_EXTRA
MAX_EXTRA = _core.STREAMS["max_extra"]

#: The registers the built-in constructors use: the state, the score, the
#: noise and a stage state (Heun's predictor).
REG_X, REG_SCORE, REG_NOISE, REG_STAGE = 0, 1, 2, 3

_UINT32_LIMIT = 2**32
_FLOAT_COLUMNS = ("t", "m", "sd")
_INT_COLUMNS = ("kind", "dst", "interval", "stream", "step")
_COLUMNS = ("kind", "dst", "src", "w") + _FLOAT_COLUMNS + ("interval", "stream", "step")
_INT_DTYPES = {"kind": np.int32, "dst": np.int32, "src": np.int32, "interval": np.int64,
               "stream": np.int64, "step": np.int64}
_INT_RANGES = {"kind": (0, len(ROW_KINDS) - 1), "dst": (0, MAX_REGISTERS - 1),
               "src": (-1, MAX_REGISTERS - 1), "interval": (0, _UINT32_LIMIT - 1),
               "stream": (0, _UINT32_LIMIT - 1), "step": (0, 2**63 - 1)}
#: Sources each kind reads: (fewest, most).
_TERMS = {SCORE: (1, 1), NORMAL: (0, 0), COMBINE: (1, MAX_TERMS), LANGEVIN: (3, 3)}
_TERMS_LO = np.array([_TERMS[k][0] for k in range(len(ROW_KINDS))])
_TERMS_HI = np.array([_TERMS[k][1] for k in range(len(ROW_KINDS))])
#: Lookups on a row's packed term byte (np.packbits: term 0 is bit 7): its
#: number of terms, whether the terms used are a prefix, and the byte of the
#: first k terms.
_POPCOUNT = np.array([bin(v).count("1") for v in range(256)], np.int64)
_PREFIX_MASK = np.array([(0xFF00 >> k) & 0xFF for k in range(MAX_TERMS + 1)], np.uint8)
_PREFIX = np.isin(np.arange(256), _PREFIX_MASK)


def _row_bits(flags):
    """One byte per row of a (rows, width) boolean array, term 0 in bit 7
    (np.packbits of each row, zero-padded to 8 terms; for 8 terms packing
    the flat array is the same bytes, and much faster than packing along an
    axis)."""
    if flags.shape[1] == 8:
        return np.packbits(np.ascontiguousarray(flags).reshape(-1))
    if flags.shape[1] > 8:
        return np.packbits(flags, axis=1)[:, 0]
    bits = np.zeros(flags.shape[0], np.uint8)
    for k in range(flags.shape[1]):
        bits |= flags[:, k].view(np.uint8) << np.uint8(7 - k)
    return bits


def _column(value, n, name, dtype=np.float64):
    """``value`` (a scalar or one entry per step) as a fresh 1-D column of
    ``n`` entries; floats must be finite. Builders call this for every
    column, so the common cases (a Python number, an array of the right
    length) take few NumPy calls."""
    if type(value) is np.ndarray and value.shape == (n,) and value.dtype == dtype:
        # already a column (the builders pass their own): no copy, as the
        # rows are copied into the table when they are merged
        if dtype is np.float64 and not np.isfinite(value).all():
            bad = np.flatnonzero(~np.isfinite(value))
            raise ValueError(f"StepTable column {name} is {value[bad[0]]} at row {bad[0]}; "
                             "coefficients must be finite")
        return value
    if type(value) in (float, int) and dtype is np.float64:
        if not math.isfinite(value):
            raise ValueError(f"StepTable column {name} is {value} at row 0; coefficients must be finite")
        return np.full(n, value, dtype=np.float64)
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers; got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        # the table is float64: rounding a longdouble silently would surprise
        raise TypeError(f"{name} must be real numbers of at most float64 precision; got dtype {arr.dtype}")
    if dtype is not np.float64 and arr.dtype.kind == "f":
        raise TypeError(f"{name} must be integers; got dtype {arr.dtype}")
    if arr.shape == (n,):
        arr = arr.astype(dtype)
    else:
        try:
            arr = np.array(np.broadcast_to(arr.astype(dtype, copy=False), (n,)))
        except ValueError:
            raise ValueError(
                f"{name} must be a scalar or have one entry per step ({n}); got shape {np.shape(value)}"
            ) from None
    if dtype is np.float64 and not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr))
        raise ValueError(f"StepTable column {name} is {arr[bad[0]]} at row {bad[0]}; "
                         "coefficients must be finite")
    return arr


def _steps_of(*values):
    sizes = set()
    for v in values:
        if v is None or type(v) in (float, int):
            continue
        if type(v) is np.ndarray:
            if v.ndim:
                sizes.add(v.size)
        elif np.ndim(v) > 0:
            sizes.add(np.size(v))
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

    Integer columns take any integer dtype, range-checked before the
    conversion so nothing wraps; float columns take bool, integers and floats
    up to float64, which float64 holds exactly (integers up to 2**53). The
    caller's array is copied, never frozen.
    """
    owned = isinstance(value, _Owned)
    arr = value.array if owned else np.asarray(value)
    ndim = 2 if name in ("src", "w") else 1
    if arr.ndim != ndim:
        what = f"2-D (rows, width), width <= {MAX_TERMS}" if ndim == 2 else "1-D (one entry per row)"
        raise ValueError(f"StepTable column {name} must be {what}; got shape {arr.shape}")
    if ndim == 2 and not 1 <= arr.shape[1] <= MAX_TERMS:
        raise ValueError(f"StepTable column {name} must have shape (rows, width) with 1 <= width <= "
                         f"{MAX_TERMS}; got {arr.shape}")
    if name in _INT_DTYPES:
        if arr.dtype.kind not in "iu":
            raise TypeError(f"StepTable column {name} must hold integers; got dtype {arr.dtype}")
        if arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            low, high = _INT_RANGES[name]
            if name == "kind" and (lo < low or hi > high):
                bad = lo if lo < low else hi
                raise ValueError(f"StepTable has an unknown kind {bad} "
                                 f"(known: {', '.join(f'{v} {k}' for k, v in ROW_KINDS.items())})")
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
#: its predictor: the table (56 + 12 x width bytes a row, 92 for the
#: corrector's width 3), its interleaved copy, the sort's int64 keys and
#: order and one column in flight; tracemalloc measured 202 (5 sub-steps at
#: 20,000 grid times; 329 when every row was 8 terms wide).
BUILD_BYTES_PER_ROW = 240


def check_rows_fit(n_rows, what, advice):
    """MemoryError, before anything is allocated, when building ``n_rows``
    table rows cannot fit in physical memory."""
    need = int(n_rows) * BUILD_BYTES_PER_ROW
    limit = physical_memory_bytes()
    if limit is not None and need > limit:
        raise MemoryError(f"{what} makes a step table of {int(n_rows):,} rows, which needs about "
                          f"{need:,} bytes ({need / 2**30:.1f} GiB) to build, but this machine has "
                          f"{limit:,} bytes of physical memory; {advice}")


def _check_tables(tables, what, cls):
    if not tables:
        raise ValueError(f"StepTable.{what} needs at least one {cls.__name__}; got none")
    for i, tab in enumerate(tables):
        if not isinstance(tab, cls):
            raise TypeError(f"StepTable.{what} takes {cls.__name__}s; argument {i} is a "
                            f"{type(tab).__name__}")


def _sd_alias(sd, s, default=0.0, name="sd"):
    """``sd``, or the deprecated keyword ``s`` (the marginal std's old name)."""
    if s is None:
        return default if sd is None else sd
    if sd is not None:
        raise TypeError(f"pass {name} only; s is its deprecated name")
    warnings.warn(f"the keyword s (marginal std) is deprecated; pass {name}=", DeprecationWarning,
                  stacklevel=3)
    return s


# ---- row groups -----------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Rows:
    """A group of rows, one per entry, not yet a table: what the row
    builders return and :meth:`StepTable.program` assembles. ``step`` says
    which step each row belongs to (any non-decreasing integers)."""

    kind: np.ndarray
    dst: np.ndarray
    src: np.ndarray
    w: np.ndarray
    t: np.ndarray
    m: np.ndarray
    sd: np.ndarray
    interval: np.ndarray
    stream: np.ndarray
    step: np.ndarray

    def __len__(self):
        return self.kind.shape[0]


def _rows(kind, n, dst, src, w, t, m, sd, interval, stream, step):
    """Rows from per-entry columns; ``src``/``w`` are lists of per-entry
    columns (one per term), kept as compact (n, terms) arrays until the
    rows are merged into a table."""
    if len(src) > MAX_TERMS:
        raise ValueError(f"a row takes at most {MAX_TERMS} terms; got {len(src)}")
    width = max(len(src), len(w), 1)
    src_col = np.full((n, width), -1, dtype=np.int32)
    w_col = np.zeros((n, width))
    for k, sk in enumerate(src):
        src_col[:, k] = _column(sk, n, f"src[{k}]", np.int64)
    for k, wk in enumerate(w):
        w_col[:, k] = _column(wk, n, f"w[{k}]")
    return Rows(kind=np.full(n, kind, np.int32), dst=_column(dst, n, "dst", np.int32),
                src=src_col, w=w_col, t=_column(t, n, "t"), m=_column(m, n, "m"),
                sd=_column(sd, n, "sd"),
                interval=_column(np.arange(n) if interval is None else interval, n, "interval", np.int64),
                stream=_column(stream, n, "stream", np.int64),
                step=_column(np.arange(n) if step is None else step, n, "step", np.int64))


def score_rows(dst, src=REG_X, w0=0.0, w1=1.0, *, t, m=1.0, sd=0.0, step=None):
    r"""Rows ``reg[dst] = w0 reg[src] + w1 s(reg[src], t)``, one per entry.

    Scalars broadcast to the longest array; ``step`` (default 0, 1, ...)
    is the step of each row. ``w0 = 0, w1 = 1`` stores the raw score.
    """
    n = _steps_of(dst, src, w0, w1, t, m, sd, step)
    return _rows(SCORE, n, dst, [src], [w0, w1], t, m, sd, 0, 0, step)


def normal_rows(dst, *, interval, stream=STREAM_STEP, t=0.0, step=None):
    """Rows ``reg[dst] = z``, normals of ``(key, stream, interval)`` (or the
    user's ``noise[interval]`` for stream 0), one per entry."""
    n = _steps_of(dst, interval, stream, t, step)
    return _rows(NORMAL, n, dst, [], [], t, 1.0, 0.0, interval, stream, step)


def combine_rows(dst, terms, *, t=0.0, step=None, drop_zero=True):
    """Rows ``reg[dst] = sum_k w_k reg[src_k]``, one per entry.

    ``terms`` is a sequence of ``(weight, src)`` pairs, each a scalar or a
    per-entry array, evaluated left to right. With ``drop_zero`` a term of
    weight exactly 0 is left out of that row (a row keeps at least its first
    term), so it costs nothing and ``0 * inf`` never makes a NaN.
    """
    if not 1 <= len(terms) <= MAX_TERMS:
        raise ValueError(f"combine_rows takes 1 to {MAX_TERMS} (weight, src) terms; got {len(terms)}")
    n = _steps_of(dst, t, step, *[v for term in terms for v in term])
    rows = _rows(COMBINE, n, dst, [s for _, s in terms], [w for w, _ in terms], t, 1.0, 0.0, 0, 0, step)
    if drop_zero and len(terms) > 1:
        gone = (rows.w == 0) | (rows.src < 0)
        gone[gone.all(axis=1), 0] = False  # a row keeps at least one term
        if gone.any():
            # stable: the kept terms stay in order, the dropped ones move last
            order = np.argsort(gone, axis=1, kind="stable")
            src = np.take_along_axis(rows.src, order, axis=1)
            w = np.take_along_axis(rows.w, order, axis=1)
            tail = np.take_along_axis(gone, order, axis=1)
            src[tail], w[tail] = -1, 0.0
            rows = Rows(**{**rows.__dict__, "src": src, "w": w})
    return rows


def langevin_rows(dst, x, score, noise, r, snr, *, t=0.0, step=None):
    r"""Rows ``reg[dst] = reg[x] + e reg[score] + sqrt(2 e) reg[noise]``,
    ``e = 2 r (snr |reg[noise]| / |reg[score]|)^2`` per batch row."""
    n = _steps_of(dst, x, score, noise, r, snr, t, step)
    return _rows(LANGEVIN, n, dst, [x, score, noise], [r, snr], t, 1.0, 0.0, 0, 0, step)


def _merge(groups):
    """The rows of ``groups`` ordered by step, keeping the order of the
    groups within a step, as owned columns of a table.

    When no group has two rows in one step (what the builders make), each
    row's place follows from counts per step, and every column is written
    once, straight into place; otherwise a stable sort by step orders them.
    """
    sizes = [g.kind.shape[0] for g in groups]
    n = sum(sizes)
    steps = [np.asarray(g.step) for g in groups]
    n_steps = max((int(st.max()) + 1 for st in steps if st.size), default=0)
    single = all(st.size < 2 or bool(np.all(np.diff(st) > 0)) for st in steps) and all(
        st.size == 0 or st.min() >= 0 for st in steps)
    if all(st.size == n_steps for st in steps) and n_steps * len(groups) == n and single:
        places = [None] * len(groups)  # regular: see below
    elif single and n_steps <= 4 * n + 1:
        counts = np.zeros((len(groups), n_steps), np.int64)
        for i, st in enumerate(steps):
            counts[i, st] = 1
        # a row's place: the rows of earlier steps, then of earlier groups in its step
        before = np.cumsum(counts, axis=0) - counts
        start = np.r_[0, np.cumsum(counts.sum(axis=0))[:-1]]
        places = [start[st] + before[i, st] for i, st in enumerate(steps)]
    else:
        order = np.argsort(np.concatenate(steps), kind="stable")
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        bounds = np.cumsum([0] + sizes)
        places = [rank[bounds[i]:bounds[i + 1]] for i in range(len(groups))]
    # every group on every step (most methods): step k's rows are rows
    # k G .. k G + G - 1, and each group's column is one strided copy
    regular = n_steps * len(groups) == n and all(
        st.size == n_steps and (n_steps < 2 or (st[0] == 0 and bool(np.all(np.diff(st) == 1))))
        for st in steps)
    # as many term columns as the widest group: most programs need 2 or 3
    width = max(g.src.shape[1] for g in groups)
    cols = {}
    for name in _COLUMNS:
        sample = getattr(groups[0], name)
        if name in ("src", "w"):
            col = np.full((n, width), -1 if name == "src" else 0, dtype=sample.dtype)
        else:
            col = np.empty(n, dtype=sample.dtype)
        for i, (g, place) in enumerate(zip(groups, places)):
            value = getattr(g, name)
            if name in ("src", "w"):
                if value.shape[1] > MAX_TERMS:
                    raise ValueError(f"a row takes at most {MAX_TERMS} terms; got {value.shape[1]}")
                if regular:
                    col.reshape(n_steps, len(groups), width)[:, i, :value.shape[1]] = value
                else:
                    col[place, :value.shape[1]] = value
            elif regular:
                col.reshape(n_steps, len(groups))[:, i] = value
            else:
                col[place] = value
        cols[name] = _Owned(col)
    return cols


@dataclass(frozen=True, eq=False)
class StepTable:
    """Rows of the step loop, a register program; see the module docstring
    for the row kinds.

    Build tables with :meth:`affine`, :meth:`heun` and :meth:`langevin`, or
    from row groups (:func:`score_rows`, :func:`normal_rows`,
    :func:`combine_rows`, :func:`langevin_rows`) with :meth:`program`, and
    combine tables with :meth:`concat` (one after another) or
    :meth:`interleave` (step by step, e.g. a predictor followed by a
    corrector). ``step[r]`` is the step (0-based, in run order) row r
    belongs to; the rows of a step are contiguous.

    The constructor takes the columns directly and checks everything a run
    relies on, so a table that constructs always runs:

    - ``kind``: codes of :data:`ROW_KINDS` (kept as int32);
    - ``dst`` (rows,), ``src`` (rows, width): register indices (int32),
      ``src`` ends each row's list with -1 and holds exactly the sources its
      kind reads (score 1, normal 0, combine 1 to MAX_TERMS, langevin 3);
      the width is 1 to MAX_TERMS, at least 2 with score or langevin rows
      (they read two weights), and the table keeps only as many term
      columns as its rows use;
    - ``w`` (rows, width), ``t, m, sd``: finite reals, ``sd >= 0``, the
      weights past a row's sources 0; a score row has ``w1 != 0``; a
      langevin row ``r = w0 >= 0`` and ``snr = w1 >= 0``;
    - ``interval``, ``stream``: integers in [0, 2**32) (kept as int64);
    - ``step``: integers 0, 1, 2, ... in order, each repeated for the rows
      of its step;
    - registers written by normal rows are written by nothing else (the
      driver may point them at the caller's noise), register 0 is not one of
      them, and no score row reads one;
    - every scratch register is written before it is read.

    The columns are copies, read-only; the arrays passed in are not changed.
    """

    kind: np.ndarray
    dst: np.ndarray
    src: np.ndarray
    w: np.ndarray
    t: np.ndarray
    m: np.ndarray
    sd: np.ndarray
    interval: np.ndarray
    stream: np.ndarray
    step: np.ndarray

    #: Row kind codes (from the C core), terms per row, registers per table.
    ROW_KINDS: ClassVar[dict] = ROW_KINDS
    MAX_TERMS: ClassVar[int] = MAX_TERMS
    MAX_REGISTERS: ClassVar[int] = MAX_REGISTERS
    #: The row-group builders, for :meth:`program`.
    score_rows = staticmethod(score_rows)
    normal_rows = staticmethod(normal_rows)
    combine_rows = staticmethod(combine_rows)
    langevin_rows = staticmethod(langevin_rows)

    def __post_init__(self):
        for name in _COLUMNS:
            object.__setattr__(self, name, _own_column(getattr(self, name), name))
        n = self.kind.shape[0]
        for name in _COLUMNS:
            col = getattr(self, name)
            if col.shape[0] != n:
                raise ValueError(f"StepTable column {name} has {col.shape[0]} rows, expected {n} "
                                 "like column kind")
        if self.w.shape[1] != self.src.shape[1]:
            raise ValueError(f"StepTable columns src and w must have the same width (terms per "
                             f"row); got {self.src.shape[1]} and {self.w.shape[1]}")
        for name in ("w",) + _FLOAT_COLUMNS:
            col = getattr(self, name)
            finite = np.isfinite(col)
            if finite.all():
                continue
            bad = np.flatnonzero(~(finite.all(axis=1) if col.ndim == 2 else finite))
            if bad.size:
                r = bad[0]
                value = col[r] if col.ndim == 1 else col[r][~np.isfinite(col[r])][0]
                raise ValueError(f"StepTable column {name} is {value} at row {r} (step {self.step[r]}); "
                                 "coefficients must be finite")
        if np.any(self.sd < 0):
            r = np.flatnonzero(self.sd < 0)[0]
            raise ValueError(f"StepTable column sd (marginal std) is {self.sd[r]} < 0 at row {r}")
        self._check_steps()
        used = _row_bits(self.src >= 0)
        width = self._check_terms(used)
        self._check_registers(used)
        if width < self.src.shape[1]:
            # only the term columns some row uses: C reads the width from the
            # arrays, and every run and copy of the table is that much smaller
            for name in ("src", "w"):
                col = np.ascontiguousarray(getattr(self, name)[:, :width])
                col.setflags(write=False)
                object.__setattr__(self, name, col)

    @classmethod
    def _trusted(cls, derived=None, **columns):
        """A table from columns the package's own builders made, valid by
        construction (their inputs were checked as they were turned into
        columns): fresh, C-contiguous arrays of the C dtypes, src and w as
        narrow as the rows need. Skips the constructor's checks, which on
        small tables cost several times the run; user-built tables always
        take them."""
        table = object.__new__(cls)
        for name in _COLUMNS:
            col = columns[name]
            # the view and the builder's array under it: C reads a table in
            # place only when nothing under it is writeable
            base = col
            while isinstance(base, np.ndarray):
                base.setflags(write=False)
                base = base.base
            object.__setattr__(table, name, col)
        if derived:
            table.__dict__["_derived"] = dict(derived)
        return table

    def _check_steps(self):
        if not self.n_rows:
            return
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

    def _fail(self, r, what):
        r = int(r)
        raise ValueError(f"StepTable row {r} ({self.kind_name(r)}, step {int(self.step[r])}): {what}")

    def _check_terms(self, used):
        # `used`: one byte per row holding which of its MAX_TERMS sources are
        # used (bit 7 = term 0), so tables of millions of rows are checked
        # with a few passes and table lookups.
        n_terms = _POPCOUNT[used]
        two = np.flatnonzero((self.kind == SCORE) | (self.kind == LANGEVIN))
        if two.size and self.w.shape[1] < 2:
            self._fail(two[0], f"its kind reads two weights (w0, w1), but the table has width "
                               f"{self.w.shape[1]} (src and w of shape (rows, width))")
        gap = np.flatnonzero(~_PREFIX[used])
        if gap.size:
            self._fail(gap[0], f"its sources {self.src[gap[0]].tolist()} continue after a -1")
        bad = np.flatnonzero((n_terms < _TERMS_LO[self.kind]) | (n_terms > _TERMS_HI[self.kind]))
        if bad.size:
            r = bad[0]
            a, b = _TERMS[int(self.kind[r])]
            self._fail(r, f"it reads {n_terms[r]} registers; this kind reads "
                          f"{a if a == b else f'{a} to {b}'}")
        # weights beyond a row's terms are 0 (score and langevin rows have two)
        n_weights = np.where((self.kind == SCORE) | (self.kind == LANGEVIN), 2, n_terms)
        # past the most weights any row has, one scan; below it, a column
        # at a time, for the rows with fewer weights
        most = int(n_weights.max()) if n_weights.size else 0
        stray = np.zeros(n_weights.shape, bool)
        if self.w[:, most:].any():
            stray |= self.w[:, most:].any(axis=1)
        for k in range(1, most):
            stray |= (self.w[:, k] != 0) & (n_weights <= k)
        bad = np.flatnonzero(stray)
        if bad.size:
            self._fail(bad[0], f"it has weights {self.w[bad[0]].tolist()} beyond its terms")
        width = max(most, int(n_terms.max()) if n_terms.size else 0, 1)
        if not two.size:
            return width
        score = self.kind == SCORE
        bad = np.flatnonzero(score & (self.w[:, 1] == 0))
        if bad.size:
            self._fail(bad[0], "a score row needs a score weight w1 != 0")
        langevin = self.kind == LANGEVIN
        bad = np.flatnonzero(langevin & ((self.w[:, 0] < 0) | (self.w[:, 1] < 0)))
        if bad.size:
            self._fail(bad[0], f"langevin rows need r = w0 >= 0 and snr = w1 >= 0; got "
                               f"r = {self.w[bad[0], 0]}, snr = {self.w[bad[0], 1]}")
        return width

    def _check_registers(self, used):
        n = self.n_rows
        if not n:
            return
        normal = self.kind == NORMAL
        n_reg = self.n_registers
        by_normal = np.zeros(n_reg, bool)
        by_other = np.zeros(n_reg, bool)
        by_normal[self.dst[normal]] = True
        by_other[self.dst[~normal]] = True
        both = np.flatnonzero(by_normal & (by_other | (np.arange(n_reg) == 0)))
        if both.size:
            k = int(both[0])
            r = np.flatnonzero((self.dst == k) & normal)[0]
            self._fail(r, f"register {k} is written by normal rows and by other rows (or is the "
                          "state); a noise register must hold noise only")
        if by_normal.any():
            score_reads_noise = (self.kind == SCORE) & by_normal[np.maximum(self.src[:, 0], 0)]
            bad = np.flatnonzero(score_reads_noise)
            if bad.size:
                self._fail(bad[0], f"the score is evaluated on register {self.src[bad[0], 0]}, which "
                                   "holds noise")
        # every read of a scratch register comes after a write of it: the
        # first row writing each register (a reversed scatter: the last
        # assignment, i.e. the first row, wins) against the first reading it
        backwards = np.arange(n - 1, -1, -1)
        first_write = np.full(n_reg, n, dtype=np.int64)
        first_write[self.dst[::-1]] = backwards
        first_read = np.full(n_reg + 1, n, dtype=np.int64)
        for k in range(int(_POPCOUNT[np.bitwise_or.reduce(used)]) if n else 0):
            col = np.full(n_reg + 1, n, dtype=np.int64)
            col[self.src[::-1, k] + 1] = backwards
            np.minimum(first_read, col, out=first_read)
        early = np.flatnonzero((first_read[2:] < n) & (first_read[2:] <= first_write[1:]))
        if early.size:
            k = int(early[0]) + 1
            self._fail(first_read[k + 1], f"it reads register {k} before any row writes it")

    # ---- construction --------------------------------------------------
    @classmethod
    def program(cls, *groups):
        """A table from row groups (:class:`Rows`, from :func:`score_rows`,
        :func:`normal_rows`, :func:`combine_rows`, :func:`langevin_rows`).

        Step k is the rows of step k of each group in turn: the rows are
        sorted by step, stably, so within a step the groups keep the order
        given. Groups may cover only some steps (a warm-up, a last step);
        the steps of the whole must be 0, 1, ..., n - 1.
        """
        _check_tables(groups, "program", Rows)
        return cls(**_merge(groups))

    @classmethod
    def affine(cls, a, b=0.0, c=0.0, *, t=0.0, m=1.0, sd=None, interval=None, stream=STREAM_STEP,
               s=None):
        r"""Steps :math:`x \leftarrow a x + b\, s(x, t) + c z`, one per entry.

        The program of step k: ``score E <- s(x, t)`` when ``b != 0``,
        ``normal Z <- z`` when ``c != 0``, then ``combine x <- a x + b E + c Z``
        (terms of zero weight left out). Scalars broadcast to the number of
        steps, given by the longest array. ``interval`` defaults to
        ``0, 1, ..., n-1``. ``s`` is the deprecated name of ``sd``.
        """
        sd = _sd_alias(sd, s)
        n = _steps_of(a, b, c, t, m, sd, interval)
        a, b, c = _column(a, n, "a"), _column(b, n, "b"), _column(c, n, "c")
        t, m, sd = _column(t, n, "t"), _column(m, n, "m"), _column(sd, n, "sd")
        steps = np.arange(n)
        # the default intervals 0 .. n-1 and the default stream need no check
        given = interval is not None
        interval = _column(interval if given else steps, n, "interval", np.int64)
        check_stream = stream is not STREAM_STEP
        stream = _column(stream, n, "stream", np.int64)
        _check_builder_columns(sd=sd, interval=interval if given else None,
                               stream=stream if check_stream else None)
        has_b, has_c = b != 0, c != 0
        any_b, any_c = bool(has_b.any()), bool(has_c.any())
        if (not any_b or has_b.all()) and (not any_c or has_c.all()):
            # every step the same program (all methods but a few chain steps)
            specs = []
            if any_b:
                specs.append((SCORE, REG_SCORE, (REG_X,), (0.0, 1.0), t, m, sd, 0, 0))
            if any_c:
                specs.append((NORMAL, REG_NOISE, (), (), t, 1.0, 0.0, interval, stream))
            # the combine row carries the step's m, sd and interval too
            # (unused by C): they describe the step in messages and
            # affine_coefficients
            specs.append((COMBINE, REG_X, (REG_X,) + (REG_SCORE,) * any_b + (REG_NOISE,) * any_c,
                          (a,) + (b,) * any_b + (c,) * any_c, t, m, sd, interval, 0))
            cols, derived = _regular(n, specs)
            return cls._trusted(derived, **cols)
        with_score, with_noise = np.flatnonzero(has_b), np.flatnonzero(has_c)
        groups = []
        if with_score.size:
            groups.append(_rows(SCORE, with_score.size, REG_SCORE, [REG_X], [0.0, 1.0], t[with_score],
                                m[with_score], sd[with_score], 0, 0, with_score))
        if with_noise.size:
            groups.append(_rows(NORMAL, with_noise.size, REG_NOISE, [], [], t[with_noise], 1.0, 0.0,
                                interval[with_noise], stream[with_noise], with_noise))
        # the combine row carries the step's m, sd and interval too (unused by
        # C): they describe the step in messages and affine_coefficients
        groups.append(_affine_combine(REG_X, REG_X, a, b, c, t, steps, m, sd, interval))
        return cls._trusted(**{name: col.array for name, col in _merge(groups).items()})

    @classmethod
    def heun(cls, a, b, a_end, b_end, *, t, t_end, m=1.0, sd=None, m_end=1.0, sd_end=None,
             s=None, s_end=None):
        r"""Heun (trapezoidal) steps.

        :math:`\tilde x = a x + b\, s(x, t)`, then
        :math:`x' = x/2 + (a_{end} \tilde x + b_{end}\, s(\tilde x, t_{end}))/2`,
        the program ``[score E <- s(x, t)] combine X <- a x + b E
        [score E <- s(X, t_end)] combine X <- a_end X + b_end E;
        combine x <- x/2 + X/2``. ``s``, ``s_end``: deprecated names of
        ``sd``, ``sd_end``.
        """
        sd = _sd_alias(sd, s)
        sd_end = _sd_alias(sd_end, s_end, name="sd_end")
        n = _steps_of(a, b, a_end, b_end, t, t_end, m, sd, m_end, sd_end)
        cols = [_column(v, n, name) for v, name in
                ((a, "a"), (b, "b"), (a_end, "a_end"), (b_end, "b_end"), (t, "t"), (t_end, "t_end"),
                 (m, "m"), (sd, "sd"), (m_end, "m_end"), (sd_end, "sd_end"))]
        a, b, a_end, b_end, t, t_end, m, sd, m_end, sd_end = cols
        _check_builder_columns(sd=sd)
        _check_builder_columns(sd=sd_end)
        steps = np.arange(n)
        has_b, has_be = b != 0, b_end != 0
        any_b, any_be = bool(has_b.any()), bool(has_be.any())
        if (not any_b or has_b.all()) and (not any_be or has_be.all()):
            specs = []
            if any_b:
                specs.append((SCORE, REG_SCORE, (REG_X,), (0.0, 1.0), t, m, sd, 0, 0))
            specs.append((COMBINE, REG_STAGE, (REG_X,) + (REG_SCORE,) * any_b, (a,) + (b,) * any_b,
                          t, m, sd, steps, 0))
            if any_be:
                specs.append((SCORE, REG_SCORE, (REG_STAGE,), (0.0, 1.0), t_end, m_end, sd_end, 0, 0))
            specs.append((COMBINE, REG_STAGE, (REG_STAGE,) + (REG_SCORE,) * any_be,
                          (a_end,) + (b_end,) * any_be, t_end, m_end, sd_end, steps, 0))
            specs.append((COMBINE, REG_X, (REG_X, REG_STAGE), (0.5, 0.5), t_end, m_end, sd_end, steps, 0))
            cols, derived = _regular(n, specs)
            return cls._trusted(derived, **cols)
        groups = []
        first, second = np.flatnonzero(has_b), np.flatnonzero(has_be)
        if first.size:
            groups.append(_rows(SCORE, first.size, REG_SCORE, [REG_X], [0.0, 1.0], t[first], m[first],
                                sd[first], 0, 0, first))
        groups.append(_affine_combine(REG_STAGE, REG_X, a, b, 0.0, t, steps, m, sd, steps))
        if second.size:
            groups.append(_rows(SCORE, second.size, REG_SCORE, [REG_STAGE], [0.0, 1.0], t_end[second],
                                m_end[second], sd_end[second], 0, 0, second))
        groups.append(_affine_combine(REG_STAGE, REG_STAGE, a_end, b_end, 0.0, t_end, steps, m_end, sd_end,
                                      steps))
        groups.append(_rows(COMBINE, n, REG_X, [REG_X, REG_STAGE], [0.5, 0.5], t_end, m_end, sd_end, steps,
                            0, steps))
        return cls._trusted(**{name: col.array for name, col in _merge(groups).items()})

    @classmethod
    def langevin(cls, r, snr, *, t, m=1.0, sd=None, interval=None, sub_step=0, step=None, s=None):
        r"""Langevin corrector sub-steps
        :math:`x \leftarrow x + e\, s + \sqrt{2 e}\, z`, one per entry.

        :math:`e = 2 r (\mathrm{snr} |z| / |s|)^2` per batch row; the program
        ``score E <- s(x, t); normal Z <- z; langevin x <- x, E, Z``. Noise of
        sub-step ``sub_step`` comes from stream ``STREAM_CORRECTOR + sub_step``
        (``sub_step < MAX_SUB_STEPS``), interval ``interval`` (default 0, 1,
        ...). ``step`` (default 0, 1, ...) groups entries into steps, so a
        corrector of several sub-steps per step is one vectorized call.
        ``s`` is the deprecated name of ``sd``.
        """
        sd = _sd_alias(sd, s)
        n = _steps_of(r, snr, t, m, sd, interval, sub_step, step)
        sub = _column(sub_step, n, "sub_step", np.int64)
        if n and (sub.min() < 0 or sub.max() >= MAX_SUB_STEPS):
            bad = int(sub.min()) if sub.min() < 0 else int(sub.max())
            raise ValueError(f"sub_step must lie in [0, {MAX_SUB_STEPS}) (corrector streams "
                             f"{STREAM_CORRECTOR} + sub_step); got {bad}")
        step = _column(np.arange(n) if step is None else step, n, "step", np.int64)
        t = _column(t, n, "t")
        interval = _column(np.arange(n) if interval is None else interval, n, "interval", np.int64)
        # three rows per entry, in entry order: the score, the noise, the move
        kind = np.tile(np.array([SCORE, NORMAL, LANGEVIN], np.int32), n)
        dst = np.tile(np.array([REG_SCORE, REG_NOISE, REG_X], np.int32), n)
        src = np.full((3 * n, 3), -1, np.int32)
        src[0::3, 0] = REG_X
        src[2::3, :3] = (REG_X, REG_SCORE, REG_NOISE)
        w = np.zeros((3 * n, 3))
        w[0::3, 1] = 1.0
        w[2::3, 0] = _column(r, n, "r")
        w[2::3, 1] = _column(snr, n, "snr")
        fill = np.zeros(3 * n)
        m3, sd3 = fill.copy(), fill.copy()
        m3[:] = np.repeat(_column(m, n, "m"), 3)
        sd3[:] = np.repeat(_column(sd, n, "sd"), 3)
        stream = np.zeros(3 * n, np.int64)
        stream[1::3] = STREAM_CORRECTOR + sub
        ints = np.zeros(3 * n, np.int64)
        ints[1::3] = interval
        return cls(kind=_Owned(kind), dst=_Owned(dst), src=_Owned(src), w=_Owned(w),
                   t=_Owned(np.repeat(t, 3)), m=_Owned(m3), sd=_Owned(sd3), interval=_Owned(ints),
                   stream=_Owned(stream), step=_Owned(np.repeat(step, 3)))

    @classmethod
    def concat(cls, *tables):
        """The rows of ``tables`` one after another; steps are renumbered."""
        _check_tables(tables, "concat", StepTable)
        offset, steps = 0, []
        for tab in tables:
            steps.append(tab.step + offset)
            offset += tab.n_steps
        width = max(tab.src.shape[1] for tab in tables)
        cols = {name: np.concatenate([_widened(getattr(tab, name), width, name) for tab in tables])
                for name in _COLUMNS if name != "step"}
        return cls._joined(step=np.concatenate(steps), **cols)

    @classmethod
    def _joined(cls, **columns):
        """A table from the rows of valid tables, rearranged: each part's
        rows, steps and terms stay valid, so only what ties the parts
        together (which registers hold noise) is checked again."""
        table = cls._trusted(**columns)
        table._check_registers(_row_bits(table.src >= 0))
        return table

    @classmethod
    def interleave(cls, *tables):
        """Step k is step k of each table in turn.

        The first table must have every step; later ones may stop earlier
        (a corrector that skips the last step, say).
        """
        _check_tables(tables, "interleave", StepTable)
        counts = [tab.n_steps for tab in tables]
        if any(n > counts[0] for n in counts[1:]):
            raise ValueError(f"interleave: later tables may not have more steps than the first; got {counts}")
        return cls._joined(**{name: col.array for name, col in _merge(tables).items()})

    # ---- derived -------------------------------------------------------
    @property
    def n_rows(self):
        return self.kind.shape[0]

    @property
    def n_steps(self):
        return int(self.step[-1]) + 1 if self.n_rows else 0

    def _memo(self, name, compute):
        """A derived value, computed once: the columns are read-only, and a
        run asks for the same few values several times."""
        cache = self.__dict__.setdefault("_derived", {})
        if name not in cache:
            cache[name] = compute()
        return cache[name]

    @property
    def n_registers(self):
        """1 + the largest register index the table uses (at least 1)."""
        if not self.n_rows:
            return 1
        return self._memo("n_registers", lambda: int(max(self.dst.max(), self.src.max())) + 1)

    @property
    def needs_score(self):
        """Boolean per row: does the row evaluate the score?"""
        return self.kind == SCORE

    @property
    def needs_noise(self):
        """Boolean per row: does the row draw noise?"""
        return self.kind == NORMAL

    @property
    def nfe(self):
        """Score evaluations (of the whole batch) a run of this table makes."""
        return self._memo("nfe", lambda: int(np.count_nonzero(self.needs_score)))

    @property
    def n_noise_intervals(self):
        """Length of a user noise array: 1 + the largest stream-0 interval."""
        def compute():
            rows = self.needs_noise & (self.stream == STREAM_STEP)
            return int(self.interval[rows].max()) + 1 if np.any(rows) else 0
        return self._memo("n_noise_intervals", compute)

    def _written_scratch(self):
        """Boolean per register: is it a scratch register (index >= 1) some
        row writes, i.e. one a run allocates? Read-only."""
        def compute():
            written = np.zeros(self.n_registers, bool)
            written[self.dst] = True
            written[0] = False
            written.setflags(write=False)
            return written
        return self._memo("written_scratch", compute)

    def last_row_of_step(self):
        """Row index ending each step (a read-only array of length n_steps)."""
        def compute():
            if not self.n_rows:
                return self.step
            ends = np.empty(self.n_rows, bool)
            np.not_equal(self.step[1:], self.step[:-1], out=ends[:-1])
            ends[-1] = True
            last = np.flatnonzero(ends)
            last.setflags(write=False)
            return last
        return self._memo("last_row_of_step", compute)

    def carried_steps(self):
        """Boolean per step: does a scratch register written before the step
        is read in it or later (before being rewritten)? A run cut into
        pieces (progress bars) may only cut before steps that carry nothing,
        as each piece starts with fresh scratch registers."""
        carried = np.zeros(self.n_steps + 1, np.int64)
        for k in np.unique(self.src[self.src >= 1]):
            writes = np.flatnonzero(self.dst == k)
            reads = np.flatnonzero((self.src == k).any(axis=1))
            # the write each read sees: the last one before the read's row
            seen = writes[np.searchsorted(writes, reads, side="left") - 1]
            first, last = self.step[seen], self.step[reads]
            span = first < last
            np.add.at(carried, first[span] + 1, 1)
            np.add.at(carried, last[span] + 1, -1)
        return np.cumsum(carried)[:-1] > 0

    def kind_name(self, row):
        return _KIND_NAMES[int(self.kind[row])]

    def affine_coefficients(self):
        """The columns of a table of affine steps (the program :meth:`affine`
        builds), one entry per step: a dict of ``a, b, c, t, m, sd,
        interval``, so ``StepTable.affine(**table.affine_coefficients())``
        rebuilds the table. ValueError for any other program."""
        last = self.last_row_of_step()
        starts = np.r_[0, last[:-1] + 1] if self.n_rows else last
        src, w = self.src[last], self.w[last]
        ok = ((self.kind[last] == COMBINE) & (self.dst[last] == REG_X) & (src[:, 0] == REG_X)
              & (last - starts <= 2) & np.isin(src, (-1, REG_X, REG_SCORE, REG_NOISE)).all(axis=1))
        inner = np.ones(self.n_rows, bool)
        inner[last] = False
        raw_score = (self.kind == SCORE) & (self.src[:, 0] == REG_X) & (self.w[:, 0] == 0) & (self.w[:, 1] == 1)
        plain_noise = (self.kind == NORMAL) & (self.stream == STREAM_STEP)
        if not (np.all(ok) and np.all(~inner | raw_score | plain_noise)):
            raise ValueError("affine_coefficients needs a table of affine steps (StepTable.affine)")
        return {"a": w[:, 0].copy(), "b": np.where(src == REG_SCORE, w, 0.0).sum(axis=1),
                "c": np.where(src == REG_NOISE, w, 0.0).sum(axis=1), "t": self.t[last].copy(),
                "m": self.m[last].copy(), "sd": self.sd[last].copy(), "interval": self.interval[last].copy()}

    def __repr__(self):
        return (f"StepTable({self.n_steps} steps, {self.n_rows} rows, {self.n_registers} registers, "
                f"nfe={self.nfe})")


def _check_builder_columns(sd=None, interval=None, stream=None):
    """What the constructor checks of the columns a builder takes from its
    caller, beyond finiteness (:func:`_column`): a builder that passes this
    makes a valid table by construction."""
    if sd is not None and sd.size and not sd.min() >= 0:  # (finite already)
        k = int(np.flatnonzero(sd < 0)[0])
        raise ValueError(f"StepTable column sd (marginal std) is {float(sd[k])} < 0 at step {k}")
    low, high = _INT_RANGES["interval"]
    for name, col in (("interval", interval), ("stream", stream)):
        if col is not None and col.size:
            lo, hi = int(col.min()), int(col.max())
            if lo < low or hi > high:
                raise ValueError(f"StepTable column {name} has the value {lo if lo < low else hi}; "
                                 f"its entries must lie in [{low}, {high}]")


_PATTERNS = {}


def _pattern(specs):
    """The per-step constants of a regular program, made once per layout:
    its width, kind/dst/src rows, registers and the scratch registers it
    writes."""
    key = tuple((sp[0], sp[1], tuple(sp[2]), len(sp[3])) for sp in specs)
    pattern = _PATTERNS.get(key)
    if pattern is None:
        width = max(max(len(sp[2]), len(sp[3]), 1) for sp in specs)
        kind = np.array([sp[0] for sp in specs], np.int32)
        dst = np.array([sp[1] for sp in specs], np.int32)
        src = np.array([list(sp[2]) + [-1] * (width - len(sp[2])) for sp in specs], np.int32)
        n_registers = max([sp[1] for sp in specs] + [k for sp in specs for k in sp[2]]) + 1
        written = np.zeros(n_registers, bool)
        written[dst] = True
        written[0] = False
        for arr in (kind, dst, src, written):
            arr.setflags(write=False)
        pattern = _PATTERNS[key] = (width, kind, dst, src, n_registers, written,
                                    int(np.count_nonzero(kind == SCORE)))
    return pattern


def _regular(n, specs):
    """The columns of ``n`` steps that each run the same rows, one per
    spec ``(kind, dst, srcs, weights, t, m, sd, interval, stream)`` in
    order; sources are registers, the other entries scalars or per-step
    columns (checked). Each column is allocated once and written with one
    broadcast or strided copy per spec: no merge, no sort, no temporaries.
    Also returns what a run asks of the table, known here without a pass
    over it."""
    g = len(specs)
    width, kind_row, dst_row, src_rows, n_registers, written, scores = _pattern(specs)
    kind = np.empty((n, g), np.int32)
    kind[:] = kind_row
    dst = np.empty((n, g), np.int32)
    dst[:] = dst_row
    src = np.empty((n, g, width), np.int32)
    src[:] = src_rows
    w = np.zeros((n, g, width))
    for i, sp in enumerate(specs):
        for k, wk in enumerate(sp[3]):
            if not (type(wk) is float and wk == 0.0):
                w[:, i, k] = wk
    cols = {"kind": kind, "dst": dst, "src": src, "w": w}
    for j, name in enumerate(("t", "m", "sd", "interval", "stream")):
        values = [sp[4 + j] for sp in specs]
        if j < 3:
            col = np.empty((n, g))
        else:
            col = np.zeros((n, g), np.int64)
            values = [None if type(v) is int and v == 0 else v for v in values]
        first = values[0]
        if all(v is first for v in values):
            if first is not None:
                col[:] = first[:, None] if type(first) is np.ndarray else first
        else:
            for i, v in enumerate(values):
                if v is not None:
                    col[:, i] = v
        cols[name] = col
    step = np.empty((n, g), np.int64)
    step[:] = np.arange(n)[:, None]
    cols["step"] = step
    cols = {name: col.reshape(n * g, *col.shape[2:]) for name, col in cols.items()}
    last = np.arange(g - 1, n * g, g)
    last.setflags(write=False)
    if not n:
        n_registers, written = 1, np.zeros(1, bool)
    derived = {"n_registers": n_registers, "nfe": n * scores, "last_row_of_step": last,
               "written_scratch": written}
    # the driver stores a raw score (w0 = 0, w1 = 1) straight into a scratch
    # register; any other score row needs a buffer for the values
    raw = [all(type(v) is float for v in sp[3]) and tuple(sp[3]) == (0.0, 1.0) and sp[1] not in (0, sp[2][0])
           for sp in specs if sp[0] == SCORE]
    if n and all(raw):
        derived["needs_score_buffer"] = False
    return cols, derived


def _widened(col, width, name):
    """A term column (src or w) padded to ``width`` (-1 sources, 0
    weights); other columns as they are."""
    if name not in ("src", "w") or col.shape[1] == width:
        return col
    wide = np.full((col.shape[0], width), -1 if name == "src" else 0, col.dtype)
    wide[:, :col.shape[1]] = col
    return wide


def _affine_combine(dst, x, a, b, c, t, steps, m=1.0, sd=0.0, interval=0):
    """``combine reg[dst] <- a reg[x] + b E + c Z``: the state term always,
    the score and noise terms where their weight is nonzero (exactly the
    terms, in the order, the one-stage kernel evaluated)."""
    n = steps.size
    b = np.broadcast_to(b, (n,))
    c = np.broadcast_to(c, (n,))
    has_b, has_c = b != 0, c != 0
    any_b, any_c = bool(has_b.any()), bool(has_c.any())
    width = 1 + any_b + any_c
    src = np.empty((n, width), np.int32)
    w = np.empty((n, width))
    src[:, 0], w[:, 0] = x, a
    if any_b and any_c and has_b.all() and has_c.all():
        src[:, 1], w[:, 1], src[:, 2], w[:, 2] = REG_SCORE, b, REG_NOISE, c
    elif width > 1:
        # the terms present, moved left: the score's, then the noise's
        src[:, 1] = np.where(has_b, REG_SCORE, np.where(has_c, REG_NOISE, -1))
        w[:, 1] = np.where(has_b, b, np.where(has_c, c, 0.0))
        if width > 2:
            both = has_b & has_c
            src[:, 2] = np.where(both, REG_NOISE, -1)
            w[:, 2] = np.where(both, c, 0.0)
    return Rows(kind=np.full(n, COMBINE, np.int32), dst=np.full(n, dst, np.int32), src=src, w=w,
                t=np.broadcast_to(t, (n,)), m=np.broadcast_to(m, (n,)), sd=np.broadcast_to(sd, (n,)),
                interval=np.broadcast_to(interval, (n,)), stream=np.zeros(n, np.int64), step=steps)

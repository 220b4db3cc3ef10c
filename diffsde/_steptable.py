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

KINDS = {"affine": 0, "heun_predict": 1, "heun_correct": 2, "langevin": 3}
_KIND_NAMES = {v: k for k, v in KINDS.items()}
_FLOAT_COLUMNS = ("a", "b", "c", "t", "m", "s")
_UINT32_LIMIT = 2**32


def _column(value, n, name, dtype=np.float64):
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers; got dtype {arr.dtype}")
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


@dataclass(frozen=True, eq=False)
class StepTable:
    """Rows of the step loop; see the module docstring for their meaning.

    Build tables with :meth:`affine`, :meth:`heun` and :meth:`langevin`, and
    combine them with :meth:`concat` (one after another) or :meth:`interleave`
    (step by step, e.g. a predictor followed by a corrector). ``step[r]`` is
    the step (0-based, in run order) row r belongs to; the rows of a step are
    contiguous.
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
        n = self.kind.shape[0]
        for name in ("kind", "interval", "stream", "step") + _FLOAT_COLUMNS:
            col = getattr(self, name)
            if col.shape != (n,):
                raise ValueError(f"StepTable column {name} has shape {col.shape}, expected ({n},)")
            col.setflags(write=False)
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
        if np.any((self.interval < 0) | (self.interval >= _UINT32_LIMIT)):
            raise ValueError("StepTable intervals must lie in [0, 2**32)")
        if np.any((self.stream < 0) | (self.stream >= _UINT32_LIMIT)):
            raise ValueError("StepTable streams must lie in [0, 2**32)")
        if n and (np.any(np.diff(self.step) < 0) or self.step[0] < 0):
            raise ValueError("StepTable steps must be non-negative and non-decreasing")
        unknown = ~np.isin(self.kind, list(KINDS.values()))
        if np.any(unknown):
            raise ValueError(f"StepTable has an unknown kind {self.kind[unknown][0]}")
        predict = np.flatnonzero(self.kind == KINDS["heun_predict"])
        correct = np.flatnonzero(self.kind == KINDS["heun_correct"])
        if not np.array_equal(predict + 1, correct):
            raise ValueError("each heun_predict row must be followed by exactly one heun_correct row")
        heun = (self.kind == KINDS["heun_predict"]) | (self.kind == KINDS["heun_correct"])
        if np.any(heun & (self.c != 0)):
            raise ValueError("Heun rows are deterministic: their noise coefficient c must be 0")
        langevin = self.kind == KINDS["langevin"]
        if np.any(langevin & ((self.a < 0) | (self.c < 0))):
            raise ValueError("langevin rows need r = a >= 0 and snr = c >= 0")

    # ---- construction --------------------------------------------------
    @classmethod
    def _build(cls, kind, n, a, b, c, t, m, s, interval, stream, step):
        return cls(
            kind=_column(kind, n, "kind", np.int32),
            a=_column(a, n, "a"),
            b=_column(b, n, "b"),
            c=_column(c, n, "c"),
            t=_column(t, n, "t"),
            m=_column(m, n, "m"),
            s=_column(s, n, "s"),
            interval=_column(np.arange(n) if interval is None else interval, n, "interval", np.int64),
            stream=_column(stream, n, "stream", np.int64),
            step=_column(np.arange(n) if step is None else step, n, "step", np.int64),
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
    def langevin(cls, r, snr, *, t, m=1.0, s=0.0, interval=None, sub_step=0):
        """Langevin corrector steps ``x <- x + e score + sqrt(2 e) z``.

        ``e = 2 r (snr |z| / |score|)^2`` per batch row; noise from stream
        ``2 + sub_step``.
        """
        n = _steps_of(r, snr, t, m, s, interval)
        return cls._build(KINDS["langevin"], n, r, 1.0, snr, t, m, s, interval, 2 + sub_step, None)

    @classmethod
    def concat(cls, *tables):
        """The rows of ``tables`` one after another; steps are renumbered."""
        offset, steps = 0, []
        for tab in tables:
            steps.append(tab.step + offset)
            offset += tab.n_steps
        cols = {name: np.concatenate([getattr(tab, name) for tab in tables])
                for name in ("kind", "interval", "stream") + _FLOAT_COLUMNS}
        return cls(step=np.concatenate(steps) if steps else np.zeros(0, np.int64), **cols)

    @classmethod
    def interleave(cls, *tables):
        """Step k is step k of each table in turn.

        The first table must have every step; later ones may stop earlier
        (a corrector that skips the last step, say).
        """
        counts = [tab.n_steps for tab in tables]
        if any(n > counts[0] for n in counts[1:]):
            raise ValueError(f"interleave: later tables may not have more steps than the first; got {counts}")
        merged = cls.concat(*tables)
        # concat renumbered steps; restore each table's own numbering, then
        # order by step, keeping table order within a step (stable sort).
        own_step = np.concatenate([tab.step for tab in tables])
        order = np.argsort(own_step, kind="stable")
        cols = {name: getattr(merged, name)[order]
                for name in ("kind", "interval", "stream") + _FLOAT_COLUMNS}
        return cls(step=own_step[order], **cols)

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

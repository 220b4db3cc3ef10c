"""From (process, method, grid, options) to the StepTable a run executes:
the one path ``forward``, ``reverse`` and ``ds.methods.table`` share."""
import numbers

import numpy as np

from .._validation import check_fits, integer, real_scalar, shown
from ..grids import _check_ends, _ramp
from .._steptable import StepTable
from . import _registry
from ._registry import capabilities, check_options, resolve

DEFAULT_SDE_STEPS = 1000


def steps_value(steps, default):
    if steps is None:
        return default
    steps = integer(steps, "steps", 1)
    # the per-step table and grid take ~100 bytes a step
    check_fits(100 * int(steps), f"a run of {int(steps):,} steps")
    return int(steps)


def _chain_grid(chain, steps, span_given, span_names):
    """A chain's own grid; a time span or user grid does not apply."""
    if span_given:
        raise ValueError(f"a chain runs on its own grid t_i = i T / N: {span_names} do not apply "
                         "(use chain.respace(M) for fewer steps)")
    if steps is not None and steps_value(steps, None) != chain.N:
        raise ValueError(f"steps must be None or N = {chain.N} for this chain; for fewer "
                         f"steps use chain.respace({steps})")
    return chain.t


def _user_grid(ts, T, direction):
    """ts checked: 1-D, finite, strictly monotone in the run's direction, in [0, T]."""
    grid = np.asarray(ts)
    if grid.dtype.kind not in "iuf":
        raise TypeError(f"ts must be real numbers (times in [0, T]); got dtype {grid.dtype}")
    grid = grid.astype(np.float64)
    if not np.all(np.isfinite(grid)):
        raise ValueError(f"ts must be finite; got {float(grid[~np.isfinite(grid)][0])!r}")
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError(f"ts must be a 1-D grid of at least 2 times; got shape {grid.shape}")
    steps = np.diff(grid) if direction == "forward" else -np.diff(grid)
    if not np.all(np.isfinite(grid)) or np.any(steps <= 0):
        word = "increase" if direction == "forward" else "decrease"
        raise ValueError(f"ts must {word} strictly for a {direction} run")
    if grid.min() < 0 or grid.max() > T:
        raise ValueError(f"ts must lie in [0, T] = [0, {T:g}]; got [{grid.min():g}, {grid.max():g}]")
    return grid


def forward_grid(process, steps, t0, t1, ts):
    """The run's grid of times (increasing), docs/conventions.md."""
    if "chain" in capabilities(process):
        return _chain_grid(process, steps, ts is not None or t1 is not None or t0 != 0.0, "t0, t1 and ts")
    T = process.T
    if ts is not None:
        if steps is not None or t1 is not None or t0 != 0.0:
            raise ValueError("pass either ts or steps/t0/t1, not both")
        return _user_grid(ts, T, "forward")
    n = steps_value(steps, DEFAULT_SDE_STEPS)
    t0 = real_scalar(t0, "t0")
    t1 = T if t1 is None else real_scalar(t1, "t1")
    if not 0 <= t0 < t1 <= T:
        raise ValueError(f"need 0 <= t0 < t1 <= T = {T:g}; got t0={t0!r}, t1={t1!r}")
    return _ramp(t0, t1, n)


def reverse_grid(process, steps, t_start, t_end, ts):
    """The increasing grid t_0 < ... < t_N a reverse run walks down."""
    if "chain" in capabilities(process):
        return _chain_grid(process, steps, ts is not None or t_start is not None or t_end != 0.0,
                           "t_start, t_end and ts")
    T = process.T
    if ts is not None:
        if steps is not None or t_start is not None or t_end != 0.0:
            raise ValueError("pass either ts or steps/t_start/t_end, not both")
        return _user_grid(ts, T, "reverse")[::-1].copy()
    n = steps_value(steps, DEFAULT_SDE_STEPS)
    t_start = process.default_t_start if t_start is None else real_scalar(t_start, "t_start")
    t_end = real_scalar(t_end, "t_end")
    _check_ends(t_start, t_end, T)
    return _ramp(t_end, t_start, n)


def forward_table(process, method, grid, options):
    """(record, table) of a forward run on the increasing ``grid``."""
    record = resolve(process, method, "forward")
    opts = check_options(record, process, options)
    return record, record.build(process.grid_view(grid), **opts)


def reverse_methods(process, method, corrector, options):
    """The predictor and corrector records and their checked options, in
    the order ``reverse`` has always checked them: the method, options of a
    corrector given without one, the method's options, the corrector's."""
    record = resolve(process, method, "reverse")
    correctors = _registry.records("corrector")
    corrector_options = {opt.name for rec in correctors for opt in rec.options}
    own = {k: v for k, v in options.items() if k not in corrector_options}
    extra = {k: v for k, v in options.items() if k in corrector_options}
    if corrector is None:
        for name, value in extra.items():
            opt = next(o for rec in correctors for o in rec.options if o.name == name)
            if value is not None and not _registry._same(value, opt.unset):
                takers = " or ".join(repr(rec.name) for rec in correctors if rec.option(name) is not None)
                raise ValueError(f"{name}={shown(value)} applies to corrector={takers} only; got "
                                 f"corrector=None with method={record.name!r} on {type(process).__name__}")
    opts = check_options(record, process, own)
    if corrector is None:
        return record, opts, None, {}
    names = [rec.name for rec in correctors]
    if not isinstance(corrector, str) or corrector not in names:
        raise ValueError(f"corrector must be None or {' or '.join(map(repr, names))}; got {shown(corrector)}")
    corr = _registry.get(corrector, "corrector")
    if not corr.applies_to(process):
        raise ValueError(f"corrector {corrector!r} is not available for {type(process).__name__}")
    return record, opts, corr, check_options(corr, process, extra)


def _reverse_view(process, grid, record):
    view = process.grid_view(grid)
    return view.chain_view(record.name) if record.kind == "chain" else view


def reverse_table(process, grid, record, opts, corr=None, corr_opts=None):
    """The StepTable of a reverse run down the increasing ``grid``, and the
    view it was built on (its ``sd[-1]`` scales the prior)."""
    view = _reverse_view(process, grid, record)
    table = record.build(view, **opts)
    if corr is not None:
        correctors = corr.build(view, **corr_opts)
        # at_start: each step's corrector sub-steps run before its predictor row
        table = (StepTable.interleave(*correctors, table) if corr_opts.get("corrector_at_start", True)
                 else StepTable.interleave(table, *correctors))
    return table, view


def _steps_or_ts(grid):
    return (grid, None) if grid is None or isinstance(grid, numbers.Integral) else (None, grid)


def view(process, method=None, grid=None, *, direction="reverse"):
    """The :class:`GridView` ``method``'s table is built on, for the grid of
    :func:`table` (``process.grid_view``, or for a chain method on a VPSDE
    the DDPM chain with the SDE's marginals on that grid)."""
    steps, ts = _steps_or_ts(grid)
    if direction == "forward":
        resolve(process, method, "forward")
        return process.grid_view(forward_grid(process, steps, 0.0, None, ts))
    if direction != "reverse":
        raise ValueError(f"direction must be 'reverse' or 'forward'; got {shown(direction)}")
    return _reverse_view(process, reverse_grid(process, steps, None, 0.0, ts), resolve(process, method, "reverse"))


def table(process, method=None, grid=None, *, direction="reverse", corrector=None, **options):
    """The StepTable ``forward`` or ``reverse`` runs for ``process`` and ``method``.

    Parameters
    ----------
    process : AffineSDE (any) or chain
    method : str, optional
        A name from :func:`available`; None: the default.
    grid : None, int or array, optional
        None: the default grid (a chain's own grid; an SDE's 1000 equal
        steps over [0, T] forward, from ``default_t_start`` down to 0 in
        reverse); an int: that many equal steps over the same span; an
        array: the run's times in run order (``ts=`` of forward/reverse).
    direction : {"reverse", "forward"}
    corrector : None or "langevin"
        Reverse only.
    **options
        The method's options (``alpha``, ``variance``, ``eta``,
        ``last_step_noise``; with a corrector ``snr``, ``n_corrector_steps``,
        ``corrector_at_start``); an option the method does not take raises
        ValueError naming the method and the process.

    Returns
    -------
    StepTable

    Examples
    --------
    >>> import diffsde as ds
    >>> ds.methods.table(ds.VPSDE(), "ddim", 10, eta=0.5)
    StepTable(10 steps, 10 rows, nfe=10)
    """
    steps, ts = _steps_or_ts(grid)
    if direction == "forward":
        if corrector is not None:
            raise ValueError(f"corrector applies to reverse runs only; got corrector={shown(corrector)}")
        record = resolve(process, method, "forward")
        return forward_table(process, record.name, forward_grid(process, steps, 0.0, None, ts), options)[1]
    if direction != "reverse":
        raise ValueError(f"direction must be 'reverse' or 'forward'; got {shown(direction)}")
    record, opts, corr, corr_opts = reverse_methods(process, method, corrector, options)
    return reverse_table(process, reverse_grid(process, steps, None, 0.0, ts), record, opts, corr, corr_opts)[0]

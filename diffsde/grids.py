r"""Time grids for reverse runs: the spacings samplers are usually run with.

Every function takes a process of the protocol (:class:`~diffsde.AffineSDE`
and the built-ins) and ``n``, the number of steps, and returns a strictly
decreasing float64 array of n + 1 times

.. math:: t_0 = t_\text{start} > t_1 > \dots > t_n = t_\text{end},

whose first and last points are exactly ``t_start`` and ``t_end`` (no point
is rounded outside [0, T] and none is appended), ready for
``ds.reverse(..., ts=grid)``.

==============  ===============================================  ==============================
grid            equally spaced in                                used by
==============  ===============================================  ==============================
``uniform``     t                                                score_sde; ``steps=N``
``logsnr``      lambda(t) = log(m/s) (= ``exponential``:         DPM-Solver (Lu et al. 2022)
                log sigma, sigma = s/m)
``quadratic``   sqrt(t - t_end)                                  DDIM (Song et al. 2021)
``karras``      sigma^(1/rho)                                    EDM (Karras et al. 2022)
==============  ===============================================  ==============================

Only the protocol is used: ``sigma_of_t``, ``t_of_sigma``, ``lambda_of_t``,
``t_of_lambda``, ``default_t_start``, ``default_t_end`` and ``T``. The noise
level is sigma = s/m, the sigma of the sampler's variable x/m. On a VE SDE
this is :math:`\sqrt{\sigma(t)^2 - \sigma_\text{min}^2}`, not score_sde's
sigma(t): a ``sigma_min``/``sigma_max`` given to :func:`karras` is in this
convention.

Ends by default: ``t_start = process.default_t_start`` (T, or 1 - 1e-3 for
RectifiedFlow, where sigma is infinite at T) and ``t_end =
process.default_t_end``, the process's usual sampling end (1e-3 T for VP,
sub-VP, RectifiedFlow and a user's AffineSDE, score_sde's epsilon; 1e-5 T for
VE, score_sde's epsilon for VE; sigma_min for EDM). The logSNR grid needs
t_end > 0 whenever s(0) = 0 (lambda is infinite there); ``reverse`` itself
still defaults to t_end = 0 (see docs/conventions.md).

Chains (DDPM, SMLD) live on their own integer grid: pick their steps with
``chain.respace(M, spacing=...)``, or run a continuous sampler on
``chain.as_sde()`` with these grids. k-diffusion's Karras grid on a discrete
model puts every step at a fractional timestep (the model's time
interpolated linearly in log sigma between chain indices); a run on a chain
of diffsde steps from index to index, and only the evaluations inside a
step (midpoints, stages, churned levels) use fractional times, with that
interpolation: the functions here raise on a chain.
"""
import numpy as np

from ._protocol import is_chain
from ._validation import integer, real_scalar, shown

__all__ = ["uniform", "logsnr", "exponential", "quadratic", "karras"]


def _protocol(process):
    # a chain is recognized by its marker, before the protocol check, so a
    # chain that also exposes a sigma view still raises here
    if is_chain(process):
        raise TypeError(
            f"grids build times for a continuous process; {process!r} is a chain on the integer grid "
            f"i = 0..N: choose its steps with chain.respace(M, spacing='trailing'|'leading'|'linspace'), "
            f"or use a grid of chain.as_sde()")
    needed = ("sigma_of_t", "t_of_sigma", "lambda_of_t", "t_of_lambda", "default_t_start", "T")
    if all(hasattr(process, name) for name in needed):
        return process
    raise TypeError(f"process must follow the process protocol (an AffineSDE such as VPSDE, VESDE, EDM, "
                    f"RectifiedFlow); got {type(process).__name__}")


def _ends(process, t_start, t_end):
    """(t_start, t_end) as floats with 0 <= t_end < t_start <= T."""
    T = float(process.T)
    t_start = float(process.default_t_start) if t_start is None else real_scalar(t_start, "t_start")
    if t_end is None:
        t_end = float(getattr(process, "default_t_end", 1e-3 * T))
    else:
        t_end = real_scalar(t_end, "t_end")
    _check_ends(t_start, t_end, T)
    return t_start, t_end


def _check_ends(t_start, t_end, T):
    """ValueError unless 0 < t_start <= T and 0 <= t_end < t_start: the span
    of a reverse run (these grids' and ``reverse(..., steps=n)``'s)."""
    if not 0 < t_start <= T:
        raise ValueError(f"t_start must lie in (0, T] = (0, {T:g}]; got {t_start!r}")
    if not 0 <= t_end < t_start:
        raise ValueError(f"t_end must lie in [0, t_start) = [0, {t_start:g}); got {t_end!r}")


def _finish(inner, t_start, t_end, what):
    """The grid with its ends set exactly, checked strictly decreasing."""
    grid = np.asarray(inner, dtype=np.float64).copy()
    grid[0], grid[-1] = t_start, t_end
    if not np.all(np.diff(grid) < 0):
        i = int(np.flatnonzero(~(np.diff(grid) < 0))[0])
        raise ValueError(f"the {what} grid is not strictly decreasing at points {i} and {i + 1} "
                         f"(t = {float(grid[i])!r}, {float(grid[i + 1])!r}): too many steps for the "
                         f"resolution of t in float64 there; use fewer steps or other ends")
    return grid


def _ramp(start, stop, n, power=1):
    r"""The n + 1 points :math:`a + (b - a) (k/n)^p`, k = 0..n, from ``start``
    = a to ``stop`` = b: the one interpolation every grid here is made of
    (p = 1 in t, lambda or sigma^(1/rho); p = 2 for :func:`quadratic`), and
    the equal steps of ``forward``/``reverse(..., steps=n)`` and of the
    likelihood's fixed-step Heun, so that they are the same floats."""
    return start + (stop - start) * (np.arange(n + 1) / n) ** power


def uniform(process, n, t_start=None, t_end=None):
    r"""Equally spaced times: :math:`t_k = t_\text{start} + (t_\text{end} - t_\text{start})\, k / n`.

    The grid of Song et al. (2021) and of ``reverse(..., steps=n)``: with the
    same ends it is that grid, except that its first point is exactly
    ``t_start`` (``steps=`` computes it as t_end + (t_start - t_end) n/n).

    Parameters
    ----------
    process : a process of the protocol (not a chain)
    n : int >= 1
        The number of steps.
    t_start, t_end : float, optional
        The ends, 0 <= t_end < t_start <= T; defaults ``process.default_t_start``
        and ``process.default_t_end``.

    Returns
    -------
    ndarray of shape (n + 1,)
        Decreasing times from t_start to t_end.
    """
    process = _protocol(process)
    n = integer(n, "n", 1)
    t_start, t_end = _ends(process, t_start, t_end)
    return _finish(_ramp(t_end, t_start, n)[::-1], t_start, t_end, "uniform")


def _lambda_at(process, t, which):
    lam = float(process.lambda_of_t(t))
    if not np.isfinite(lam):
        raise ValueError(f"{which} = {t!r} has lambda = log(m/s) = {lam!r} on {process!r}; a grid "
                         f"uniform in lambda needs finite ends (0 < sigma = s/m < inf): "
                         f"{'give t_end > 0' if which == 't_end' else 'give t_start < T'}")
    return lam


def logsnr(process, n, t_start=None, t_end=None):
    r"""Times equally spaced in the half-log-SNR :math:`\lambda(t) = \log(m/s)`.

    .. math:: \lambda_k = \lambda(t_\text{start}) + \frac{k}{n}
              \left(\lambda(t_\text{end}) - \lambda(t_\text{start})\right), \qquad
              t_k = t_\lambda(\lambda_k),

    the "logSNR" time steps of DPM-Solver (Lu et al. 2022, section 3.3 and
    appendix), on which its exponential integrators take equal steps h.
    Since sigma = s/m = e^{-lambda}, this is also the grid equally spaced in
    log sigma (:func:`exponential`, k-diffusion's
    ``get_sigmas_exponential``). Inner points come from the process's
    ``t_of_lambda`` (a closed form or a bisection to rounding); the ends are
    exact.

    Parameters
    ----------
    process : a process of the protocol (not a chain)
    n : int >= 1
    t_start, t_end : float, optional
        As for :func:`uniform`; lambda must be finite at both (t_end > 0 when
        s(0) = 0, t_start < 1 on RectifiedFlow).

    Returns
    -------
    ndarray of shape (n + 1,)
    """
    process = _protocol(process)
    n = integer(n, "n", 1)
    t_start, t_end = _ends(process, t_start, t_end)
    lam0, lam1 = _lambda_at(process, t_start, "t_start"), _lambda_at(process, t_end, "t_end")
    lams = _ramp(lam0, lam1, n)
    inner = np.empty(n + 1)
    if n > 1:
        inner[1:-1] = process.t_of_lambda(lams[1:-1])
    return _finish(inner, t_start, t_end, "logsnr")


#: Equally spaced in log sigma, sigma = s/m = exp(-lambda): the same grid as :func:`logsnr`.
exponential = logsnr


def quadratic(process, n, t_start=None, t_end=None):
    r"""Times equally spaced in the square root of t - t_end: DDIM's "quad"
    skip sequence (Song, Meng & Ermon 2021, appendix D.2).

    .. math:: t_k = t_\text{end} + (t_\text{start} - t_\text{end})
              \left(\frac{n - k}{n}\right)^2, \qquad k = 0, \dots, n,

    in run order (k = 0 is t_start), so the steps shrink quadratically
    towards t_end, where the data's detail is resolved.

    Parameters
    ----------
    process : a process of the protocol (not a chain)
    n : int >= 1
    t_start, t_end : float, optional
        As for :func:`uniform`.

    Returns
    -------
    ndarray of shape (n + 1,)
    """
    process = _protocol(process)
    n = integer(n, "n", 1)
    t_start, t_end = _ends(process, t_start, t_end)
    return _finish(_ramp(t_end, t_start, n, power=2)[::-1], t_start, t_end, "quadratic")


def karras(process, n, rho=7.0, sigma_min=None, sigma_max=None, *, t_start=None, t_end=None):
    r"""Times whose noise levels sigma = s/m follow Karras et al. (2022), eq. 5.

    .. math:: \sigma_k = \left(\sigma_\text{max}^{1/\rho} + \frac{k}{n}
              \left(\sigma_\text{min}^{1/\rho} - \sigma_\text{max}^{1/\rho}\right)\right)^\rho,
              \qquad t_k = t_\sigma(\sigma_k), \quad k = 0, \dots, n,

    without the final sigma = 0 that EDM appends (give ``t_end`` with
    sigma(t_end) = 0, or ``sigma_min=0``, to end at the data). rho = 7 is
    their choice; rho = 1 is uniform in sigma, and rho -> inf tends to the
    grid uniform in log sigma (:func:`logsnr`). On :class:`~diffsde.EDM`
    (t = sigma) the grid is eq. 5 itself.

    Parameters
    ----------
    process : a process of the protocol (not a chain)
    n : int >= 1
    rho : float > 0
    sigma_min, sigma_max : float, optional
        The noise levels s/m of the ends (on VE: sqrt(sigma(t)^2 -
        sigma(0)^2), not score_sde's sigma(t)); default sigma at t_end and
        t_start. Give each end either as a sigma or as a time, not both.
    t_start, t_end : float, optional
        As for :func:`uniform`.

    Returns
    -------
    ndarray of shape (n + 1,)
    """
    process = _protocol(process)
    n = integer(n, "n", 1)
    rho = real_scalar(rho, "rho", "positive")
    for sig, t, label in ((sigma_min, t_end, "end"), (sigma_max, t_start, "start")):
        if sig is not None and t is not None:
            raise ValueError(f"give the {label} either as sigma_{'min' if label == 'end' else 'max'} or as "
                             f"t_{label}, not both; got {shown(sig)} and {shown(t)}")
    if sigma_max is not None:
        sigma_max = real_scalar(sigma_max, "sigma_max", "positive")
        t_start = float(process.t_of_sigma(sigma_max))
    if sigma_min is not None:
        sigma_min = real_scalar(sigma_min, "sigma_min", "non_negative")
        t_end = float(process.t_of_sigma(sigma_min))
    t_start, t_end = _ends(process, t_start, t_end)
    if sigma_max is None:
        sigma_max = float(process.sigma_of_t(t_start))
    if sigma_min is None:
        sigma_min = float(process.sigma_of_t(t_end))
    if not np.isfinite(sigma_max):
        raise ValueError(f"sigma = s/m is infinite at t_start = {t_start!r} on {process!r}; give t_start "
                         f"< T or a finite sigma_max")
    if not sigma_min < sigma_max:
        raise ValueError(f"sigma_min must be below sigma_max; got sigma_min={sigma_min!r}, sigma_max={sigma_max!r}")
    sigmas = _ramp(sigma_max ** (1 / rho), sigma_min ** (1 / rho), n) ** rho
    inner = np.empty(n + 1)
    if n > 1:
        inner[1:-1] = process.t_of_sigma(sigmas[1:-1])
    return _finish(inner, t_start, t_end, "karras")

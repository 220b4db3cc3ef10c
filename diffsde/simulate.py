"""ds.forward and ds.reverse: processes in, Trajectory out."""
import dataclasses
import numbers
from dataclasses import dataclass

import numpy as np

from . import _dask
from ._frameworks import adapt, array_in, state_in
from ._engine import as_state, execute, prepare
from ._validation import integer, real_scalar
from ._steptable import StepTable, score_rows
from ._rng import STREAM_INITIAL, fill_normal, key_from_rng
from .brownian import BrownianPath
from .methods import _plan, _rk45
from .methods._plan import forward_grid, reverse_grid
from .scores import BoundScore, EmpiricalData, GaussianMixture

@dataclass(frozen=True)
class Trajectory:
    """The result of a simulation.

    Attributes
    ----------
    x : ndarray, torch.Tensor or jax.Array
        The final state, of the type of the state the run was given (a
        CPU torch tensor without grad for a tensor, a new JAX array for a
        JAX array, a dask array computed lazily for a dask array:
        docs/dask.md; NumPy for ``shape=``), in the run's dtype; ``out``
        itself when ``out=`` was given.
    xs : same type as the state, shape ``(n_saved, *x.shape)``
        Saved states, in run order.
    ts : ndarray, shape (n_saved,)
        The time of each saved state (chain grid times t_i = i T / N for
        chains); NumPy float64 whatever the state's type.
    nfe : int
        Score evaluations of the whole batch (0 forward).
    accepted, rejected : int or None
        Adaptive runs (``method="rk45"``): the accepted and rejected steps;
        None for fixed-grid runs.
    step_sizes : ndarray or None
        Adaptive runs: the signed size of each accepted step, in run order
        (negative in reverse); None for fixed-grid runs.
    """

    x: np.ndarray
    xs: np.ndarray
    ts: np.ndarray
    nfe: int
    accepted: object = None
    rejected: object = None
    step_sizes: object = None

    def __repr__(self):
        if len(self.ts) == 0:
            saved = "no saved states"
        else:
            saved = f"{len(self.ts)} saved states at t = {self.ts[0]:g} .. {self.ts[-1]:g}"
        return f"Trajectory(x.shape={tuple(self.x.shape)}, {saved}, nfe={self.nfe})"


def save_steps(grid, save_every=None, save_at=None, reverse=False):
    """Step counts to save (docs/conventions.md) on an increasing grid of n + 1
    times: ``save_every`` counts steps in run order; ``save_at`` names grid
    indices k (time t_k) or grid times. A reverse run reaches t_k after
    n - k steps."""
    n = len(grid) - 1
    if save_every is not None and save_at is not None:
        raise ValueError("pass save_every or save_at, not both")
    if save_every is not None:
        save_every = integer(save_every, "save_every", 1)
        return np.unique(np.r_[np.arange(0, n + 1, save_every), n])
    if save_at is None:
        return np.array([0, n])
    at = np.atleast_1d(np.asarray(save_at))
    if at.dtype.kind in "iu":
        if np.any((at < 0) | (at > n)):
            bad = int(at[(at < 0) | (at > n)][0])
            raise ValueError(f"save_at grid indices must lie in [0, {n}]; got {bad}")
        return np.unique(n - at if reverse else at)
    if at.dtype.kind != "f":
        raise TypeError(f"save_at must be grid indices (ints) or grid times (floats); got {at.dtype}")
    if not np.all(np.isfinite(at)):
        # argmin over a NaN distance row returns index 0: t_0 would be saved
        raise ValueError(f"save_at times must be finite grid times; got {float(at[~np.isfinite(at)][0])!r}")
    span = abs(grid[-1] - grid[0])
    idx = np.abs(grid[None, :] - at[:, None]).argmin(axis=1)
    off = np.abs(grid[idx] - at) > 1e-9 * max(span, 1.0)
    if np.any(off):
        raise ValueError(f"save_at time {float(at[off][0])!r} is not on the run's grid; pass grid times or indices")
    return np.unique(n - idx if reverse else idx)


def _noise(noise, grid, shape, table=None):
    """The noise array for the run; None when the method draws no noise
    (a deterministic sampler ignores the path or array it was given, so one
    loop can pass the same noise to every method)."""
    if noise is None:
        return None
    if table is not None and table.n_noise_intervals == 0:
        if not isinstance(noise, BrownianPath):
            expected = (len(grid) - 1,) + tuple(shape)
            if np.shape(noise) != expected:
                raise ValueError(f"noise must have shape (steps, *x.shape) = {expected}; got {np.shape(noise)}")
        return None
    if not isinstance(noise, BrownianPath):
        return noise
    if noise.shape != shape:
        raise ValueError(f"the BrownianPath has shape {noise.shape}; x has shape {shape}")
    h = np.diff(grid)
    if not np.allclose(h, h[0], rtol=1e-9, atol=0):
        raise ValueError("a BrownianPath drives uniform grids only (steps = 2**l equal steps)")
    return noise.normals(len(h))


def forward(process, x0, steps=None, *, method=None, t0=0.0, t1=None, ts=None, rng=None,
            noise=None, save_every=None, save_at=None, dtype=None, nonfinite="raise", out=None,
            progress=False, **options):
    r"""Simulate a diffusion process forward in time from ``x0``.

    ==============  ====================================================
    process         methods (default first)
    ==============  ====================================================
    any AffineSDE   ``em`` (Euler-Maruyama), ``exact``
    DDPM, SMLD      ``chain``, ``exact``, ``em`` (on ``as_sde()``, same grid)
    ==============  ====================================================

    (``ds.methods.available(process, "forward")``; each method's record,
    with its order and paper, is ``ds.methods.get(name, "forward")``.)
    Any AffineSDE: VPSDE, SubVPSDE, VESDE, EDM, RectifiedFlow, or a user's
    ``AffineSDE(mean, std)`` or subclass (docs/processes.md).

    ``em``: :math:`x_{k+1} = x_k + f(x_k, t_k) h + g(t_k)\sqrt{h}\, z_k`;
    ``exact``: :math:`x_{k+1} = (m_{k+1}/m_k) x_k + \sqrt{s_{k+1}^2 - (m_{k+1}/m_k)^2 s_k^2}\, z_k`;
    ``chain``: DDPM :math:`\sqrt{1-\beta_i} x_{i-1} + \sqrt{\beta_i} z`, SMLD
    :math:`x_{i-1} + \sqrt{\sigma_i^2 - \sigma_{i-1}^2} z` (see :mod:`diffsde.methods`).

    Parameters
    ----------
    process : AffineSDE (VPSDE, VESDE, SubVPSDE, EDM, RectifiedFlow, yours), DDPM or SMLD
    x0 : array_like, torch.Tensor, jax.Array or dask.array.Array, shape ``(batch, *event)``
        The state at ``t0`` (never modified). A CPU torch tensor (grad or
        not, any layout of strides) or JAX array runs on a read-only NumPy
        view of its memory, bit for bit as the NumPy run, and ``x`` and
        ``xs`` of the result come back as tensors of its type; float16 and
        bfloat16 need ``dtype=`` (docs/networks.md, "Tensors as states"). A
        dask array makes the run lazy: ``x`` and ``xs`` of the result are
        dask arrays computed block by block of batch rows on the active
        scheduler, equal bit for bit to the NumPy run (docs/dask.md).
    steps : int, optional
        SDEs: number of equal steps on [t0, t1] (default 1000). Chains: None
        or N (for fewer steps use ``chain.respace(M)``).
    method : str, optional
    t0, t1 : float
        SDEs only: the time span, 0 <= t0 < t1 <= T (default [0, T]).
    ts : array, optional
        SDEs only: an increasing grid of times, instead of steps/t0/t1.
    rng : SPEC 7 seed
        One key drives the whole run; step k uses noise interval k, so
        ``forward(ddpm, x0, rng=7)`` and ``forward(vp, x0, steps=N, rng=7)``
        share their draws interval by interval.
    noise : array of shape ``(steps, *x0.shape)`` or BrownianPath, optional
        Standard normals z_k to use instead of generated ones.
    save_every : int, optional
        Keep the states after 0, s, 2s, ... steps and the last.
    save_at : ints (grid indices) or floats (grid times), optional
        Default (neither): the first and last states.
    dtype, nonfinite, out, progress
        As for :func:`diffsde.run_steps`; ``dtype`` may be a torch dtype,
        and ``out`` a CPU torch tensor, written in place and returned as
        ``x``.
    **options
        Options of a method registered with :func:`diffsde.methods.register`
        (the built-in forward methods take none).

    Returns
    -------
    Trajectory
    """
    record = _plan.resolve(process, method, "forward")
    x0, dtype, out, io = state_in(x0, "x0", dtype, out)
    noise = noise if isinstance(noise, BrownianPath) else array_in(noise, "noise", np.float64)[0]
    lazy = _dask.is_dask_array(x0)
    if not lazy:
        x0, _ = as_state(x0, dtype, "x0")
    grid = forward_grid(process, steps, t0, t1, ts)
    table = _plan.forward_table(process, record.name, grid, options)[1]
    saved = save_steps(grid, save_every, save_at)
    if lazy:
        x, xs = _dask.run(x0, table, saved, key=key_from_rng(rng), noise=_noise(noise, grid, x0.shape, table),
                          dtype=dtype, nonfinite=nonfinite, out=out, progress=progress, name="x0")
        return Trajectory(x=x, xs=xs, ts=grid[saved], nfe=0)
    plan = prepare(x0, table, noise=_noise(noise, grid, x0.shape, table), save=saved, dtype=dtype,
                   nonfinite=nonfinite, out=out, progress=progress, name="x0")
    result = execute(plan, key_from_rng(rng))
    return io.result(Trajectory(x=result.x, xs=result.xs, ts=grid[saved], nfe=0))


# ---- reverse ------------------------------------------------------------------

def reverse(process, score, x=None, steps=None, *, shape=None, method=None, alpha=1.0,
            t_start=None, t_end=None, ts=None, variance="beta", eta=None, last_step_noise=False,
            corrector=None, snr=None, n_corrector_steps=None, corrector_at_start=True, rng=None, noise=None,
            save_every=None, save_at=None, dtype=None, nonfinite="raise", out=None, progress=False, chunks=None,
            callback=None, **options):
    r"""Sample backwards in time with a score, from ``t_start`` down to ``t_end``.

    ==============  ==================================================================
    process         methods (default first)
    ==============  ==================================================================
    VPSDE           ``em`` (any alpha >= 0), ``ode_heun``, ``rk45``, ``euler``,
                    ``euler_ancestral``, ``heun``, ``dpm_2``, ``dpm_2_ancestral``, ``lms``,
                    ``dpmpp_2s_ancestral``, ``dpmpp_sde``, ``dpmpp_2m``, ``dpmpp_2m_sde``,
                    ``dpmpp_3m_sde``, ``dpm_solver``, ``unipc``, ``plms``,
                    ``reverse_diffusion``, ``ancestral``, ``ddim``
    VESDE           ``em``, ``ode_heun``, ``rk45``, ``euler``, ``euler_ancestral``, ``heun``,
                    ``dpm_2``, ``dpm_2_ancestral``, ``lms``, ``dpmpp_2s_ancestral``,
                    ``dpmpp_sde``, ``dpmpp_2m``, ``dpmpp_2m_sde``, ``dpmpp_3m_sde``,
                    ``dpm_solver``, ``unipc``, ``plms``, ``reverse_diffusion``, ``ancestral``,
                    ``ddim``
    SubVPSDE        ``em``, ``ode_heun``, ``rk45``, ``euler``, ``euler_ancestral``, ``heun``,
                    ``dpm_2``, ``dpm_2_ancestral``, ``lms``, ``dpmpp_2s_ancestral``,
                    ``dpmpp_sde``, ``dpmpp_2m``, ``dpmpp_2m_sde``, ``dpmpp_3m_sde``,
                    ``dpm_solver``, ``unipc``, ``plms``, ``ddim``
    others          ``em``, ``ode_heun``, ``rk45``, ``euler``, ``euler_ancestral``, ``heun``,
                    ``dpm_2``, ``dpm_2_ancestral``, ``lms``, ``dpmpp_2s_ancestral``,
                    ``dpmpp_sde``, ``dpmpp_2m``, ``dpmpp_2m_sde``, ``dpmpp_3m_sde``,
                    ``dpm_solver``, ``unipc``, ``plms``, ``ddim``: EDM, RectifiedFlow and any
                    other AffineSDE (``AffineSDE(mean, std)`` or a subclass: docs/processes.md)
    DDPM            ``ancestral``, ``reverse_diffusion``, ``ddim``, ``em``, ``ode_heun``,
                    ``rk45``, ``euler``, ``euler_ancestral``, ``heun``, ``dpm_2``,
                    ``dpm_2_ancestral``, ``lms``, ``dpmpp_2s_ancestral``, ``dpmpp_sde``,
                    ``dpmpp_2m``, ``dpmpp_2m_sde``, ``dpmpp_3m_sde``, ``dpm_solver``, ``unipc``,
                    ``plms``
    SMLD            ``ancestral``, ``reverse_diffusion``, ``ddim``, ``em``, ``ode_heun``,
                    ``rk45``, ``euler``, ``euler_ancestral``, ``heun``, ``dpm_2``,
                    ``dpm_2_ancestral``, ``lms``, ``dpmpp_2s_ancestral``, ``dpmpp_sde``,
                    ``dpmpp_2m``, ``dpmpp_2m_sde``, ``dpmpp_3m_sde``, ``dpm_solver``, ``unipc``,
                    ``plms``
    ==============  ==================================================================

    The lists are ``ds.methods.available(process)``: a method applies where
    the process has a capability it needs (docs/methods.md), and
    ``ds.methods.get(name)`` is its record (options, order, nfe per step,
    noise streams, paper); ``ds.methods.table`` returns the step table a
    run executes.

    ``em`` is reverse Euler-Maruyama for the alpha-family of derivation 004,
    :math:`x_{k-1} = x_k - h[f x_k - \tfrac{1+\alpha^2}{2} g^2 s] + \alpha g \sqrt{h} z`
    (alpha = 1 Anderson, alpha = 0 the probability-flow ODE); ``ode_heun`` is
    Heun on the ODE (last step Euler). The chain methods' formulas are in
    :mod:`diffsde.methods`. On an SDE they run on the chain whose marginals
    are the SDE's on the run's grid: for VPSDE the DDPM with
    :math:`\beta_k = 1 - e^{-(B(t_k) - B(t_{k-1}))}`, i.e.
    ``DDPM.from_sde(vp, N, rule="exact")`` (not the default
    ``rule="riemann"``; with the default span and N a power of two the run
    equals ``reverse(DDPM.from_sde(vp, N, rule="exact"), ...)`` bit for bit,
    otherwise to rounding of the grid times); for VESDE the SMLD with
    sigma_k = sigma(t_k), i.e. ``SMLD.from_sde(ve, N)``. A step where that
    chain's beta_k rounds to 1 raises ValueError naming the step.
    On a chain, ``em``/``ode_heun`` discretize ``chain.as_sde()`` on its grid.

    Conventions that differ between published samplers, and the choice made
    here (each with its option):

    - ``ancestral`` adds no noise on its last step (to t_end), as Ho et al.
      (2020) Algorithm 2 (z = 0 at t = 1) and diffusers' DDPMScheduler (for
      both variance types); ``last_step_noise=True`` keeps
      :math:`\sqrt{v_1} z` (for DDPM with ``variance="beta"``: sqrt(beta_1) z).
    - The Langevin corrector runs before every predictor step at that step's
      time, so also at t_start = T and never at t_end, as in score_sde's PC
      sampler (nfe = N (1 + n_corrector_steps) for one-evaluation
      predictors); ``corrector_at_start=False`` skips the one at t_start
      (n_corrector_steps fewer score evaluations).
    - The linear DDPM schedule of score_sde and diffusers is
      ``DDPM.from_sde(vp, N, rule="linear")`` or ``DDPM.linear(N)``.

    Parameters
    ----------
    process : AffineSDE (VPSDE, VESDE, SubVPSDE, EDM, RectifiedFlow, yours), DDPM or SMLD
    score : callable score(x, t) or a built-in score (``ds.LinearScore``)
        The score of the process's marginal p_t; for a chain, t = t_i and a
        built-in score uses ``chain.marginal_coefficients(i)``.
    x : array_like, torch.Tensor, jax.Array or dask.array.Array, shape ``(batch, *event)``, optional
        The state at ``t_start``; ``None`` draws it from N(0, s(t_start)^2 I)
        (stream 1 of the run's key) with ``shape``, in NumPy. A CPU torch
        tensor or JAX array gives results of its type, a dask array makes
        the run lazy, as for :func:`forward`.
    steps : int, optional
        SDEs: equal steps on [t_end, t_start] (default 1000). Chains: None or N.
    alpha : float >= 0
        ``em`` only.
    t_start, t_end : float
        SDEs only; 0 <= t_end < t_start <= T (defaults
        ``process.default_t_start``, which is T except for RectifiedFlow,
        singular at T = 1, where it is 1 - 1e-3; and 0). The score is
        never evaluated at t_end by a fixed-grid method. ``rk45``
        evaluates it there, so it needs t_end > 0 (its default, for
        ``t_end=None``, is ``process.default_t_end``, where the grids end:
        score_sde's eps, 1e-3 T on VP and sub-VP, 1e-5 T on VE; sigma_min
        on EDM).
    ts : array, optional
        SDEs only: a decreasing grid of times instead of steps/t_start/t_end.
    variance : {"beta", "posterior"}
        ``ancestral`` on DDPM or VPSDE only: v_i = beta_i or the posterior
        beta_i (1 - abar_{i-1})/(1 - abar_i). SMLD/VE ancestral always uses
        the chain's posterior variance, so ``"posterior"`` there (or with any
        other method) raises ValueError, like a misplaced ``alpha`` or ``eta``.
    eta : float >= 0, optional
        The stochasticity of ``ddim`` and of the ancestral and SDE samplers
        (``euler_ancestral``, ``dpm_2_ancestral``, ``dpmpp_2s_ancestral``,
        ``dpmpp_sde``, ``dpmpp_2m_sde``, ``dpmpp_3m_sde``); None: the method's
        own default (0 for ``ddim``, 1 for the others, k-diffusion's).
    last_step_noise : bool
        ``ancestral`` only: keep the noise term on the last step (default
        False, the published algorithm; see above).
    corrector : None or "langevin"
        Langevin sub-steps before every predictor step (at its time t_k,
        t_start included, t_end never), with
        ``snr`` and ``n_corrector_steps``; step size from each row's norms,
        ``eps = 2 r (snr |z| / |s|)^2``. Like score_sde's batch-norm version it
        is meant for high-dimensional states (images: d in the thousands):
        for d of a few, ``|z| / |s|`` of one row fluctuates wildly and the
        corrector scatters samples (see the tour's 2-D mixture).
    snr : float > 0, optional
        The corrector's signal-to-noise ratio; default (None) 0.16.
        ``corrector='langevin'`` only: given without it, ValueError.
    n_corrector_steps : int >= 1, optional
        Langevin sub-steps per predictor step; default (None) 1.
        ``corrector='langevin'`` only: given without it, ValueError.
    corrector_at_start : bool
        True (default, score_sde): a corrector at t_start before the first
        predictor step; False: correctors only after predictor steps,
        at t_{N-1}, ..., t_1.
    rng, noise, save_every, save_at, dtype, nonfinite, out, progress
        As for :func:`forward`; ``save_at`` takes grid indices k (time t_k)
        or grid times, and ``noise[k - 1]`` drives the step from t_k.
    chunks : int or tuple of ints, optional
        With ``x=None``: draw the prior and run lazily as a dask array of
        ``shape`` in blocks of ``chunks`` batch rows (an int) or of the given
        block sizes, never holding the whole batch in one process
        (docs/dask.md).
    callback : callable, optional
        ``callback(info)``, called after every step (k-diffusion's
        convention), for inpainting and guidance (docs/methods.md, "Step
        callbacks"). ``info`` is a dict: ``"i"`` the step (0 for the first),
        ``"t"`` the grid time the step started from and ``"t_next"`` the one
        it reached, ``"x"`` the state (a writeable NumPy array, the run's
        own: edits in place change the run), ``"denoised"`` the estimate of
        x_0 from the step's first score evaluation, at the state and time that
        evaluation saw, :math:`\hat x_0 = (x + s^2\, \mathrm{score}(x, t)) / m`
        with the process's own m and s (Tweedie's formula, Efron 2011; read-only; None
        for a step without a score evaluation). For multistage methods
        (``ode_heun``) that is the evaluation at the step's start; with
        ``corrector="langevin"``, the corrector's first one. Return None or
        an array of x's shape, the state the run continues from. The arrays
        have the type of ``x`` (not of the score): for a torch tensor,
        tensors on the run's memory (edit ``info["x"]`` in place or return
        a tensor); for a JAX array, copies (return the new state). Saved
        states are taken after the callback. Not for dask runs or ``rk45``. A run with a callback evaluates every
        score (built-in ones too) through Python, once per score row.
    rtol, atol : float, optional
        ``rk45`` only (keyword options): the tolerances of its step-size
        control (default 1e-5 each). ``rk45`` is adaptive Dormand-Prince
        5(4) on the probability-flow ODE (Dormand & Prince 1980; Hairer et
        al. 1993): no ``steps``/``ts``/``noise``/``corrector``; ``save_at``
        takes any times in [t_end, t_start] (dense output); the result's
        ``accepted``, ``rejected`` and ``step_sizes`` report its steps. One
        error norm covers the whole batch (docs/methods.md).
    **options
        Options of a method registered with :func:`diffsde.methods.register`
        (docs/methods.md); an option the method does not take raises
        ValueError naming the method and the process.

    Returns
    -------
    Trajectory
        ``ts`` decreasing; ``nfe`` the score evaluations of the batch.
    """
    options = dict(options, alpha=alpha, variance=variance, eta=eta, last_step_noise=last_step_noise,
                   snr=snr, n_corrector_steps=n_corrector_steps, corrector_at_start=corrector_at_start)
    record, opts, corr, corr_opts = _plan.reverse_methods(process, method, corrector, options)
    if score is None:
        raise TypeError("reverse needs a score: a callable score(x, t) or a built-in score")
    x, dtype, out, io = state_in(x, "x", dtype, out)
    noise = noise if isinstance(noise, BrownianPath) else array_in(noise, "noise", np.float64)[0]
    callback = io.callback(callback)
    if record.name == "rk45":
        return io.result(_reverse_adaptive(process, score, x, steps, shape, corrector, t_start, t_end, ts, rng,
                                           noise, save_every, save_at, dtype, nonfinite, out, progress, chunks,
                                           callback, **opts))
    t_end = 0.0 if t_end is None else t_end
    grid = reverse_grid(process, steps, t_start, t_end, ts)
    table, view = _plan.reverse_table(process, grid, record, opts, corr, corr_opts)

    lazy = _dask.is_dask_array(x)
    if lazy:
        if shape is not None and tuple(np.atleast_1d(shape)) != x.shape:
            raise ValueError(f"shape {shape} does not match x.shape {x.shape}; pass one of them")
        if chunks is not None:
            raise ValueError("chunks applies to the prior drawn from shape; rechunk x instead")
        shape = x.shape
    else:
        x, shape = _reverse_start(x, shape, dtype)
        lazy = chunks is not None
        if lazy and x is not None:
            raise ValueError("chunks applies to the prior drawn from shape (x=None); for a NumPy x "
                             "pass dask.array.from_array(x, chunks=...) instead")
    saved = save_steps(grid, save_every, save_at, reverse=True)
    noise = _noise(noise, grid, shape, table)  # interval k - 1: the path's increment over [t_{k-1}, t_k]
    if lazy:
        if callback is not None:
            raise ValueError("callback does not apply to a dask run (it sees the whole batch after "
                             "every step); pass a NumPy x")
        x, xs = _dask.run(x, table, saved, key=key_from_rng(rng), score=_bind(score, process), noise=noise,
                          dtype=dtype, nonfinite=nonfinite, out=out, progress=progress,
                          prior_scale=view.sd[-1], chunks=chunks, shape=shape)
        return Trajectory(x=x, xs=xs, ts=grid[::-1][saved], nfe=table.nfe)
    probe = np.broadcast_to(np.zeros((), dtype=x.dtype if x is not None else np.float64), shape)
    plan = prepare(x if x is not None else probe, table, score=_bind(score, process), noise=noise,
                   save=saved, dtype=dtype, nonfinite=nonfinite, out=out, progress=progress,
                   callback=callback, times=grid[::-1])
    key = key_from_rng(rng)
    if x is None:
        start = fill_normal(np.empty(shape, dtype=plan.dtype), key, STREAM_INITIAL)
        start *= plan.dtype.type(view.sd[-1])
        plan = dataclasses.replace(plan, x=start)
    result = execute(plan, key)
    return io.result(Trajectory(x=result.x, xs=result.xs, ts=grid[::-1][saved], nfe=result.nfe))


def _reverse_adaptive(process, score, x, steps, shape, corrector, t_start, t_end, ts, rng, noise, save_every, save_at,
                      dtype, nonfinite, out, progress, chunks, callback, rtol, atol):
    """reverse(..., method="rk45"): adaptive steps, no grid (methods/_rk45.py)."""
    given = {"steps": steps, "ts": ts, "save_every": save_every, "corrector": corrector, "chunks": chunks,
             "noise": noise, "callback": callback}
    for name, value in given.items():
        if value is not None:
            why = {"corrector": "it has no corrector", "noise": "it is deterministic"}.get(
                name, "it chooses its own steps")
            got = (f"a {type(value).__name__} as {name}" if name in ("noise", "callback")
                   else f"{name}={value!r}")
            raise ValueError(f"{name} does not apply to method='rk45' ({why}; pass rtol/atol, and save_at "
                             f"times for states inside the run); got {got}")
    if progress:
        raise ValueError("progress does not apply to method='rk45' (its number of steps is not known "
                         "in advance); got progress=True")
    if _dask.is_dask_array(x):
        raise TypeError("method='rk45' does not run on dask arrays: its step sizes depend on the whole batch "
                        "(one error norm), so blocks cannot run apart; compute x first")
    bound = _bind(score, process)
    if "chain" in process.capabilities:
        # as em and ode_heun on a chain: the ODE of chain.as_sde()
        process = process.as_sde()
    t_start = process.default_t_start if t_start is None else real_scalar(t_start, "t_start")
    t_end = process.default_t_end if t_end is None else real_scalar(t_end, "t_end")
    if not 0 < t_start <= process.T:
        raise ValueError(f"t_start must lie in (0, T] = (0, {process.T:g}]; got {t_start!r}")
    if not 0 < t_end < t_start:
        raise ValueError(f"t_end of method='rk45' must lie in (0, t_start) = (0, {t_start:g}): its last stage "
                         f"evaluates the score at t_end (default: the process's default_t_end, "
                         f"{process.default_t_end:g}); got {t_end!r}")
    x, shape = _reverse_start(x, shape, dtype)
    probe = np.broadcast_to(np.zeros((), dtype=x.dtype if x is not None else np.float64), shape)
    plan = prepare(x if x is not None else probe, StepTable.program(score_rows(0, t=t_start)), score=bound,
                   dtype=dtype, nonfinite=nonfinite, out=out)
    rtol, atol = _rk45.check_tolerances(rtol, atol, plan.dtype)
    if x is None:
        x = fill_normal(np.empty(shape, dtype=plan.dtype), key_from_rng(rng), STREAM_INITIAL)
        x *= plan.dtype.type(process.marginal_coefficients(t_start)[1])
    else:
        x = np.array(x, dtype=plan.dtype, order="C", copy=True)
    final, xs, ts, sol = _rk45.reverse_rk45(process, bound, x, t_start, t_end, rtol, atol, save_at, plan.dtype,
                                            nonfinite)
    if out is not None:
        np.copyto(out, final)
        final = out
    return Trajectory(x=final, xs=xs, ts=ts, nfe=sol.nfe, accepted=sol.accepted, rejected=sol.rejected,
                      step_sizes=sol.step_sizes)


def _reverse_start(x, shape, dtype):
    if x is None:
        if shape is None:
            raise ValueError("pass x (the state at t_start) or shape (to sample it from the prior)")
        dims = (shape,) if np.ndim(shape) == 0 else tuple(np.asarray(shape, dtype=object).ravel())
        if any(isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) for n in dims):
            # int() would truncate 2.5 to 2 or fail with a bare message on "a"
            raise TypeError(f"shape must be (batch, *event) of ints; got {shape!r}")
        shape = tuple(int(n) for n in dims)
        if not shape or any(n < 0 for n in shape):
            raise ValueError(f"shape must be (batch, *event) with non-negative sizes; got {shape}")
        return None, shape
    x, _ = as_state(x, dtype)
    if shape is not None and tuple(np.atleast_1d(shape)) != x.shape:
        raise ValueError(f"shape {shape} does not match x.shape {x.shape}; pass one of them")
    return x, x.shape


def _bind(score, process):
    """Known data bound to the run's process; a callable as it is."""
    if isinstance(score, BoundScore):
        if score.process is not process:
            raise ValueError(f"the score is bound to {score.process!r} but the run is on {process!r}; "
                             f"use data.score(process) with the run's process")
        return score
    if isinstance(score, (GaussianMixture, EmpiricalData)):
        return score.score(process)

    return adapt(score, process)

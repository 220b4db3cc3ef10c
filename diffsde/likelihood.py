r"""Exact log-likelihoods through the probability-flow ODE.

Along the ODE dx/dt = v(x, t) = f(t) x - g(t)^2 s(x, t) / 2 the density obeys
d log p_t(x_t) / dt = -div v, so

.. math::

    \log p_{t_0}(x) = \log p_T(x_T) + \int_{t_0}^T \mathrm{div}\, v(x_t, t)\, dt,
    \qquad \mathrm{div}\, v = d\, f(t) - \tfrac12 g(t)^2\, \mathrm{tr}\,\nabla s

with x_t the ODE solution started at x_{t_0} = x (Song et al. 2021, app. D).
The prior p_T is the process's N(0, s(T)^2 I), which differs from the true
p_T by e^{-B(T)}-sized terms for VP; pass ``prior=`` to use another.
"""
import numpy as np

from ._frameworks import NetworkScore, adapt, array_in, array_out
from .grids import _ramp
from ._validation import integer, real_scalar, shown
from ._rng import STREAM_INITIAL, fill_uniform, key_from_rng
from .scores import BoundScore, EmpiricalData, GaussianMixture
from .sde import SDE
from .methods import _rk45


def _jacobian_trace_hutchinson(score, x, t, probes, delta):
    """E[e^T (grad s) e] over Rademacher e, with central differences
    e^T (s(x + delta e) - s(x - delta e)) / (2 delta) for e^T J e."""
    total = np.zeros(x.shape[0])
    for e in probes:
        plus = np.asarray(score(x + delta * e, t), dtype=np.float64)
        minus = np.asarray(score(x - delta * e, t), dtype=np.float64)
        total += np.sum((e * (plus - minus)).reshape(x.shape[0], -1), axis=1) / (2 * delta)
    return total / len(probes)


#: The divergences of :func:`log_likelihood`.
DIVERGENCES = ("exact", "autograd", "hutchinson", "finite_difference")
#: Up to this many coordinates a torch/JAX score's default divergence is the
#: exact autograd trace (d backward passes); above it, Hutchinson with VJPs.
AUTOGRAD_EXACT_MAX_DIM = 32


def log_likelihood(process, score, x, steps=None, *, t_end=0.0, n_probes=None, rng=None,
                   prior=None, delta=1e-4, divergence=None, method="heun", rtol=None, atol=None):
    r"""log p_{t_end}(x) by Heun's method (second order in the step) or
    adaptive Dormand-Prince 5(4) on the probability-flow ODE from t_end to T.

    Parameters
    ----------
    process : VPSDE, VESDE or SubVPSDE
    score : GaussianMixture, EmpiricalData, their ``.score(process)``, a callable, or a network
        Built-in data give the exact divergence. A torch or JAX network (a
        ``torch.nn.Module``, a JAX-jitted function, a function annotated
        ``torch.Tensor``/``jax.Array``, or :func:`diffsde.network_score` of
        one) gets its divergence by autograd. For a NumPy callable the trace
        of the score's Jacobian is Hutchinson's estimate with ``n_probes``
        Rademacher vectors (fixed along each path) and central differences of
        step ``delta``; it is unbiased up to O(delta^2).
    x : array (batch, d), or (batch,) for d = 1
        NumPy, or a CPU torch tensor or JAX array: the result is then of its
        type (float64; float32 in JAX's 32-bit mode).
    steps : int, optional
        ``method="heun"``: equal steps on [t_end, T] (default 200).
    t_end : float
        The time whose density is wanted (0: the data).
    n_probes : int, optional
        Hutchinson probes for a callable score (default 1).
    rng : SPEC 7 seed, for the probes.
    prior : callable logp(x_T), optional
        Default: ``process.prior_logp``.
    delta : float > 0
        Callable scores only: the step of the central differences
        :math:`e^T (s(x + \delta e) - s(x - \delta e)) / (2 \delta)` that
        estimate :math:`e^T (\nabla s) e` (error O(delta^2) plus rounding
        O(eps / delta)); ignored for built-in data, whose trace is exact.
    divergence : {"exact", "autograd", "hutchinson", "finite_difference"}, optional
        How :math:`\mathrm{tr}\,\nabla s` is computed:

        - ``"exact"``: built-in data's closed form (their default, and only choice);
        - ``"autograd"``: a torch/JAX network's exact trace, one
          vector-Jacobian product per coordinate (d backward passes);
        - ``"hutchinson"``: Hutchinson's estimate
          :math:`E[e^T (\nabla s) e]` (Hutchinson 1989; Grathwohl et al.
          2019) over ``n_probes`` Rademacher vectors, each
          :math:`e^T \nabla s` one vector-Jacobian product by autograd
          (torch/JAX networks; unbiased, no step to choose);
        - ``"finite_difference"``: the same estimate with central
          differences of step ``delta`` (any callable; NumPy callables' default).

        Default (None): ``"exact"`` for built-in data; for torch/JAX networks
        ``"autograd"`` up to d = 32 coordinates and ``"hutchinson"`` above;
        ``"finite_difference"`` for NumPy callables.
    method : {"heun", "rk45"}
        ``"heun"``: fixed steps. ``"rk45"``: adaptive Dormand-Prince 5(4)
        (Dormand & Prince 1980) with the step-size control of
        ``reverse(..., method="rk45")`` on the augmented ODE of the state
        and the log-density, one error norm over all of it (as score_sde,
        which flattens both into one ODE; Song et al. 2021, app. D). The
        ODE starts at t_end, where known data have a finite score, so
        t_end = 0 is allowed. The Hutchinson probes stay fixed along each
        path, so the adaptive solver sees a smooth right-hand side.
    rtol, atol : float > 0, optional
        ``method="rk45"`` only: tolerances (default 1e-5 each, score_sde's).

    Returns
    -------
    ndarray (batch,), float64; a tensor of x's framework for a tensor x
    """
    if not isinstance(process, SDE):
        raise TypeError(f"log_likelihood needs an SDE (for a chain use chain.as_sde()); "
                        f"got {type(process).__name__}")
    if method not in ("heun", "rk45"):
        raise ValueError(f"method must be 'heun' or 'rk45'; got {shown(method)}")
    if method == "heun":
        for name, value in (("rtol", rtol), ("atol", atol)):
            if value is not None:
                raise ValueError(f"{name} applies to method='rk45' only (adaptive steps); got {name}={value!r} "
                                 f"with method='heun'")
        steps = 200 if steps is None else integer(steps, "steps", 1)
    else:
        if steps is not None:
            raise ValueError(f"steps applies to method='heun' only (rk45 chooses its steps; pass rtol/atol); "
                             f"got steps={steps!r}")
        rtol, atol = _rk45.check_tolerances(_rk45.DEFAULT_RTOL if rtol is None else rtol,
                                            _rk45.DEFAULT_ATOL if atol is None else atol)
    t_end = real_scalar(t_end, "t_end")
    # the central-difference step of the Hutchinson trace: 0 would divide by
    # zero (NaN), inf or NaN would poison every row
    delta = real_scalar(delta, "delta", "positive")
    if not 0 <= t_end < process.T:
        raise ValueError(f"t_end must lie in [0, T) = [0, {process.T:g}); got {t_end!r}")
    if isinstance(score, (GaussianMixture, EmpiricalData)):
        score = score.score(process)
    if isinstance(score, BoundScore) and score.process is not process:
        raise ValueError(f"the score is bound to {score.process!r}, not {process!r}")
    if not callable(score):
        raise TypeError(f"score must be a GaussianMixture, EmpiricalData or a callable; got {shown(score)}")
    if divergence is not None and divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {', '.join(map(repr, DIVERGENCES))} or None; "
                         f"got {shown(divergence)}")
    network = False
    if not isinstance(score, BoundScore):
        score = adapt(score, process)
        network = isinstance(score, NetworkScore) and score.backend.autograd
    if prior is not None and not callable(prior):
        raise TypeError(f"prior must be None or a callable logp(x_T); got {shown(prior)}")
    x, framework = array_in(x, "x", np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("x must have a batch axis")
    scalar = x.ndim == 1
    rows = x[:, None] if scalar else x.reshape(x.shape[0], -1)
    d = rows.shape[1]

    exact = isinstance(score, BoundScore)
    if divergence is None:
        divergence = ("exact" if exact else "finite_difference" if not network
                      else "autograd" if d <= AUTOGRAD_EXACT_MAX_DIM else "hutchinson")
    if exact and divergence != "exact":
        raise ValueError(f"divergence={divergence!r} is for callable scores; built-in data give the exact "
                         f"divergence (divergence='exact' or None)")
    if not exact and divergence == "exact":
        raise ValueError("divergence='exact' needs built-in data (GaussianMixture, EmpiricalData); for a "
                         "network use 'autograd' or 'hutchinson'")
    if divergence in ("autograd", "hutchinson") and not network:
        raise ValueError(f"divergence={divergence!r} needs a torch or JAX network (autograd); got a NumPy "
                         f"callable {score!r}: use divergence='finite_difference'")
    if divergence == "autograd" and n_probes is not None:
        raise ValueError("n_probes applies to divergence='hutchinson' or 'finite_difference'; "
                         "divergence='autograd' is the exact trace")
    if exact:
        if n_probes is not None:
            raise ValueError("n_probes applies to callable scores; built-in data give the exact divergence")

        def field(y, t):
            s, trace = score.score_and_trace(y[:, 0] if scalar else y, t)
            return np.asarray(s).reshape(y.shape), trace
    elif divergence == "autograd":
        def field(y, t):
            s, trace = score.score_and_trace(y[:, 0] if scalar else y.reshape(x.shape), t)
            return s.reshape(y.shape), trace
    elif divergence == "hutchinson":
        n_probes = 1 if n_probes is None else integer(n_probes, "n_probes", 1)
        key = key_from_rng(rng)
        u = fill_uniform(np.empty((n_probes,) + rows.shape), key, STREAM_INITIAL, 1)
        probes = np.where(u < 0.5, -1.0, 1.0)
        shaped_probes = [e[:, 0] if scalar else e.reshape(x.shape) for e in probes]

        def field(y, t):
            s, trace = score.score_and_trace(y[:, 0] if scalar else y.reshape(x.shape), t, shaped_probes)
            return s.reshape(y.shape), trace
    else:
        n_probes = integer(n_probes, "n_probes", 1, none=True) or 1
        key = key_from_rng(rng)
        u = fill_uniform(np.empty((n_probes,) + rows.shape), key, STREAM_INITIAL, 1)
        probes = np.where(u < 0.5, -1.0, 1.0)

        def field(y, t):
            shaped = (lambda v: v[:, 0]) if scalar else (lambda v: v)
            s = np.asarray(score(shaped(y), t), dtype=np.float64).reshape(y.shape)
            trace = _jacobian_trace_hutchinson(lambda v, tt: np.asarray(score(shaped(v), tt)).reshape(v.shape),
                                               y, t, probes, delta)
            return s, trace

    def velocity(y, t):
        f = float(process.drift_coefficient(t))
        g2 = float(process.diffusion(t)) ** 2
        s, trace = field(y, t)
        return f * y - 0.5 * g2 * s, d * f - 0.5 * g2 * trace

    if method == "rk45":
        y, delta_logp = _augmented_rk45(velocity, rows, t_end, process.T, rtol, atol)
    else:
        y, delta_logp = _heun(velocity, rows, t_end, process.T, steps)
    x_T = y[:, 0] if scalar else y.reshape(x.shape)
    prior_logp = process.prior_logp(x_T) if prior is None else np.asarray(prior(x_T), dtype=np.float64)
    return array_out(prior_logp + delta_logp, framework)


def _augmented_rk45(velocity, rows, t0, t1, rtol, atol):
    """(x_T, integral of div v) by adaptive Dormand-Prince on the augmented
    state z = (x, delta log p), flattened into one vector."""
    n = rows.size

    def fun(z, t):
        v, div = velocity(z[:n].reshape(rows.shape), t)
        return np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1), np.asarray(div, dtype=np.float64)])

    z0 = np.concatenate([rows.reshape(-1), np.zeros(rows.shape[0])])
    sol = _rk45.solve(_rk45.NumpyStages(fun), z0, t0, t1, rtol, atol)
    return sol.y[:n].reshape(rows.shape), sol.y[n:]


def _heun(velocity, rows, t_end, T, steps):
    grid = _ramp(t_end, T, steps)
    y = rows.copy()
    delta_logp = np.zeros(rows.shape[0])
    for t0, t1 in zip(grid[:-1], grid[1:]):
        h = t1 - t0
        v0, div0 = velocity(y, t0)
        y_pred = y + h * v0
        v1, div1 = velocity(y_pred, t1)
        y = y + 0.5 * h * (v0 + v1)
        delta_logp += 0.5 * h * (div0 + div1)
    return y, delta_logp

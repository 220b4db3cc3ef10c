"""Exact scores, usable inside the C step loop.

A built-in score object knows the data distribution p_0; the step table
supplies the marginal coefficients (m, s) of x_t = m x_0 + s z at each score
time, and the C driver evaluates the score of p_t without returning to Python.
``data.score(process)`` binds the data to a process: the result is callable
as ``score(x, t)`` and is recognised by ``ds.reverse`` as a fused C score.
"""
import math
import warnings

import numpy as np

from . import _core
from ._protocol import check_process, coefficients_at_time
from ._rng import STREAM_INITIAL, fill_normal, fill_uniform, key_from_rng
from ._validation import all_finite, float_copy, integer, shown
# the prediction adapters live in predictions.py; these names stay importable from here
from .predictions import EpsScore, score_from_eps  # noqa: F401

# the C core's score kind codes (csrc/scores.h), its one definition
_SCORE_LINEAR, _SCORE_MIXTURE, _SCORE_EMPIRICAL = (_core.SCORE_KINDS[k] for k in ("linear", "mixture", "empirical"))
_LOG_2PI = math.log(2 * math.pi)


def _logsumexp(a, axis):
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.sum(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis)


def _coefficients(m, s):
    """The marginal coefficients (m, s) of x_t = m x_0 + s z as floats:
    finite, s >= 0, and not both 0 (which leaves no density)."""
    out = []
    for name, value in (("m", m), ("s", s)):
        arr = np.asarray(value) if not isinstance(value, str) else None
        if arr is None or arr.ndim != 0 or arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a real number; got {shown(value)}")
        out.append(float(arr))
    m, s = out
    if not (np.isfinite(m) and np.isfinite(s)) or s < 0:
        raise ValueError(f"the marginal coefficients must be finite with s >= 0; got m = {m!r}, s = {s!r}")
    if m == 0 and s == 0:
        raise ValueError("m = s = 0 leaves no density: the score is undefined there")
    return m, s


def _as_rows(x, d, name="x"):
    """x as (n, d) float64: (n,) is a batch of scalars when d == 1."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real; got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if d == 1 and x.ndim == 1:
        return x[:, None], True
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"{name} must have shape (n, {d})" + (" or (n,)" if d == 1 else "")
                         + f"; got {x.shape}")
    return x, False


class LinearScore:
    r"""Exact score of Gaussian data N(mean, diag(var)) after x_t = m x_0 + s z.

    .. math::

        \nabla_x \log p_t(x) = \frac{m\,\mu - x}{m^2 \sigma_0^2 + s^2}

    elementwise, with :math:`\mu` = ``mean`` and :math:`\sigma_0^2` = ``var``.
    The score is linear in x, so every affine method has exact moment
    recursions, which is what the tests use it for.

    Parameters
    ----------
    mean : float or array of shape (d,)
    var : float or array of shape (d,), >= 0
        Per-coordinate data variance (0 allowed: a point mass, whose marginal
        is then N(m mean, s^2) for s > 0).

    Both are copied (any real dtype, layout or alignment): later changes to
    the caller's arrays do not reach the score, and the caller's arrays are
    left as they were.
    """

    def __init__(self, mean=0.0, var=1.0):
        mean = float_copy(mean, "mean")
        var = float_copy(var, "var")
        if mean.ndim > 1 or var.ndim > 1:
            raise ValueError(f"mean and var must be scalars or 1-D; got shapes {mean.shape}, {var.shape}")
        all_finite(mean, "mean")
        all_finite(var, "var")
        if np.any(var < 0):
            raise ValueError(f"var must be >= 0; got {var.tolist()}")
        # private read-only copies: the caller's arrays stay theirs
        mean.setflags(write=False)
        var.setflags(write=False)
        self.mean = mean
        self.var = var

    def c_params(self, dim):
        """(kind, arrays) of the C kernel (csrc/scores.h, "linear")."""
        return _SCORE_LINEAR, self.vectors(dim)

    def vectors(self, dim):
        """(mean, var) broadcast to ``dim`` coordinates, float64 C arrays."""
        try:
            mean = np.ascontiguousarray(np.broadcast_to(self.mean, (dim,)), dtype=np.float64)
            var = np.ascontiguousarray(np.broadcast_to(self.var, (dim,)), dtype=np.float64)
        except ValueError:
            raise ValueError(
                f"LinearScore has mean shape {self.mean.shape} and var shape "
                f"{self.var.shape}, which do not fit states with {dim} coordinates per row"
            ) from None
        return mean, var

    def evaluate(self, x, m, s):
        """The score at x for marginal coefficients (m, s), in NumPy."""
        m, s = _coefficients(m, s)
        x = np.asarray(x)
        mean, var = self.vectors(x.shape[-1] if x.ndim > 1 else 1)
        if x.ndim <= 1:
            mean, var = mean[0], var[0]
        return (m * mean - x) / (m * m * var + s * s)

    def __repr__(self):
        return f"LinearScore(mean={self.mean.tolist()}, var={self.var.tolist()})"


class BoundScore:
    """The exact score of known data under a process: ``data.score(process)``.

    Callable as ``score(x, t)`` (NumPy, in double precision); ``ds.reverse``
    runs it inside the C step instead, with (m, s) from the process. For a
    chain, t is the grid time t_i and (m, s) = ``chain.marginal_coefficients(i)``.
    """

    def __init__(self, data, process):
        self.data, self.process = data, check_process(process)

    def coefficients(self, t):
        """(m, s) at time t."""
        return coefficients_at_time(self.process, t)

    def __call__(self, x, t):
        m, s = self.coefficients(t)
        return self.data.score_at(x, m, s)

    def score_and_trace(self, x, t):
        """(score, trace of its Jacobian) at time t: exact, for likelihoods."""
        m, s = self.coefficients(t)
        return self.data.score_and_trace(x, m, s)

    def c_params(self, dim):
        return self.data.c_params(dim)

    def __repr__(self):
        return f"{self.data!r}.score({self.process!r})"


class GaussianMixture:
    r"""A mixture of Gaussians, sum_k w_k N(mu_k, Sigma_k), with its exact
    marginals and scores under every process.

    Under x_t = m x_0 + s z the mixture stays a mixture with means m mu_k and
    covariances m^2 Sigma_k + s^2 I, so its score is exact at every t:

    .. math::

        \nabla \log p_t(x) = \sum_k \gamma_k(x)\, (m^2 \Sigma_k + s^2 I)^{-1} (m \mu_k - x),
        \quad \gamma_k \propto w_k\, \mathcal N(x; m\mu_k, m^2\Sigma_k + s^2 I)

    Parameters
    ----------
    weights : array (K,)
        Non-negative, summing to 1 within 1e-6 (then renormalized).
    means : array (K, d)
    covs : array
        ``covs.ndim`` decides: (K,) isotropic variances, (K, d) diagonal
        variances, (K, d, d) full symmetric positive definite covariances
        (eigendecomposed once, Sigma_k = U_k diag(lambda_k) U_k^T).

    The arrays are copied to private read-only float64 arrays (any real
    dtype, layout or alignment); the caller's arrays and their flags are left
    alone, and later changes to them do not reach the mixture.
    """

    def __init__(self, weights, means, covs):
        w = float_copy(weights, "weights")
        mu = float_copy(means, "means")
        cov = float_copy(covs, "covs")
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"weights must be a non-empty 1-D array; got shape {w.shape}")
        K = w.size
        if mu.ndim != 2 or mu.shape[0] != K:
            raise ValueError(f"means must have shape (K, d) = ({K}, d); got {mu.shape}")
        d = mu.shape[1]
        if d == 0:
            raise ValueError(f"means must have shape (K, d) with d >= 1; got {mu.shape}")
        for name, arr in (("weights", w), ("means", mu), ("covs", cov)):
            all_finite(arr, name)
        if np.any(w < 0):
            raise ValueError(f"weights must be >= 0; got {w.tolist()}")
        if abs(w.sum() - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1 (within 1e-6); they sum to {float(w.sum())!r}")
        if cov.ndim == 1:
            if cov.shape != (K,):
                raise ValueError(f"isotropic covs must have shape (K,) = ({K},); got {cov.shape}")
            self.cov_kind = "isotropic"
            lambdas = np.repeat(cov[:, None], d, axis=1)
            vectors = None
        elif cov.ndim == 2:
            if cov.shape != (K, d):
                raise ValueError(f"diagonal covs must have shape (K, d) = ({K}, {d}); got {cov.shape}")
            self.cov_kind = "diagonal"
            lambdas, vectors = cov.copy(), None
        elif cov.ndim == 3:
            if cov.shape != (K, d, d):
                raise ValueError(f"full covs must have shape (K, d, d) = ({K}, {d}, {d}); got {cov.shape}")
            self.cov_kind = "full"
            lambdas, vectors = np.empty((K, d)), np.empty((K, d, d))
            for k in range(K):
                scale = max(np.abs(cov[k]).max(), np.finfo(float).tiny)
                if np.abs(cov[k] - cov[k].T).max() > 1e-10 * scale:
                    raise ValueError(f"covs[{k}] is not symmetric")
                lambdas[k], vectors[k] = np.linalg.eigh(cov[k])
        else:
            raise ValueError(f"covs must have 1, 2 or 3 dimensions; got shape {cov.shape}")
        bad = np.flatnonzero(~np.all(lambdas > 0, axis=1))
        if bad.size:
            raise ValueError(f"covs[{bad[0]}] is not positive definite (eigenvalues "
                             f"{np.round(lambdas[bad[0]], 12).tolist()})")
        # w, mu and cov are private copies, so making them read-only leaves
        # the caller's arrays (and their flags) alone
        self.weights = w / w.sum()
        self.means, self.covs = mu, cov
        self.lambdas, self.vectors = lambdas, vectors
        for arr in (self.weights, self.means, self.covs, self.lambdas) + ((vectors,) if vectors is not None else ()):
            arr.setflags(write=False)
        self.K, self.d = K, d

    # ---- the distribution ---------------------------------------------------
    def covariance(self, k):
        """Sigma_k as a (d, d) matrix."""
        if self.vectors is None:
            return np.diag(self.lambdas[k])
        return (self.vectors[k] * self.lambdas[k]) @ self.vectors[k].T

    def sample(self, n, rng=None):
        """n samples (shape (n, d), or (n,) when d = 1), from stream 1 of one key:
        component j from uniform j of interval 1, coordinates from the normals
        of interval 0."""
        n = integer(n, "n", 0)
        key = key_from_rng(rng)
        u = fill_uniform(np.empty(n), key, STREAM_INITIAL, 1)
        comp = np.minimum(np.searchsorted(np.cumsum(self.weights), u, side="right"), self.K - 1)
        z = fill_normal(np.empty((n, self.d)), key, STREAM_INITIAL, 0)
        scaled = z * np.sqrt(self.lambdas[comp])
        if self.vectors is not None:
            scaled = np.einsum("nij,nj->ni", self.vectors[comp], scaled)
        x = self.means[comp] + scaled
        return x[:, 0] if self.d == 1 else x

    def _log_weights(self):
        # a weight of 0 is a component at log 0 = -inf, whose responsibility
        # is then exactly 0 (not a warning)
        with np.errstate(divide="ignore"):
            return np.log(self.weights)

    def component_logpdf(self, x):
        """log w_k + log N(x; mu_k, Sigma_k), shape (n, K)."""
        rows, _ = _as_rows(x, self.d)
        diff = rows[:, None, :] - self.means[None]
        if self.vectors is not None:
            diff = np.einsum("nkj,kji->nki", diff, self.vectors)
        # a square beyond 1e308 is a component at -inf: weight exactly 0
        with np.errstate(over="ignore"):
            quad = np.sum(diff**2 / self.lambdas[None], axis=2)
        logdet = np.sum(np.log(self.lambdas), axis=1)
        return self._log_weights()[None] - 0.5 * (quad + logdet[None] + self.d * _LOG_2PI)

    def logpdf(self, x):
        """log p(x), shape (n,)."""
        return _logsumexp(self.component_logpdf(x), axis=1)

    def marginal_law(self, process, t):
        """The mixture x_t follows under ``process``: means m mu_k, covariances
        m^2 Sigma_k + s^2 I (t a time for an SDE, an index i for a chain)."""
        m, s = check_process(process).marginal_coefficients(t)
        return self.with_marginal(float(m), float(s))

    def marginal(self, process, t):
        """Deprecated alias of :meth:`marginal_law` (DeprecationWarning)."""
        warnings.warn("GaussianMixture.marginal(process, t) is deprecated: use marginal_law(process, t), "
                      "which names what it returns", DeprecationWarning, stacklevel=2)
        return self.marginal_law(process, t)

    def with_marginal(self, m, s):
        """The law of m x_0 + s z for x_0 from this mixture."""
        m, s = _coefficients(m, s)
        if self.cov_kind == "full":
            covs = m * m * self.covs + s * s * np.eye(self.d)[None]
        else:
            covs = m * m * self.covs + s * s
        return GaussianMixture(self.weights, m * self.means, covs)

    # ---- the score ----------------------------------------------------------
    def score(self, process):
        """The exact score of the marginals under ``process`` (fused in C)."""
        return BoundScore(self, process)

    def _components(self, x, m, s):
        """Rows of x, whether x was a batch of scalars, the responsibilities
        gamma_k(x) and the per-component scores C_k^{-1}(m mu_k - x)."""
        rows, scalar = _as_rows(x, self.d)
        marg = self.with_marginal(m, s)
        logits = marg.component_logpdf(rows)
        gamma = np.exp(logits - _logsumexp(logits, axis=1)[:, None])
        diff = marg.means[None] - rows[:, None, :]
        if marg.vectors is None:
            per = diff / marg.lambdas[None]
        else:
            y = np.einsum("nkj,kji->nki", diff, marg.vectors) / marg.lambdas[None]
            per = np.einsum("kij,nkj->nki", marg.vectors, y)
        return scalar, marg, gamma, per

    def score_at(self, x, m, s):
        """The score of the law of m x_0 + s z at x, in NumPy."""
        scalar, _, gamma, per = self._components(x, m, s)
        out = np.einsum("nk,nkj->nj", gamma, per)
        return out[:, 0] if scalar else out

    def score_and_trace(self, x, m, s):
        r"""The score and the trace of its Jacobian (the Laplacian of log p_t):

        .. math:: \mathrm{tr}\,\nabla s = \sum_k \gamma_k\left(|g_k|^2 - \mathrm{tr}\,C_k^{-1}\right) - |s|^2,
                  \quad g_k = C_k^{-1}(m\mu_k - x)
        """
        scalar, marg, gamma, per = self._components(x, m, s)
        score = np.einsum("nk,nkj->nj", gamma, per)
        inv_trace = np.sum(1.0 / marg.lambdas, axis=1)
        trace = gamma @ (-inv_trace) + np.einsum("nk,nkj,nkj->n", gamma, per, per) - np.sum(score**2, axis=1)
        return (score[:, 0] if scalar else score), trace

    def c_params(self, dim):
        if dim != self.d:
            raise ValueError(f"this GaussianMixture has d = {self.d}; the states have {dim} "
                             "coordinates per row")
        vectors = np.zeros(0) if self.vectors is None else np.ascontiguousarray(self.vectors).ravel()
        # 1 for a component whose variances are all equal (C sums its
        # log-normalizer from one log; it checks the flags)
        uniform = np.all(self.lambdas == self.lambdas[:, :1], axis=1).astype(np.float64)
        return _SCORE_MIXTURE, (self._log_weights(), np.ascontiguousarray(self.means).ravel(),
                                np.ascontiguousarray(self.lambdas).ravel(), vectors, uniform)

    def __repr__(self):
        return f"GaussianMixture(K={self.K}, d={self.d}, {self.cov_kind})"


class EmpiricalData:
    r"""Data given as n points with equal weights, and the exact score of their
    smoothed marginals (the ideal denoiser):

    .. math::

        p_t(x) = \frac1n \sum_i \mathcal N(x; m y_i, s^2 I), \quad
        \nabla \log p_t(x) = \sum_i \gamma_i(x) \frac{m y_i - x}{s^2}

    A reverse run with this score carries its samples back onto the data
    points as t -> 0. It needs s > 0, which holds at every score time of a
    reverse run (the score is never evaluated at t_end).

    Parameters
    ----------
    points : array (n, d), or (n,) for d = 1
        Copied to a private read-only float64 array (n >= 1, d >= 1).
    """

    def __init__(self, points):
        pts = float_copy(points, "points")
        if pts.ndim == 1:
            pts = pts[:, None]
        if pts.ndim != 2 or pts.shape[0] == 0 or pts.shape[1] == 0:
            raise ValueError(f"points must have shape (n, d) or (n,) with n >= 1 and d >= 1; "
                             f"got shape {np.shape(points)}")
        all_finite(pts, "points")
        # a private copy: read-only here without touching the caller's array
        self.points = pts
        self.points.setflags(write=False)
        self.n, self.d = pts.shape

    def score(self, process):
        """The exact score of the smoothed data under ``process`` (fused in C)."""
        return BoundScore(self, process)

    def marginal_logpdf(self, x, m, s):
        """log p_t(x) for the law of m y + s z, shape (n_x,)."""
        rows, _ = _as_rows(x, self.d)
        m, s = _coefficients(m, s)
        if not s > 0:
            raise ValueError(f"the smoothed empirical density needs s > 0; got s = {s!r}")
        sq = np.sum((rows[:, None, :] - m * self.points[None]) ** 2, axis=2)
        return _logsumexp(-sq / (2 * s * s), axis=1) - np.log(self.n) - 0.5 * self.d * np.log(2 * np.pi * s * s)

    def score_at(self, x, m, s):
        """The score of the law of m y + s z at x, in NumPy (chunked over x)."""
        rows, scalar = _as_rows(x, self.d)
        m, s = _coefficients(m, s)
        if not s > 0:
            raise ValueError(f"the smoothed empirical score needs s > 0; got s = {s!r}")
        out = np.empty_like(rows)
        step = max(1, 2**22 // max(self.n, 1))
        for i in range(0, rows.shape[0], step):
            chunk = rows[i:i + step]
            logits = -np.sum((chunk[:, None, :] - m * self.points[None]) ** 2, axis=2) / (2 * s * s)
            gamma = np.exp(logits - logits.max(axis=1, keepdims=True))
            gamma /= gamma.sum(axis=1, keepdims=True)
            out[i:i + step] = (m * gamma @ self.points - chunk) / (s * s)
        return out[:, 0] if scalar else out

    def score_and_trace(self, x, m, s):
        """The score and the trace of its Jacobian:
        ``sum_i gamma_i |g_i|^2 - d / s^2 - |score|^2`` with ``g_i = (m y_i - x) / s^2``."""
        rows, scalar = _as_rows(x, self.d)
        m, s = _coefficients(m, s)
        if not s > 0:
            raise ValueError(f"the smoothed empirical score needs s > 0; got s = {s!r}")
        logits = -np.sum((rows[:, None, :] - m * self.points[None]) ** 2, axis=2) / (2 * s * s)
        gamma = np.exp(logits - logits.max(axis=1, keepdims=True))
        gamma /= gamma.sum(axis=1, keepdims=True)
        per = (m * self.points[None] - rows[:, None, :]) / (s * s)
        score = np.einsum("ni,nij->nj", gamma, per)
        trace = np.einsum("ni,nij,nij->n", gamma, per, per) - self.d / (s * s) - np.sum(score**2, axis=1)
        return (score[:, 0] if scalar else score), trace

    def c_params(self, dim):
        """(kind, arrays) of the C kernel (csrc/simd.h, dsde_emp_args): the
        points centred on their mean, the same eight to a block transposed
        (zeros past n), their squared norms (+inf past n, so that padding
        weighs 0) and the centre. Packed once: the points are read-only."""
        if dim != self.d:
            raise ValueError(f"this EmpiricalData has d = {self.d}; the states have {dim} coordinates per row")
        packed = getattr(self, "_packed", None)
        if packed is None:
            n, d = self.n, self.d
            # the centre of the bounding box and the norms summed over the
            # coordinates in order: single IEEE operations, so the packed
            # arrays have the same bits on every machine
            center = 0.5 * (self.points.min(axis=0) + self.points.max(axis=0))
            centred = self.points - center
            padded = -(-n // 8) * 8
            blocks = np.zeros((padded, d))
            blocks[:n] = centred
            blocks = np.ascontiguousarray(blocks.reshape(padded // 8, 8, d).transpose(0, 2, 1))
            sq = np.full(padded, np.inf)
            norms = np.zeros(n)
            for j in range(d):
                norms = norms + centred[:, j] * centred[:, j]
            sq[:n] = norms
            packed = tuple(np.ascontiguousarray(a).ravel() for a in (centred, blocks, sq, center))
            for a in packed:
                a.setflags(write=False)
            self._packed = packed
        return _SCORE_EMPIRICAL, packed

    def __repr__(self):
        return f"EmpiricalData(n={self.n}, d={self.d})"


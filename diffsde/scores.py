"""Exact scores, usable inside the C step loop.

A built-in score object knows the data distribution p_0; the step table
supplies the marginal coefficients (m, s) of x_t = m x_0 + s z at each score
time, and the C driver evaluates the score of p_t without returning to Python.
"""
import numpy as np


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
    """

    def __init__(self, mean=0.0, var=1.0):
        mean = np.asarray(mean, dtype=np.float64)
        var = np.asarray(var, dtype=np.float64)
        if mean.ndim > 1 or var.ndim > 1:
            raise ValueError(f"mean and var must be scalars or 1-D; got shapes {mean.shape}, {var.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var))):
            raise ValueError("mean and var must be finite")
        if np.any(var < 0):
            raise ValueError(f"var must be >= 0; got {var}")
        self.mean = mean
        self.var = var

    def c_params(self, dim):
        """(kind, arrays) of the C kernel (csrc/scores.h, "linear")."""
        return 1, self.vectors(dim)

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
        x = np.asarray(x)
        mean, var = self.vectors(x.shape[-1] if x.ndim > 1 else 1)
        if x.ndim <= 1:
            mean, var = mean[0], var[0]
        return (m * mean - x) / (m * m * var + s * s)

    def __repr__(self):
        return f"LinearScore(mean={self.mean.tolist()}, var={self.var.tolist()})"


class EpsScore:
    r"""The score of a noise-prediction model: :math:`s(x, t) = -\varepsilon(x, t) / s(t)`.

    ``s(t)`` is the marginal std of the process (``sde.marginal(t)[1]``; for a
    chain, :math:`\sqrt{1 - \bar\alpha_i}` at i = t N / T). Made by
    :func:`score_from_eps`.
    """

    def __init__(self, eps_fn, process):
        from .chains import Chain
        from .sde import SDE

        if not callable(eps_fn):
            raise TypeError(f"eps_fn must be callable as eps_fn(x, t); got {eps_fn!r}")
        if not isinstance(process, (SDE, Chain)):
            raise TypeError(f"process must be an SDE or a chain; got {type(process).__name__}")
        self.eps_fn, self.process = eps_fn, process
        self._is_chain = isinstance(process, Chain)

    def std(self, t):
        """The marginal std s(t) the eps model was trained against."""
        if self._is_chain:
            i = int(round(float(t) * self.process.N / self.process.T))
            return float(self.process.marginal(i)[1])
        return float(self.process.marginal(t)[1])

    def __call__(self, x, t):
        std = self.std(t)
        if std == 0.0:
            raise ValueError(f"the score of an eps model is undefined at t = {t!r}, where s(t) = 0")
        return -np.asarray(self.eps_fn(x, t)) / std

    def __repr__(self):
        return f"score_from_eps({self.eps_fn!r}, {self.process!r})"


def score_from_eps(eps_fn, process):
    r"""Turn a noise-prediction model into a score: :math:`s = -\varepsilon(x, t)/s(t)`.

    Parameters
    ----------
    eps_fn : callable eps_fn(x, t)
        Predicts the noise z in x_t = m x_0 + s z.
    process : SDE or chain
        Gives s(t) (for a chain, sqrt(1 - abar_i) at t = t_i).

    Returns
    -------
    callable score(x, t)
    """
    return EpsScore(eps_fn, process)

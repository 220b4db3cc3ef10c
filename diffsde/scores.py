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

r"""Noise schedules: beta(t) with its integral B(t), and sigma(t)^2.

Every quantity has a closed form; nothing is integrated numerically.
"""
import numpy as np

from ._validation import positive_float, real_array, real_scalar, shown


class LinearBeta:
    r"""beta(t) = beta_min + (beta_max - beta_min) t / T (Song et al. 2021).

    .. math:: B(t) = \int_0^t \beta = \beta_{min} t + (\beta_{max} - \beta_{min}) \frac{t^2}{2T}
    """

    def __init__(self, beta_min, beta_max, T):
        self.beta_min = positive_float(beta_min, "beta_min")
        self.beta_max = positive_float(beta_max, "beta_max")
        self.T = positive_float(T, "T")

    def beta(self, t):
        return self.beta_min + (self.beta_max - self.beta_min) * (t / self.T)

    def integral(self, t):
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t / self.T

    def __repr__(self):
        return f"beta_min={self.beta_min:g}, beta_max={self.beta_max:g}"


class CosineBeta:
    r"""The cosine schedule of Nichol & Dhariwal (2021) in continuous time.

    .. math::

        \bar\alpha(t) = \frac{\cos^2\theta(t)}{\cos^2\theta(0)}, \quad
        \theta(t) = \frac{t/T + s}{1 + s}\frac{\pi}{2}, \quad
        B(t) = -\log\bar\alpha(t), \quad
        \beta(t) = B'(t) = \frac{\pi \tan\theta(t)}{T (1 + s)}

    beta(t) diverges at t = T, so it is clipped at ``max_beta`` (default 999,
    the continuous counterpart of the discrete clip beta_i <= 0.999 with 1000
    steps on [0, 1]); past the clip time B grows linearly, so the marginals
    stay exactly those of the clipped beta.
    """

    def __init__(self, s, T, max_beta=999.0):
        self.s = real_scalar(s, "s", "non_negative")
        self.T = positive_float(T, "T")
        self.max_beta = positive_float(max_beta, "max_beta")
        theta_clip = np.arctan(self.max_beta * self.T * (1 + self.s) / np.pi)
        self.t_clip = self.T * ((1 + self.s) * theta_clip / (np.pi / 2) - self.s)
        if self.t_clip <= 0:
            raise ValueError(f"max_beta = {self.max_beta!r} is below beta(0) of the cosine schedule")

    def _theta(self, t):
        return (t / self.T + self.s) / (1 + self.s) * (np.pi / 2)

    def _cosine_integral(self, t):
        # B = -2 log(cos(theta0 + d) / cos(theta0)) = -2 log1p(u) with
        # u = cos d - 1 - tan(theta0) sin d, which keeps relative precision
        # as t -> 0 where a difference of logs would cancel.
        d = self._theta(t) - self._theta(0.0)
        u = -2.0 * np.sin(0.5 * d) ** 2 - np.tan(self._theta(0.0)) * np.sin(d)
        return -2.0 * np.log1p(u)

    def beta(self, t):
        t = np.asarray(t, dtype=np.float64)
        raw = np.pi * np.tan(self._theta(np.minimum(t, self.t_clip))) / (self.T * (1 + self.s))
        out = np.where(t < self.t_clip, raw, self.max_beta)
        return out if out.ndim else float(out)

    def integral(self, t):
        t = np.asarray(t, dtype=np.float64)
        inside = self._cosine_integral(np.minimum(t, self.t_clip))
        out = inside + self.max_beta * np.maximum(t - self.t_clip, 0.0)
        return out if out.ndim else float(out)

    def __repr__(self):
        return f"cosine, s={self.s:g}, max_beta={self.max_beta:g}"


def _interval_index(t, n, T):
    """i with t in (t_{i-1}, t_i] on the grid t_i = i T / n (t = 0 -> 1).

    A time within 1e-9 steps above a grid point counts as that grid point,
    so grid times computed with rounding (i * (T / n)) find their interval.
    """
    return np.clip(np.ceil(np.asarray(t) * (n / T) - 1e-9).astype(np.int64), 1, n)


class PiecewiseBeta:
    r"""beta(t) = N beta_i / T on (t_{i-1}, t_i], t_i = i T / N.

    The schedule whose Riemann sum on the chain grid returns the chain's
    betas: beta(t_i) T / N = beta_i. B(t) is piecewise linear through the
    partial sums :math:`B(t_i) = \sum_{j \le i} \beta_j`.
    """

    def __init__(self, betas, T):
        self.betas = real_array(betas, "betas", ndim=1)
        if self.betas.size == 0 or np.any(self.betas <= 0):
            raise ValueError(f"betas must be a non-empty 1-D array of positive numbers; got {shown(betas)}")
        self.T = positive_float(T, "T")
        self.N = self.betas.size
        self._partial = np.r_[0.0, np.cumsum(self.betas)]

    def beta(self, t):
        return self.betas[_interval_index(t, self.N, self.T) - 1] * (self.N / self.T)

    def integral(self, t):
        i = _interval_index(t, self.N, self.T)
        start = (i - 1) * (self.T / self.N)
        return self._partial[i - 1] + self.betas[i - 1] * (self.N / self.T) * (np.asarray(t) - start)

    def __repr__(self):
        return f"from_betas, N={self.N}"


class GeometricSigma:
    r"""sigma(t) = sigma_min (sigma_max / sigma_min)^{t/T} (SMLD/NCSN).

    .. math::

        \sigma(t)^2 - \sigma(0)^2 = \sigma_{min}^2\, \mathrm{expm1}(2 (t/T) \log r),
        \quad \frac{d\sigma^2}{dt} = \frac{2 \log r}{T} \sigma(t)^2,
        \quad r = \sigma_{max}/\sigma_{min}
    """

    def __init__(self, sigma_min, sigma_max, T):
        self.sigma_min = positive_float(sigma_min, "sigma_min")
        self.sigma_max = positive_float(sigma_max, "sigma_max")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"sigma_max must exceed sigma_min (sigma(t) must increase: g(t)^2 = d sigma^2/dt "
                             f"> 0); got sigma_min={self.sigma_min!r}, sigma_max={self.sigma_max!r}")
        self.T = positive_float(T, "T")
        self._log_ratio = np.log(self.sigma_max / self.sigma_min)

    def sigma(self, t):
        return self.sigma_min * np.exp(self._log_ratio * (t / self.T))

    def variance_added(self, t):
        """sigma(t)^2 - sigma(0)^2."""
        return self.sigma_min**2 * np.expm1(2 * self._log_ratio * (t / self.T))

    def dsigma2_dt(self, t):
        return 2 * self._log_ratio / self.T * self.sigma(t) ** 2

    def __repr__(self):
        return f"sigma_min={self.sigma_min:g}, sigma_max={self.sigma_max:g}"


class PiecewiseSigma:
    r"""sigma(t)^2 linear between grid points: sigma(t_i) = sigmas[i], t_i = i T / N.

    ``sigmas`` holds sigma(t_0), ..., sigma(t_N), strictly increasing.
    """

    def __init__(self, sigmas, T):
        self.sigmas = real_array(sigmas, "sigmas", ndim=1)
        if self.sigmas.size < 2:
            raise ValueError(f"sigmas must hold sigma(t_0), ..., sigma(t_N) with N >= 1; got {shown(sigmas)}")
        if np.any(self.sigmas < 0):
            raise ValueError(f"sigmas must be >= 0; got {shown(sigmas)}")
        steps = np.diff(self.sigmas**2)
        if np.any(steps <= 0):
            i = int(np.flatnonzero(steps <= 0)[0])
            raise ValueError(
                f"sigmas must increase strictly; sigmas[{i + 1}] = {float(self.sigmas[i + 1])!r} <= "
                f"sigmas[{i}] = {float(self.sigmas[i])!r} (pass noise levels from small to large)"
            )
        self.T = positive_float(T, "T")
        self.N = self.sigmas.size - 1
        self._increments = steps
        self._partial = np.r_[0.0, np.cumsum(steps)]

    def sigma(self, t):
        return np.sqrt(self.sigmas[0] ** 2 + self.variance_added(t))

    def variance_added(self, t):
        i = _interval_index(t, self.N, self.T)
        frac = np.asarray(t) * (self.N / self.T) - (i - 1)
        return self._partial[i - 1] + self._increments[i - 1] * frac

    def dsigma2_dt(self, t):
        return self._increments[_interval_index(t, self.N, self.T) - 1] * (self.N / self.T)

    def __repr__(self):
        return f"from_sigmas, N={self.N}"

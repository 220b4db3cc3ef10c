r"""What a network predicts, turned into the score of the process's marginal.

A diffusion network is trained to predict one of several quantities of the
marginal sample :math:`x_t = m(t)\, x_0 + s(t)\, \varepsilon`; each is an
affine function of the score :math:`\nabla \log p_t(x)` given x, because
Tweedie's formula gives :math:`E[x_0 \mid x_t = x] = (x + s^2 \nabla\log p_t(x))/m`
and :math:`E[\varepsilon \mid x_t = x] = -s\, \nabla\log p_t(x)`:

===========  =================================  ===========================================
prediction   the network's target               score
===========  =================================  ===========================================
eps          :math:`\varepsilon`                :math:`-\hat\varepsilon / s`
x0           :math:`x_0`                        :math:`(m \hat x_0 - x) / s^2`
v            :math:`m \varepsilon - s x_0`      :math:`-(s x + m \hat v)/s` (m^2 + s^2 = 1)
velocity     :math:`m' x_0 + s' \varepsilon`    :math:`-\hat\varepsilon / s`, with
                                                :math:`\hat\varepsilon = (m \hat u - m' x)/(m s' - m' s)`
===========  =================================  ===========================================

The functions here use only the process protocol: ``marginal_coefficients``
(m, s) and, for ``velocity``, ``dmean`` (m') and ``dvar`` ((s^2)' = 2 s s').
A chain's time t is its grid time t_i = i T / N; its (m, s) are those of
index i, and between grid indices (where the sigma-space samplers evaluate
a score) those the samplers use there (``_protocol.chain_coefficients``:
log sigma linear in t, the chain family's marginal).
"""
import math

import numpy as np

from ._protocol import chain_coefficients, check_process, is_chain, scalar_time
from ._validation import shown

#: The prediction types of :func:`network_score`.
PREDICTIONS = ("eps", "x0", "v", "velocity", "score")
#: The named time inputs of :func:`network_score`.
TIMES = ("t", "sigma", "sigma_score_sde", "index")
#: |m^2 + s^2 - 1| allowed on the check grid for v-prediction.
_UNIT_TOL = 1e-9


def _is_chain(process):
    return is_chain(process)


def _check_process(process):
    return check_process(process)


def coefficients(process, t, derivatives=False):
    """(m, s) at the scalar time t, as floats, and (m', s') if asked.

    Chains have no derivatives (their time is an index); asking for them
    raises ValueError naming the chain.
    """
    t = scalar_time(t, process)
    if _is_chain(process):
        if derivatives:
            raise ValueError(f"velocity prediction needs dm/dt and ds/dt, which the chain {process!r} "
                             f"does not have (its time is an index); use its SDE, chain.as_sde()")
        return chain_coefficients(process, t) + (None, None)
    m, s = process.marginal_coefficients(t)
    m, s = float(m), float(s)
    if not derivatives:
        return m, s, None, None
    dm = float(process.dmean(t))
    if s == 0.0:
        ds = math.nan  # unused: the score is undefined where s = 0
    else:
        ds = float(process.dvar(t)) / (2.0 * s)
    return m, s, dm, ds


def _undefined(kind, process, t):
    return ValueError(f"the score of a {kind} prediction is undefined at t = {shown(t)} on {process!r}, "
                      f"where s(t) = 0")


def to_score(kind, pred, x, m, s, dm=None, ds=None):
    """The score from a prediction ``pred`` at x, for marginal coefficients
    (m, s) (and m', s' for ``velocity``).

    Plain arithmetic, so it works on NumPy arrays, torch tensors and JAX
    arrays alike, and autograd differentiates through it.
    """
    if kind == "score":
        return pred
    if kind == "eps":
        return pred * (-1.0 / s)
    if kind == "x0":
        return (pred * m - x) * (1.0 / (s * s))
    if kind == "v":
        # x = m x0 + s eps and v = m eps - s x0 give eps = s x + m v when m^2 + s^2 = 1
        return (x * s + pred * m) * (-1.0 / s)
    if kind == "velocity":
        det = m * ds - dm * s
        return (pred * m - x * dm) * (-1.0 / (det * s))
    raise ValueError(f"prediction must be one of {', '.join(map(repr, PREDICTIONS))}; got {shown(kind)}")


def _check_unit_path(process, what):
    """v-prediction (Salimans & Ho 2022) is defined for m^2 + s^2 = 1."""
    if _is_chain(process):
        m, s = process.marginal_coefficients(np.arange(process.N + 1))
        grid = np.arange(process.N + 1)
    else:
        grid = np.linspace(0.0, process.T, 257)
        m, s = process.marginal_coefficients(grid)
    err = np.abs(np.asarray(m, dtype=np.float64) ** 2 + np.asarray(s, dtype=np.float64) ** 2 - 1)
    if np.any(err > _UNIT_TOL):
        i = int(np.argmax(err))
        where = f"index {int(grid[i])}" if _is_chain(process) else f"t = {float(grid[i])!r}"
        raise ValueError(f"{what} needs a variance-preserving path, m^2 + s^2 = 1 (v = m eps - s x0 "
                         f"of Salimans & Ho 2022); {process!r} has m^2 + s^2 = "
                         f"{float(np.asarray(m)[i] ** 2 + np.asarray(s)[i] ** 2):.6g} at {where}. "
                         f"Use prediction 'eps', 'x0' or 'velocity' there")


class PredictionScore:
    """A NumPy score made from a NumPy prediction fn(x, t) with a scalar t.

    Made by :func:`score_from_eps`, :func:`score_from_x0`,
    :func:`score_from_v` and :func:`score_from_velocity`.
    """

    _label = {"eps": "eps_fn", "x0": "x0_fn", "v": "v_fn", "velocity": "u_fn"}
    _maker = {"eps": "score_from_eps", "x0": "score_from_x0", "v": "score_from_v",
              "velocity": "score_from_velocity"}

    def __init__(self, fn, process, kind):
        if not callable(fn):
            raise TypeError(f"{self._label[kind]} must be callable as {self._label[kind]}(x, t); got {fn!r}")
        self.process = _check_process(process)
        self.fn, self.kind = fn, kind
        self._is_chain = _is_chain(process)
        if kind == "v":
            _check_unit_path(process, "score_from_v")
        if kind == "velocity" and self._is_chain:
            coefficients(process, 0.0, derivatives=True)  # raises, naming the chain

    def __call__(self, x, t):
        m, s, dm, ds = coefficients(self.process, t, self.kind == "velocity")
        if s == 0.0:
            raise _undefined(self.kind, self.process, t)
        x = np.asarray(x)
        pred = np.asarray(self.fn(x, t))
        return to_score(self.kind, pred, x, m, s, dm, ds)

    def __repr__(self):
        return f"{self._maker[self.kind]}({self.fn!r}, {self.process!r})"


class EpsScore(PredictionScore):
    r"""The score of a noise-prediction model: :math:`s(x, t) = -\varepsilon(x, t) / s(t)`.

    ``s(t)`` is the marginal std of the process (``sde.marginal_coefficients(t)[1]``; for a
    chain, :math:`\sqrt{1 - \bar\alpha_i}` at i = t N / T, and between grid times the s
    the sigma-space samplers use there). Made by :func:`score_from_eps`.
    """

    def __init__(self, eps_fn, process):
        super().__init__(eps_fn, process, "eps")

    @property
    def eps_fn(self):
        return self.fn

    def std(self, t):
        """The marginal std s(t) the eps model was trained against."""
        return coefficients(self.process, t)[1]

    def __call__(self, x, t):
        std = self.std(t)
        if std == 0.0:
            raise ValueError(f"the score of an eps model is undefined at t = {t!r}, where s(t) = 0")
        return -np.asarray(self.eps_fn(x, t)) / std


def score_from_eps(eps_fn, process):
    r"""Turn a noise-prediction model into a score: :math:`\nabla\log p_t(x) = -\hat\varepsilon(x, t)/s(t)`.

    With :math:`x_t = m x_0 + s \varepsilon`, the minimiser of
    :math:`E\,|\hat\varepsilon(x_t, t) - \varepsilon|^2` is
    :math:`E[\varepsilon \mid x_t] = -s \nabla \log p_t(x_t)` (Ho et al. 2020,
    eq. 11 and sec. 3.2; Song et al. 2021, app. C; derivation 002).

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


def score_from_x0(x0_fn, process):
    r"""Turn a data-prediction model (a denoiser) into a score.

    .. math:: \nabla \log p_t(x) = \frac{m(t)\, \hat x_0(x, t) - x}{s(t)^2}

    Tweedie's formula, :math:`E[x_0 \mid x_t = x] = (x + s^2 \nabla \log p_t(x))/m`
    (Efron 2011; Karras et al. 2022, eq. 3 with m = 1), solved for the score.

    Parameters
    ----------
    x0_fn : callable x0_fn(x, t)
        Predicts x_0 from x_t, in the process's own variables (for a
        k-diffusion denoiser D(x/m, sigma) use :func:`network_score` with
        ``prediction="x0", time="sigma"``).
    process : SDE or chain
        Any process of the protocol: only (m, s) are used.

    Returns
    -------
    callable score(x, t)
    """
    return PredictionScore(x0_fn, process, "x0")


def score_from_v(v_fn, process):
    r"""Turn a v-prediction model into a score (variance-preserving paths only).

    With :math:`v = m \varepsilon - s x_0` and :math:`m^2 + s^2 = 1`
    (Salimans & Ho 2022, sec. 4 and app. D),
    :math:`\varepsilon = s\, x + m\, v`, so

    .. math:: \nabla \log p_t(x) = -\frac{s(t)\, x + m(t)\, \hat v(x, t)}{s(t)}.

    Parameters
    ----------
    v_fn : callable v_fn(x, t)
    process : SDE or chain with m^2 + s^2 = 1
        VPSDE, a DDPM chain, or an AffineSDE such as the cosine path
        (m, s) = (cos, sin). Others (sub-VP, VE, EDM, RectifiedFlow) raise
        ValueError naming the process, since v is then not the quantity
        networks are trained on.

    Returns
    -------
    callable score(x, t)
    """
    return PredictionScore(v_fn, process, "v")


def score_from_velocity(u_fn, process):
    r"""Turn a flow-matching velocity model into a score.

    A flow-matching network predicts :math:`u = E[m' x_0 + s' \varepsilon \mid x_t = x]`,
    the velocity of the path :math:`x_t = m x_0 + s \varepsilon` (Lipman et
    al. 2023; Liu et al. 2023). With :math:`x_0 = (x - s \varepsilon)/m`,

    .. math::

        \hat\varepsilon = \frac{m\, \hat u - m'\, x}{m\, s' - m'\, s}, \qquad
        \nabla \log p_t(x) = -\frac{\hat\varepsilon}{s}.

    On :class:`RectifiedFlow` ((m, s) = (1 - t, t)) this is
    :math:`-(x + (1 - t)\, \hat u)/t`.

    Parameters
    ----------
    u_fn : callable u_fn(x, t)
        The velocity dx_t/dt in the process's own time t.
    process : SDE
        Uses (m, s), ``dmean`` (m') and ``dvar`` ((s^2)' = 2 s s'); chains
        have no derivative and raise ValueError.

    Returns
    -------
    callable score(x, t)
    """
    return PredictionScore(u_fn, process, "velocity")

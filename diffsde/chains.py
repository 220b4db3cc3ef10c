r"""The discrete diffusion chains: DDPM (Ho et al. 2020) and SMLD/NCSN (Song
& Ermon 2019), indexed i = 0..N on the grid t_i = i T / N.

==========  ==============================================  =================================
chain       step i (x_{i-1} -> x_i)                         marginal x_i = m_i x_0 + s_i z
==========  ==============================================  =================================
DDPM        sqrt(1 - beta_i) x_{i-1} + sqrt(beta_i) z        (sqrt(abar_i), sqrt(1 - abar_i))
SMLD        x_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) z       (1, sqrt(sigma_i^2 - sigma_0^2))
==========  ==============================================  =================================

with abar_i = prod_{j <= i} (1 - beta_j). Chain step i uses noise interval
i - 1, the interval forward Euler-Maruyama step k = i - 1 uses, so a chain
and its SDE limit run on the same draws.
"""
import abc
import warnings

import numpy as np

from ._validation import choice, integer, positive_float, real_array, real_scalar, shown
from .methods._view import GridView, marginal_columns
from .schedules import LinearBeta
from .sde import VESDE, VPSDE, SubVPSDE


def _index(i, N):
    arr = np.asarray(i)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"i must be an integer index or array of them; got {shown(i)}")
    if np.any((arr < 0) | (arr > N)):
        raise ValueError(f"i must lie in [0, N] = [0, {N}]; got {shown(i)}")
    return arr


#: The timestep spacings of diffusers' schedulers (``timestep_spacing``).
SPACINGS = ("trailing", "leading", "linspace")


def _respace_indices(N, M, spacing="trailing", steps_offset=0):
    r"""The kept chain indices 0 = i_0 < i_1 < ... < i_M of ``respace``.

    A diffusers timestep tau (0-based over the N training steps) is chain
    index i = tau + 1; index 0, the data, is always kept. "trailing" is
    round(j N / M), "leading" j (N // M) + 1 + steps_offset for j < M,
    "linspace" round(j (N - 1) / (M - 1)) + 1, the last two computed as
    diffusers computes them.

    diffusers computes "trailing" as round(N - j (N/M)) - 1 in floating
    point: the same integers except where j N / M is a half-integer (a tie,
    e.g. N = 7, M = 6: 3.5), which diffsde rounds half to even while
    diffusers' rounding error picks either side, and except that for some
    (N, M) (e.g. N = 15, M = 13) its ``arange`` returns M + 1 values, the
    last one tau = -1. diffsde keeps its rule (the historical one, bit for
    bit) and documents the difference.
    """
    M = integer(M, "M", 1, N, "N")
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be 'trailing', 'leading' or 'linspace'; got {shown(spacing)}")
    steps_offset = integer(steps_offset, "steps_offset", 0)
    if steps_offset and spacing != "leading":
        raise ValueError(f"steps_offset applies to spacing='leading' only; got steps_offset={steps_offset} "
                         f"with spacing={spacing!r}")
    if spacing == "trailing":
        return np.round(np.arange(M + 1) * (N / M)).astype(np.int64)
    if spacing == "leading":
        top = (M - 1) * (N // M) + 1 + steps_offset
        if top > N:
            raise ValueError(f"steps_offset must be in [0, {N - top + steps_offset}] for M = {M} of N = {N} "
                             f"steps with spacing='leading' (the last kept index would be {top} > N); "
                             f"got {steps_offset}")
        return np.r_[0, np.arange(M) * (N // M) + 1 + steps_offset].astype(np.int64)
    return np.r_[0, np.round(np.linspace(0, N - 1, M)).astype(np.int64) + 1]


class Chain(abc.ABC):
    """Shared behaviour of the discrete chains.

    A chain is marked by the capability "chain" in ``capabilities``, which
    every subclass extends: code that must tell a chain from an SDE reads
    that marker, never an attribute such as ``N``."""

    N: int
    T: float
    #: What a chain offers the methods (``ds.methods.available``): its own steps.
    capabilities = frozenset({"affine", "chain"})

    @property
    def t(self):
        """The grid t_i = i T / N, i = 0..N."""
        return np.arange(self.N + 1) * (self.T / self.N)

    @abc.abstractmethod
    def marginal_coefficients(self, i):
        """(m_i, s_i) at grid index i, with x_i = m_i x_0 + s_i z."""

    def marginal(self, i):
        """Deprecated alias of :meth:`marginal_coefficients` (DeprecationWarning)."""
        warnings.warn("Chain.marginal(i) is deprecated: use marginal_coefficients(i), which names what it "
                      "returns", DeprecationWarning, stacklevel=2)
        return self.marginal_coefficients(i)

    @abc.abstractmethod
    def step_coefficients(self):
        """(a_i, c_i), i = 1..N: the chain step x_i = a_i x_{i-1} + c_i z."""

    @abc.abstractmethod
    def as_sde(self):
        """The SDE whose grid values reproduce this chain."""

    def grid_view(self, grid=None):
        """The chain on its own grid t_i = i T / N: the
        :class:`~diffsde.methods.GridView` the methods build their tables
        from, with ``chain.as_sde()`` for f and g^2 (``grid``: None or
        ``chain.t``)."""
        if grid is not None and not np.array_equal(np.asarray(grid), self.t):
            raise ValueError(f"a chain runs on its own grid t_i = i T / N (N = {self.N}); got another "
                             "grid (use chain.respace(M) for fewer steps)")
        m, sd = marginal_columns(*self.marginal_coefficients(np.arange(self.N + 1)))
        return GridView(self.t, m, sd, self.as_sde(), self.capabilities, exact=self.transition,
                        chain_steps=self.step_coefficients, **self._chain_columns())

    @abc.abstractmethod
    def _chain_columns(self):
        """The chain's own column of the grid view (log_abar or sigma2)."""

    @abc.abstractmethod
    def respace(self, M, spacing="trailing", *, steps_offset=0):
        """The chain on M of the N steps, same marginals there (kept indices by
        diffusers' timestep spacings, :meth:`DDPM.respace`; default i_j = round(j N / M))."""

    def transition(self):
        r"""Exact transitions between consecutive marginals, i = 1..N: the
        chain's own steps (a_i, c_i), since its marginals are those of its
        steps, m_i = a_i m_{i-1} and s_i^2 = a_i^2 s_{i-1}^2 + c_i^2."""
        return self.step_coefficients()


class DDPM(Chain):
    r"""The DDPM forward chain x_i = sqrt(1 - beta_i) x_{i-1} + sqrt(beta_i) eps.

    Its methods see it through :meth:`grid_view` with the capabilities
    "chain" (its own steps), "ddpm_chain" (log abar_i) and "affine" (f and
    g^2 of :meth:`as_sde`).

    Parameters
    ----------
    betas : array of shape (N,), each in (0, 1)
    T : float > 0
        The time span of the grid t_i = i T / N.
    """

    def __init__(self, betas, T=1.0):
        betas = real_array(betas, "betas", ndim=1)
        if betas.size == 0:
            raise ValueError("betas must hold at least one step")
        bad = np.flatnonzero((betas <= 0) | (betas >= 1))
        if bad.size:
            raise ValueError(f"betas must lie in (0, 1); betas[{bad[0]}] = {float(betas[bad[0]])!r}")
        self.betas = betas
        self.betas.setflags(write=False)
        self.N = betas.size
        self.T = positive_float(T, "T")
        self._log_alpha_bar = np.r_[0.0, np.cumsum(np.log1p(-betas))]

    @classmethod
    def from_sde(cls, vp, N, rule="riemann"):
        r"""Discretize a VP SDE on t_i = i T / N.

        Parameters
        ----------
        vp : VPSDE
        N : int >= 1
        rule : {"riemann", "exact", "linear"}
            ``"riemann"`` (derivation 001): :math:`\beta_i = \beta(t_i) T / N`, first
            order (derivation 003 uses beta(t_{i-1}), also first order).
            ``"exact"``: :math:`\beta_i = 1 - \exp(-\int_{t_{i-1}}^{t_i} \beta)`,
            so abar_i = e^{-B(t_i)} and the chain has the SDE's marginals on the
            grid; this is the chain ``reverse`` runs its chain methods on.
            ``"linear"`` (linear beta(t) only): the schedule of score_sde's
            ``VPSDE.discrete_betas`` and of diffusers' ``beta_schedule="linear"``,
            N values evenly spaced from beta(0) T / N to beta(T) T / N,

            .. math:: \beta_i = \frac{T}{N}\left[\beta_{min}
                      + \frac{i - 1}{N - 1} (\beta_{max} - \beta_{min})\right],

            so beta_1 = beta_min T/N and beta_N = beta_max T/N (the Riemann rule
            on the grid (i - 1) T / (N - 1) instead of i T / N); for
            beta_min = 0.1, beta_max = 20, T = 1, N = 1000 these are Ho et al.'s
            1e-4 ... 0.02 (see also :meth:`DDPM.linear`).

        Raises
        ------
        ValueError
            If some beta_i >= 1 (too few steps for the schedule); the message
            names the step and what to do.
        """
        if not isinstance(vp, VPSDE) or isinstance(vp, SubVPSDE):
            raise TypeError(f"DDPM.from_sde needs a VPSDE; got {type(vp).__name__}")
        N = integer(N, "N", 1)
        grid = np.arange(N + 1) * (vp.T / N)
        rule = choice(rule, "rule", ("riemann", "exact", "linear"))
        if rule == "riemann":
            betas = vp.beta(grid[1:]) * (vp.T / N)
        elif rule == "exact":
            betas = -np.expm1(-np.diff(vp.integrated_beta(grid)))
        else:
            if not isinstance(vp.schedule, LinearBeta):
                raise ValueError(f"rule='linear' needs a linear beta(t) (VPSDE(beta_min, beta_max)); "
                                 f"got {vp!r}; use rule='riemann' or 'exact'")
            sched = vp.schedule
            betas = np.linspace(sched.beta_min * vp.T / N, sched.beta_max * vp.T / N, N)
        if np.any(betas >= 1):
            i = int(np.flatnonzero(betas >= 1)[0]) + 1
            hint = ("rule='exact' (1 - exp(-integral of beta over each step), always < 1 unless "
                    "rounding makes it 1) or more steps" if rule != "exact" else "more steps")
            raise ValueError(
                f"beta_{i} = {float(betas[i - 1]):.4g} >= 1 with N = {N} steps and rule={rule!r}: the "
                f"chain is not a valid DDPM; use {hint}"
            )
        return cls(betas, vp.T)

    @classmethod
    def linear(cls, N=1000, beta_start=1e-4, beta_end=0.02, T=1.0):
        r"""Ho et al.'s (2020) linear schedule: N betas evenly spaced from
        ``beta_start`` to ``beta_end``,

        .. math:: \beta_i = \beta_{start} + \frac{i - 1}{N - 1} (\beta_{end} - \beta_{start}),
                  \quad i = 1..N,

        diffusers' ``DDPMScheduler(beta_schedule="linear")`` (defaults
        1e-4, 0.02, N = 1000) and score_sde's ``VPSDE.discrete_betas`` with
        beta_min = N beta_start, beta_max = N beta_end.

        Parameters
        ----------
        N : int >= 1
        beta_start, beta_end : float in (0, 1)
        T : float > 0
            The time span of the grid t_i = i T / N.
        """
        N = integer(N, "N", 1)
        beta_start = real_scalar(beta_start, "beta_start", "in_unit_interval")
        beta_end = real_scalar(beta_end, "beta_end", "in_unit_interval")
        return cls(np.linspace(beta_start, beta_end, N), T)

    capabilities = Chain.capabilities | {"ddpm_chain"}

    @property
    def log_alpha_bar(self):
        """log abar_i, i = 0..N (a read-only array; log abar_0 = 0)."""
        out = self._log_alpha_bar.view()
        out.setflags(write=False)
        return out

    def _chain_columns(self):
        return {"log_abar": self.log_alpha_bar}

    @property
    def alpha_bar(self):
        """abar_i = prod_{j<=i} (1 - beta_j), i = 0..N (abar_0 = 1)."""
        return np.exp(self._log_alpha_bar)

    def marginal_coefficients(self, i):
        """(sqrt(abar_i), sqrt(1 - abar_i)), computed in log space."""
        log_ab = self._log_alpha_bar[_index(i, self.N)]
        return np.exp(0.5 * log_ab), np.sqrt(-np.expm1(log_ab))

    def step_coefficients(self):
        return np.sqrt(1 - self.betas), np.sqrt(self.betas)

    def as_sde(self):
        """VPSDE.from_betas(betas, T): beta(t_i) T / N = beta_i on the grid."""
        return VPSDE.from_betas(self.betas, self.T)

    def respace(self, M, spacing="trailing", *, steps_offset=0):
        r"""The DDPM on M of the N steps, with this chain's marginals there.

        The kept indices 0 = i_0 < i_1 < ... < i_M follow diffusers'
        ``timestep_spacing`` (a diffusers timestep tau is chain index
        i = tau + 1; index 0, the data, is always kept):

        ============  =========================================  ==================
        spacing       i_j, j = 1..M                              top index
        ============  =========================================  ==================
        "trailing"    round(j N / M)                             N
        "leading"     (j - 1) floor(N / M) + 1 + steps_offset    below N in general
        "linspace"    round((j - 1)(N - 1)/(M - 1)) + 1          N
        ============  =========================================  ==================

        (NumPy's round half to even; "linspace" with M = 1 keeps index 1.)
        "trailing", the default, :math:`i_j = \mathrm{round}(j N / M)`, is diffsde's historical rule and starts the
        run at the chain's last index (diffusers' "trailing" gives the same
        indices except at ties, where j N / M is a half-integer: diffsde
        rounds those half to even, diffusers by its floating-point error); "leading" (Stable Diffusion's configs,
        with steps_offset = 1) leaves the last N - i_M steps out, so a run
        starts at a less noisy marginal. The new betas make
        :math:`\bar\alpha'_j = \bar\alpha_{i_j}`:

        .. math:: \beta'_j = 1 - \bar\alpha_{i_j} / \bar\alpha_{i_{j-1}},

        as in Nichol & Dhariwal (2021), section 4. The new chain lives on its
        own grid t'_j = j T / M, which is t_{i_j} only up to the spacing's
        rounding (and, for "leading", its gap at the top).

        Parameters
        ----------
        M : int, 1 <= M <= N
        spacing : {"trailing", "leading", "linspace"}
        steps_offset : int >= 0
            diffusers' ``steps_offset``, added to every kept index but 0
            ("leading" only).

        Returns
        -------
        DDPM
            N = M steps, same T.
        """
        idx = _respace_indices(self.N, M, spacing, steps_offset)
        log_ab = self._log_alpha_bar[idx]
        return DDPM(-np.expm1(np.diff(log_ab)), self.T)

    def __repr__(self):
        return f"DDPM(N={self.N}, beta in [{self.betas.min():.3g}, {self.betas.max():.3g}], T={self.T:g})"


class SMLD(Chain):
    r"""The SMLD/NCSN forward chain x_i = x_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) z.

    Its methods see it through :meth:`grid_view` with the capabilities
    "chain", "smld_chain" (sigma_i^2) and "affine" (f and g^2 of
    :meth:`as_sde`).

    Parameters
    ----------
    sigmas : array of shape (N,)
        sigma_1 < ... < sigma_N.
    sigma0 : float, 0 <= sigma0 < sigma_1
        The noise level of x_0 (0: clean data).
    T : float > 0
    """

    def __init__(self, sigmas, sigma0=0.0, T=1.0):
        sigmas = real_array(sigmas, "sigmas", ndim=1)
        if sigmas.size == 0:
            raise ValueError("sigmas must hold at least one noise level")
        sigma0 = real_scalar(sigma0, "sigma0", "non_negative")
        full = np.r_[sigma0, sigmas]
        bad = np.flatnonzero(np.diff(full) <= 0)
        if bad.size:
            i = int(bad[0])
            hint = (" (sigmas decrease: NCSN code lists them from large to small; pass sigmas[::-1])"
                    if sigmas.size > 1 and sigmas[0] > sigmas[-1] else "")
            raise ValueError(
                f"noise levels must increase strictly from sigma0: sigma_{i + 1} = {float(full[i + 1])!r} "
                f"<= sigma_{i} = {float(full[i])!r}{hint}"
            )
        self.sigmas = sigmas
        self.sigmas.setflags(write=False)
        self.sigma0 = sigma0
        self.N = sigmas.size
        self.T = positive_float(T, "T")
        self._full = full
        self._variance_added = np.r_[0.0, np.cumsum(np.diff(full**2))]

    @classmethod
    def from_sde(cls, ve, N):
        """sigma_i = sigma(t_i) for i = 0..N on t_i = i T / N (so sigma_0 = sigma_min)."""
        if not isinstance(ve, VESDE):
            raise TypeError(f"SMLD.from_sde needs a VESDE; got {type(ve).__name__}")
        N = integer(N, "N", 1)
        sig = ve.sigma(np.arange(N + 1) * (ve.T / N))
        return cls(sig[1:], sig[0], ve.T)

    def marginal_coefficients(self, i):
        """(1, sqrt(sigma_i^2 - sigma_0^2))."""
        s = np.sqrt(self._variance_added[_index(i, self.N)])
        return np.ones_like(s)[()], s

    capabilities = Chain.capabilities | {"smld_chain"}

    @property
    def sigma_levels(self):
        """(sigma_0, sigma_1, ..., sigma_N): the noise levels at i = 0..N
        (a read-only array; sigma_0 = ``sigma0``)."""
        out = self._full.view()
        out.setflags(write=False)
        return out

    def _chain_columns(self):
        return {"sigma2": self.sigma_levels**2}

    def step_coefficients(self):
        return np.ones(self.N), np.sqrt(np.diff(self._full**2))

    def as_sde(self):
        """VESDE.from_sigmas([sigma0, sigmas...], T): sigma(t_i) = sigma_i."""
        return VESDE.from_sigmas(self._full, self.T)

    def respace(self, M, spacing="trailing", *, steps_offset=0):
        r"""The SMLD chain on M of the N steps: sigma'_j = sigma_{i_j}, so the
        marginals at the kept indices are this chain's.

        The kept indices follow diffusers' ``timestep_spacing`` exactly as
        in :meth:`DDPM.respace`: "trailing" (default)
        :math:`i_j = \mathrm{round}(j N / M)`,
        j = 0..M (i_0 = 0, i_M = N; NumPy's round half to even); "leading"
        and "linspace" as there.

        Parameters
        ----------
        M : int, 1 <= M <= N
        spacing : {"trailing", "leading", "linspace"}
        steps_offset : int >= 0
            "leading" only.
        """
        idx = _respace_indices(self.N, M, spacing, steps_offset)
        return SMLD(self._full[idx[1:]], self.sigma0, self.T)

    def __repr__(self):
        return f"SMLD(N={self.N}, sigma in [{self.sigmas[0]:.3g}, {self.sigmas[-1]:.3g}], sigma0={self.sigma0:g}, T={self.T:g})"

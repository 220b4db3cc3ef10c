r"""The Langevin corrector of predictor-corrector sampling."""
import numpy as np

from .._validation import integer, real_scalar, shown
from .._steptable import StepTable, check_rows_fit
from ._registry import Method, Option


def langevin_corrector(view, snr=0.16, n_corrector_steps=1, corrector_at_start=True):
    r"""Langevin corrector sub-steps at every grid time but t_0 (no score
    there): at t_N, ..., t_1 with ``corrector_at_start=True`` (score_sde's PC
    sampler: a corrector before each predictor step, at that step's time, so
    also at t = T), at t_{N-1}, ..., t_1 with ``False`` (after each
    predictor step but the last). Run one table per sub-step before the
    predictor table (``corrector_at_start``) or after it (Song et al. 2021's
    predictor-corrector sampling).

    .. math:: x \leftarrow x + \epsilon_b s + \sqrt{2 \epsilon_b}\, z, \quad
              \epsilon_b = 2 r \left(\mathrm{snr}\, |z_b| / |s_b|\right)^2

    per batch row b; r = 1 - beta_k = abar_k / abar_{k-1} at the corrector's
    grid index k where the view has a DDPM chain (as in score_sde), 1
    otherwise. Sub-step m draws from stream 2 + m.

    Returns a list holding one StepTable, for ``StepTable.interleave``: its
    step j has the rows of sub-steps 0, ..., n_corrector_steps - 1. It is built in one
    pass over its rows, after checking that they fit in memory (MemoryError
    stating the bytes otherwise).
    """
    n_steps = n_corrector_steps
    # the corrector at t_k precedes the predictor step from t_k (at_start), or
    # follows the step landing on t_k (k = landing index of every step but the last)
    k = view.run_order() if corrector_at_start else view.run_order()[:-1] - 1
    check_rows_fit(k.size * n_steps, f"a Langevin corrector of {n_steps:,} sub-steps at each of "
                                     f"{k.size:,} grid times", "use fewer corrector sub-steps or fewer steps")
    if view.log_abar is not None:
        r = np.exp(view.log_abar[k] - view.log_abar[k - 1])
    else:
        r = np.ones(k.size)
    # row (j, sub) = j * n_steps + sub: step j's sub-steps in order
    n_rows = k.size * n_steps
    sub = np.arange(n_rows, dtype=np.int64) % n_steps if n_steps > 1 else 0
    return [StepTable.langevin(np.repeat(r, n_steps), snr, t=np.repeat(view.t[k], n_steps),
                               m=np.repeat(view.m[k], n_steps), sd=np.repeat(view.sd[k], n_steps),
                               interval=np.repeat(k, n_steps), sub_step=sub,
                               step=np.repeat(np.arange(k.size), n_steps))]


def _at_start(value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"corrector_at_start must be True or False; got {shown(value)}")
    return bool(value)


#: The Langevin corrector's signal-to-noise ratio when ``snr`` is not given
#: (the value of score_sde's CIFAR-10 configurations).
SNR_DEFAULT = 0.16

SNR = Option("snr", SNR_DEFAULT, lambda v: real_scalar(v, "snr", "positive"),
             "the corrector's signal-to-noise ratio (default 0.16)")
N_CORRECTOR_STEPS = Option("n_corrector_steps", 1, lambda v: integer(v, "n_corrector_steps", 1),
                           "Langevin sub-steps per predictor step (default 1)")
AT_START = Option("corrector_at_start", True, _at_start,
                  "True: a corrector at t_start too (score_sde); False: only after predictor steps", unset=True)

CORRECTOR = Method(
    "langevin", "corrector", langevin_corrector, requires=("affine",), kind="sde", deterministic=False,
    nfe_per_step=1, summary="Langevin MCMC steps x + eps s + sqrt(2 eps) z, eps = 2 r (snr |z|/|s|)^2 per row",
    paper="Song et al. 2021 (predictor-corrector sampling)", options=(SNR, N_CORRECTOR_STEPS, AT_START),
    streams=(2,))

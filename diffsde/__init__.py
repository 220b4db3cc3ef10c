"""diffsde: diffusion models as stochastic differential equations.

Simulate the DDPM and SMLD chains and their VP, VE and sub-VP SDE limits on
NumPy arrays, forward and in reverse, with a C core whose counter-based noise
makes every result reproducible and lets a chain and its SDE share one
Brownian path.

>>> import diffsde as ds
>>> vp = ds.VPSDE(beta_min=0.1, beta_max=20.0)
>>> tr = ds.forward(vp, x0, steps=1000, rng=7)          # doctest: +SKIP
"""
# First, so that an unbuilt source tree fails with instructions, not a
# circular-import message from whichever module reached _core first.
from . import _build_check  # noqa: F401  (isort: skip)
from . import analysis, datasets, fokker_planck, grids, methods, plot, training
from ._engine import RunResult, run_steps
from ._rng import standard_normal
from ._simd import get_simd_path, set_simd_path, simd_paths
from ._steptable import StepTable
from ._threads import get_num_threads, set_num_threads
from .brownian import BrownianPath
from .likelihood import log_likelihood
from .chains import DDPM, SMLD
from .scores import EmpiricalData, GaussianMixture, LinearScore
from ._frameworks import network_score
from .predictions import score_from_eps, score_from_v, score_from_velocity, score_from_x0
from .sde import EDM, VESDE, VPSDE, AffineSDE, RectifiedFlow, ReverseSDE, SubVPSDE
from .simulate import Trajectory, forward, reverse

__version__ = "0.1.0"

__all__ = [
    "AffineSDE",
    "BrownianPath",
    "DDPM",
    "EDM",
    "EmpiricalData",
    "GaussianMixture",
    "LinearScore",
    "RectifiedFlow",
    "ReverseSDE",
    "RunResult",
    "SMLD",
    "StepTable",
    "SubVPSDE",
    "Trajectory",
    "VESDE",
    "VPSDE",
    "analysis",
    "datasets",
    "fokker_planck",
    "grids",
    "methods",
    "plot",
    "forward",
    "get_num_threads",
    "get_simd_path",
    "log_likelihood",
    "network_score",
    "reverse",
    "run_steps",
    "score_from_eps",
    "score_from_v",
    "score_from_velocity",
    "score_from_x0",
    "set_num_threads",
    "set_simd_path",
    "simd_paths",
    "standard_normal",
    "training",
]

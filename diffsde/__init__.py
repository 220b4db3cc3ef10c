"""diffsde: diffusion models as stochastic differential equations.

Simulate the DDPM and SMLD chains and their VP, VE and sub-VP SDE limits on
NumPy arrays, forward and in reverse, with a C core whose counter-based noise
makes every result reproducible and lets a chain and its SDE share one
Brownian path.

>>> import diffsde as ds
"""
from ._engine import RunResult, run_steps
from ._rng import standard_normal
from ._steptable import StepTable
from ._threads import get_num_threads, set_num_threads
from .scores import LinearScore

__version__ = "0.1.0"

__all__ = [
    "LinearScore",
    "RunResult",
    "StepTable",
    "get_num_threads",
    "run_steps",
    "set_num_threads",
    "standard_normal",
]

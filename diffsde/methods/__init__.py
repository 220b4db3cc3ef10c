"""The registry of simulation methods.

Each method is one record (:class:`Method`): its name, direction, the
builder of its step table, the capabilities it needs of a process, its
options, whether it is deterministic, its kind (SDE, ODE, chain, exact),
its theoretical order, score evaluations per step, noise streams, a summary
and its paper. :func:`diffsde.forward` and :func:`diffsde.reverse` look the
record up, check its options and build its table on the process's
:class:`GridView`; so does :func:`table`, which returns that table without
running it.

>>> import diffsde as ds
>>> ds.methods.available(ds.VPSDE())
('em', 'ode_heun', 'reverse_diffusion', 'ancestral', 'ddim')
>>> ds.methods.available(ds.DDPM.linear(10), "forward")
('chain', 'exact', 'em')
>>> ds.methods.get("ode_heun").nfe_per_step
2

A method of your own is one :func:`register` call (docs/methods.md).
"""
from . import _chain, _dpm_solver, _euler, _exact, _heun, _ksamplers, _langevin, _plms, _registry, _rk45, _unipc
from ._plan import table, view
from ._registry import (CAPABILITIES, DIRECTIONS, KINDS, Method, Option, available, get, records,  # noqa: F401
                        register, unregister)
from ._view import GridView

# Registration order is the order within each group of ``available``.
for _record in (_exact.FORWARD, _euler.FORWARD, _chain.FORWARD,
                _euler.REVERSE, _heun.REVERSE, _chain.REVERSE_DIFFUSION, _chain.ANCESTRAL, _chain.DDIM, _rk45.REVERSE,
                *_ksamplers.RECORDS, _dpm_solver.DPM_SOLVER, _unipc.UNIPC, _plms.PLMS, _langevin.CORRECTOR):
    register(_record)
del _record
_registry.mark_built_in()

# The public names are documented and shown as diffsde.methods.*
for _obj in (GridView, Method, Option, available, get, records, register, table, unregister, view):
    _obj.__module__ = __name__
del _obj

__all__ = ["GridView", "Method", "Option", "available", "get", "records", "register", "table", "unregister", "view"]

"""The registry: one record per method, and the one path from a process, a
method name and options to the StepTable a run executes.

A method says what it needs of a process by *capabilities*, never by class
(``process.capabilities``, docs/methods.md):

- "affine": f(t) and g(t)^2 of an SDE (any process of the AffineSDE
  protocol; a chain through ``chain.as_sde()``);
- "chain": a chain on its own grid (DDPM, SMLD);
- "ddpm_chain": log abar_k of a DDPM chain on the grid (DDPM; VPSDE, whose
  DDPM chain exists on any grid);
- "smld_chain": sigma_k^2 of an SMLD chain on the grid (SMLD; VESDE).
"""
import numbers
from dataclasses import dataclass

from .._validation import shown

DIRECTIONS = ("forward", "reverse", "corrector")
#: "sde" and "ode" discretize the process's SDE or probability-flow ODE,
#: "chain" steps a DDPM or SMLD chain, "exact" samples the exact transitions.
KINDS = ("sde", "ode", "chain", "exact")
CAPABILITIES = ("affine", "chain", "ddpm_chain", "smld_chain")
#: How messages describe the processes with each capability.
CAPABILITY_TEXT = {"affine": "an SDE or a chain", "chain": "a DDPM or SMLD chain",
                   "ddpm_chain": "the DDPM chain of a DDPM or VPSDE",
                   "smld_chain": "the SMLD chain of an SMLD or VESDE"}
#: Parameters of forward/reverse that are not method options.
RUN_PARAMETERS = frozenset({
    "process", "score", "x", "x0", "steps", "shape", "method", "t0", "t1", "t_start", "t_end", "ts", "rng",
    "noise", "save_every", "save_at", "dtype", "nonfinite", "out", "progress", "chunks", "corrector",
    "direction", "grid"})

_PROCESS_TYPES = ("a VPSDE, VESDE, SubVPSDE, EDM, RectifiedFlow, another AffineSDE (AffineSDE(mean, std) "
                  "or a subclass), DDPM or SMLD")


@dataclass(frozen=True)
class Option:
    """One option of a method.

    Attributes
    ----------
    name : str
        The keyword of ``forward``/``reverse``/``ds.methods.table``.
    default : object
        The method's value when the option is not given.
    check : callable
        ``check(value)`` returns the value normalized (e.g. a Python float)
        or raises TypeError/ValueError naming the option.
    doc : str
        One line for the docs.
    unset : object
        The value that means "not given" (None, or the keyword's default in
        the signature of ``reverse``, e.g. ``alpha=1.0``): any other value
        given to a method that does not take the option raises.
    requires : tuple of str
        Capabilities the option needs beyond the method's (empty: none).
    scope : str
        How messages name the processes with those capabilities
        (e.g. " on DDPM or VPSDE").
    detail : tuple of (capability, str)
        Text added to the message when the process has that capability.
    note : str
        Text after "only" in the message (e.g. " (the alpha-family)").
    """

    name: str
    default: object
    check: object
    doc: str = ""
    unset: object = None
    requires: tuple = ()
    scope: str = ""
    detail: tuple = ()
    note: str = ""


@dataclass(frozen=True)
class Method:
    """One simulation method: what it needs, what it takes, what it is.

    Attributes
    ----------
    name : str
        The ``method=`` (or ``corrector=``) value.
    direction : {"forward", "reverse", "corrector"}
    build : callable
        ``build(view, **options)`` returns the method's StepTable on a
        :class:`GridView` (increasing grid for forward methods; reverse and
        corrector tables step down it). A corrector returns a list of
        StepTables, one per table to interleave after (or before) the
        predictor's.
    requires : tuple of str
        Capabilities, any one of which makes the method available.
    kind : {"sde", "ode", "chain", "exact"}
    deterministic : bool
        With the default options (``em`` with alpha = 0 and ``ddim`` with
        eta > 0 change it).
    nfe_per_step : int
        Score evaluations per step (per sub-step for a corrector).
    summary, paper : str
        One line each, for the docs.
    options : tuple of Option
    strong_order, weak_order : float or None
        SDE methods: global orders in the step for smooth problems.
    order : float or None
        ODE methods (and deterministic chain methods): the global order on
        every grid the method accepts (a method that does better on special
        grids, e.g. ``plms`` with order 4 on equal sigma steps, says so in
        its docstring and summary).
    streams : tuple of int
        The noise streams the method draws from (0: step noise; 2 + m:
        corrector sub-step m; docs/conventions.md).
    adaptive : bool
        The steps are chosen while the method runs (``rk45``): it has no
        fixed step table, so ``ds.methods.table`` and the exact output law
        do not apply.
    default_on : {"sde", "chain", None}
        The method is the default for SDEs or for chains.
    """

    name: str
    direction: str
    build: object
    requires: tuple
    kind: str
    deterministic: bool
    nfe_per_step: int
    summary: str
    paper: str
    options: tuple = ()
    strong_order: object = None
    weak_order: object = None
    order: object = None
    streams: tuple = (0,)
    default_on: object = None
    adaptive: bool = False

    def applies_to(self, process):
        """True when ``process`` has one of the capabilities the method needs."""
        return bool(set(self.requires) & capabilities(process))

    def option(self, name):
        """The Option named ``name``, or None."""
        return next((opt for opt in self.options if opt.name == name), None)


_REGISTRY = {}  # (direction, name) -> Method, in registration order
_BUILT_IN = set()  # (direction, name) of the package's own methods


def capabilities(process):
    """``process.capabilities``, or TypeError for something that is no process."""
    caps = getattr(process, "capabilities", None)
    if not isinstance(caps, frozenset) or not callable(getattr(process, "grid_view", None)):
        raise TypeError(f"process must be {_PROCESS_TYPES}; got {type(process).__name__}")
    return caps


def _check_direction(direction):
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(map(repr, DIRECTIONS))}; got {shown(direction)}")


def _nature(caps):
    return "chain" if "chain" in caps else "sde"


def available(process, direction="reverse"):
    """The methods that run on ``process``, default first.

    Parameters
    ----------
    process : AffineSDE (any) or chain
    direction : {"reverse", "forward", "corrector"}

    Returns
    -------
    tuple of str
        The default first; then the methods of the process's own kind (the
        chain methods on a chain, the SDE, ODE and exact methods on an SDE);
        then the rest; each group in registration order.
    """
    caps = capabilities(process)
    _check_direction(direction)
    nature = _nature(caps)
    records = [rec for (d, _), rec in _REGISTRY.items() if d == direction and set(rec.requires) & caps]

    def rank(rec):
        native = (rec.kind == "chain") == (nature == "chain")
        return (rec.default_on != nature, not native)

    return tuple(rec.name for rec in sorted(records, key=rank))  # sorted is stable


def get(name, direction="reverse"):
    """The record of method ``name`` (ValueError naming the known ones)."""
    _check_direction(direction)
    try:
        return _REGISTRY[(direction, name)]
    except (KeyError, TypeError):
        known = [n for d, n in _REGISTRY if d == direction]
        raise ValueError(f"no {direction} method {shown(name)}; known: {', '.join(known)}") from None


def mark_built_in():
    """Record that every method registered so far is the package's own."""
    _BUILT_IN.update(_REGISTRY)


def records(direction=None):
    """All records (of one direction), in registration order."""
    if direction is not None:
        _check_direction(direction)
    return tuple(rec for (d, _), rec in _REGISTRY.items() if direction is None or d == direction)


def resolve(process, method, direction):
    """The record ``method`` names for ``process`` (None: the default);
    ValueError listing the valid ones when it does not apply."""
    valid = available(process, direction)
    if method is None:
        return _REGISTRY[(direction, valid[0])]
    if isinstance(method, str) and method in valid:
        return _REGISTRY[(direction, method)]
    where = " in reverse" if direction == "reverse" else ""
    why = ""
    rec = _REGISTRY.get((direction, method)) if isinstance(method, str) else None
    if rec is not None and rec.kind == "chain" and direction == "reverse":
        chain = [r.name for r in records("reverse") if r.kind == "chain"]
        why = (f" (the chain methods {', '.join(chain[:-1])} and {chain[-1]} run on the DDPM or SMLD chain of a "
               f"VPSDE or VESDE only; {method!r} needs "
               f"{' or '.join(CAPABILITY_TEXT.get(c, c) for c in rec.requires)})") if len(chain) > 1 else ""
    raise ValueError(f"method {shown(method)} is not available for {type(process).__name__}{where}{why}; "
                     f"valid: {', '.join(valid)}")


def _known_options(direction):
    found = {}
    for rec in records(direction) + (records("corrector") if direction == "reverse" else ()):
        for opt in rec.options:
            found.setdefault(opt.name, opt)
    return found


def _takers(name, direction):
    names = [rec.name for rec in records(direction) if rec.option(name) is not None]
    return "method=" + " or ".join(repr(n) for n in names)


def check_options(record, process, given, direction=None):
    """The options ``record`` runs with: ``given`` checked (an option the
    method does not take raises, naming the method and the process), the
    rest at the method's defaults."""
    direction = direction or record.direction
    caps = capabilities(process)
    known = _known_options(direction)
    name_of_process = type(process).__name__
    out = {}
    for name, value in given.items():
        opt = record.option(name) or known.get(name)
        if opt is None:
            raise TypeError(f"unexpected option {name!r} for the {direction} methods; they take: "
                            f"{', '.join(sorted(known)) or 'none'}")
        if value is None and opt.unset is None:
            continue
        own = record.option(name)
        try:
            value = opt.check(value)
        except (TypeError, ValueError):
            if own is not None:
                raise
            # not even a value of the other method's option: its message would
            # name that method, so say instead that this one takes no such option
        if _same(value, opt.unset):
            continue
        if own is None or (own.requires and not set(own.requires) & caps):
            scope_opt = own or opt
            detail = "".join(text for cap, text in scope_opt.detail if cap in caps)
            raise ValueError(f"{name}={shown(value)} applies to {_takers(name, direction)}{scope_opt.scope} "
                             f"only{scope_opt.note}; got method={record.name!r} on {name_of_process}{detail}")
        out[name] = value
    for opt in record.options:
        out.setdefault(opt.name, opt.default)
    return out


def _same(value, unset):
    """Is a checked value the option's "not given" value?"""
    if unset is None:
        return value is None
    return type(value) is type(unset) and value == unset


def register(record):
    """Add a user's own method to the registry (docs/methods.md has an
    example). The record is checked: a known direction and kind, a name not
    taken in that direction, a callable builder, known capabilities, Options
    with distinct names that are not parameters of the run, and no second
    default. Returns the record."""
    if not isinstance(record, Method):
        raise TypeError(f"register takes a diffsde.methods.Method; got {type(record).__name__}")
    if not isinstance(record.name, str) or not record.name.isidentifier():
        raise ValueError(f"a method's name must be an identifier string; got {shown(record.name)}")
    _check_direction(record.direction)
    if (record.direction, record.name) in _REGISTRY:
        raise ValueError(f"a {record.direction} method {record.name!r} is registered already")
    if not callable(record.build):
        raise TypeError(f"build of method {record.name!r} must be callable as build(view, **options); "
                        f"got {shown(record.build)}")
    if record.kind not in KINDS:
        raise ValueError(f"kind of method {record.name!r} must be one of {', '.join(map(repr, KINDS))}; "
                         f"got {shown(record.kind)}")
    if not isinstance(record.requires, tuple) or not record.requires \
            or any(c not in CAPABILITIES for c in record.requires):
        raise ValueError(f"requires of method {record.name!r} must be a non-empty tuple of capabilities "
                         f"({', '.join(map(repr, CAPABILITIES))}); got {shown(record.requires)}")
    for label in ("summary", "paper"):
        if not isinstance(getattr(record, label), str):
            raise TypeError(f"{label} of method {record.name!r} must be a str; got {shown(getattr(record, label))}")
    if not isinstance(record.deterministic, bool):
        raise TypeError(f"deterministic of method {record.name!r} must be True or False; "
                        f"got {shown(record.deterministic)}")
    if isinstance(record.nfe_per_step, bool) or not isinstance(record.nfe_per_step, numbers.Integral) \
            or record.nfe_per_step < 0:
        raise ValueError(f"nfe_per_step of method {record.name!r} must be an int >= 0; "
                         f"got {shown(record.nfe_per_step)}")
    for label in ("strong_order", "weak_order", "order"):
        value = getattr(record, label)
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0):
            raise ValueError(f"{label} of method {record.name!r} must be None or a number > 0; got {shown(value)}")
    if not isinstance(record.streams, tuple) or any(
            isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 0 <= s < 2**32 for s in record.streams):
        raise ValueError(f"streams of method {record.name!r} must be a tuple of ints in [0, 2**32); "
                         f"got {shown(record.streams)}")
    names = [getattr(opt, "name", None) for opt in record.options] if isinstance(record.options, tuple) else None
    if names is None or not all(isinstance(opt, Option) for opt in record.options):
        raise TypeError(f"options of method {record.name!r} must be a tuple of diffsde.methods.Option")
    if len(set(names)) != len(names):
        raise ValueError(f"method {record.name!r} has two options of one name: {names}")
    for opt in record.options:
        if not isinstance(opt.name, str) or not opt.name.isidentifier() or opt.name in RUN_PARAMETERS:
            raise ValueError(f"option {shown(opt.name)} of method {record.name!r} must be an identifier that is "
                             f"not a parameter of the run ({', '.join(sorted(RUN_PARAMETERS))})")
        if not callable(opt.check):
            raise TypeError(f"check of option {opt.name!r} must be callable; got {shown(opt.check)}")
    if record.default_on is not None:
        if record.default_on not in ("sde", "chain"):
            raise ValueError(f"default_on of method {record.name!r} must be None, 'sde' or 'chain'; "
                             f"got {shown(record.default_on)}")
        taken = [r.name for r in records(record.direction) if r.default_on == record.default_on]
        if taken:
            raise ValueError(f"the default {record.direction} method on {record.default_on}s is "
                             f"{taken[0]!r} already; register {record.name!r} with default_on=None")
    _REGISTRY[(record.direction, record.name)] = record
    return record


def unregister(name, direction="reverse"):
    """Remove a method registered with :func:`register` (returns its record);
    the package's own methods stay."""
    record = get(name, direction)
    if (direction, name) in _BUILT_IN:
        raise ValueError(f"{direction} method {name!r} is one of diffsde's own and cannot be unregistered")
    del _REGISTRY[(direction, name)]
    return record

"""torch and JAX in diffsde: networks as NumPy scores, their divergence by
autograd, and states passed as tensors (returned as tensors).

torch and JAX are optional: this module imports neither. A callable or an
array is recognised as torch or JAX only when its package is already
imported (``sys.modules``), so NumPy inputs never pay for the check beyond
a dictionary lookup.
"""
import dataclasses
import inspect
import math
import sys

import numpy as np

from ._validation import resolve_dtype, shown, working_dtype
from ._optional import require
from .predictions import PREDICTIONS, TIMES, _check_process, _check_unit_path, _is_chain, coefficients, to_score

FRAMEWORKS = ("torch", "jax", "numpy")


def _annotation_framework(fn):
    """'torch' or 'jax' when fn's first parameter is annotated with a tensor type."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if not params or params[0].annotation is inspect.Parameter.empty:
        return None
    ann = params[0].annotation
    torch, jax = sys.modules.get("torch"), sys.modules.get("jax")
    if isinstance(ann, str):
        return {"torch.Tensor": "torch", "Tensor": "torch", "jax.Array": "jax"}.get(ann)
    if torch is not None and ann is torch.Tensor:
        return "torch"
    if jax is not None and ann is jax.Array:
        return "jax"
    return None


def framework_of(fn):
    """'torch', 'jax' or None (a NumPy callable) for a score or network."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(fn, torch.nn.Module):
        return "torch"
    if "jax" in sys.modules and (type(fn).__module__ or "").partition(".")[0] in ("jax", "jaxlib"):
        return "jax"
    if "torch" in sys.modules or "jax" in sys.modules:
        return _annotation_framework(fn)
    return None


def adapt(score, process):
    """The score a run uses: a torch or JAX callable becomes a NumPy score
    (prediction "score", time "t"); anything else is returned as it is."""
    if isinstance(score, NetworkScore):
        if score.process is not process:
            raise ValueError(f"the network score is built for {score.process!r} but the run is on {process!r}; "
                             f"build it with ds.network_score(fn, process) for the run's process")
        return score
    if not callable(score) or hasattr(score, "c_params"):
        return score
    framework = framework_of(score)
    if framework is None:
        return score
    return NetworkScore(score, process, "score", "t", framework, None)


def _torch_numpy(t):
    """A NumPy array on a CPU tensor's memory (no copy), outside autograd."""
    t = t.detach()
    try:
        return np.from_dlpack(t)
    except (BufferError, RuntimeError, TypeError):
        return t.resolve_conj().resolve_neg().numpy()


# -- backends --------------------------------------------------------------------

class _NumpyBackend:
    name = "numpy"
    autograd = False

    def __init__(self, fn, dtype):
        self.fn = fn
        self.np_dtype = None if dtype is None else np.dtype(dtype)

    def state(self, x):
        return x if self.np_dtype is None or x.dtype == self.np_dtype else x.astype(self.np_dtype)

    def times(self, values, dtype):
        return values.astype(np.int64) if values.dtype.kind in "iu" else values.astype(dtype)

    def call(self, x, t, share=True):
        xs = self.state(x)
        return np.asarray(self.fn(xs, self.times(t, xs.dtype)))


class _TorchBackend:
    name = "torch"
    autograd = True

    def __init__(self, fn, dtype):
        self.torch = torch = require("torch", "a torch network score")
        self.fn = fn
        self.device = torch.device("cpu")
        self.dtype = None
        if isinstance(fn, torch.nn.Module):
            for p in fn.parameters():
                self.device = p.device
                if p.is_floating_point():
                    self.dtype = p.dtype
                    break
        if dtype is not None:
            self.dtype = self._torch_dtype(dtype)

    def _torch_dtype(self, dtype):
        torch = self.torch
        if isinstance(dtype, torch.dtype):
            return dtype
        try:
            name = np.dtype(dtype).name
        except TypeError:
            raise TypeError(f"dtype must be a floating dtype (float32 or float64); got {shown(dtype)}") from None
        if name not in ("float32", "float64", "float16"):
            raise ValueError(f"dtype must be a floating dtype (float16, float32 or float64); got {name!r}")
        return getattr(torch, name)

    def _np(self, tdtype):
        return {self.torch.float32: np.float32, self.torch.float64: np.float64,
                self.torch.float16: np.float16}[tdtype]

    def state(self, x, share=True):
        """x as a tensor of the network's dtype: zero-copy (DLPack) when the
        dtype already matches and ``share``, else a converted copy."""
        torch = self.torch
        want = self.dtype or torch.from_numpy(np.empty(0, x.dtype)).dtype
        if share and x.dtype == self._np(want) and self.device.type == "cpu":
            try:
                return torch.from_dlpack(x)
            except (BufferError, RuntimeError, TypeError):
                pass
        # a fresh writable array: torch.from_numpy then neither warns nor aliases the caller's
        return torch.from_numpy(np.array(x, dtype=self._np(want), order="C")).to(self.device)

    def times(self, values, dtype):
        torch = self.torch
        if values.dtype.kind in "iu":
            return torch.from_numpy(values.astype(np.int64)).to(self.device)
        return torch.from_numpy(values.astype(self._np(dtype))).to(self.device)

    def _numpy(self, out, what):
        torch = self.torch
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the torch network must return a torch.Tensor; got {type(out).__name__}")
        if out.device.type != "cpu":
            out = out.cpu()
        return _torch_numpy(out)

    def call(self, x, t, share=True):
        torch = self.torch
        xt = self.state(x, share)
        version = xt._version
        with torch.inference_mode():
            out = self.fn(xt, self.times(t, xt.dtype))
        if xt._version != version:
            raise RuntimeError("the network changed its input tensor in place; it may share memory with the "
                               "sampler's state (zero-copy, DLPack), so it must not (clone it first)")
        return self._numpy(out, "network")

    def score_and_trace(self, score_of, x, t, probes):
        """(score, trace of its Jacobian per row) by reverse-mode autograd:
        exact (d backward passes) when probes is None, else Hutchinson's
        e^T J e over the probes (one vector-Jacobian product each)."""
        torch = self.torch
        want = self.dtype or torch.float64
        with torch.inference_mode(False), torch.enable_grad():
            xt = torch.tensor(np.asarray(x), dtype=want, device=self.device, requires_grad=True)
            s = score_of(xt, self.times(t, want))
            if not isinstance(s, torch.Tensor):
                raise TypeError(f"the torch network must return a torch.Tensor; got {type(s).__name__}")
            b = xt.shape[0]
            flat = s.reshape(b, -1)
            trace = torch.zeros(b, dtype=torch.float64, device=self.device)

            def vjp(cot, last):
                if not s.requires_grad:
                    return torch.zeros_like(xt)
                (g,) = torch.autograd.grad(flat, xt, grad_outputs=cot, retain_graph=not last, allow_unused=True)
                return torch.zeros_like(xt) if g is None else g

            if probes is None:
                d = flat.shape[1]
                for j in range(d):
                    cot = torch.zeros_like(flat)
                    cot[:, j] = 1
                    trace += vjp(cot, j == d - 1).reshape(b, -1)[:, j].double()
            else:
                for k, e in enumerate(probes):
                    et = torch.from_numpy(np.ascontiguousarray(e)).to(device=self.device, dtype=flat.dtype)
                    g = vjp(et, k == len(probes) - 1).reshape(b, -1)
                    trace += (g * et).sum(dim=1).double()
                trace /= len(probes)
            return (self._numpy(s, "network").astype(np.float64),
                    self._numpy(trace, "trace").astype(np.float64))


class _JaxBackend:
    name = "jax"
    autograd = True

    def __init__(self, fn, dtype):
        self.jax = jax = require("jax", "a JAX network score")
        self.jnp = jax.numpy
        self.fn = fn
        x64 = bool(jax.config.jax_enable_x64)
        if dtype is None:
            self.np_dtype = np.dtype(np.float64 if x64 else np.float32)
        else:
            self.np_dtype = np.dtype(dtype)
            if self.np_dtype.kind != "f":
                raise ValueError(f"dtype must be a floating dtype; got {self.np_dtype.name!r}")
            if self.np_dtype == np.float64 and not x64:
                raise ValueError("dtype float64 needs JAX's 64-bit mode: jax.config.update('jax_enable_x64', True) "
                                 "before building the score (without it JAX computes in float32)")

    def state(self, x):
        return self.jnp.asarray(x.astype(self.np_dtype, copy=False))

    def times(self, values, dtype=None):
        if values.dtype.kind in "iu":
            return self.jnp.asarray(values.astype(np.int64 if self.np_dtype == np.float64 else np.int32))
        return self.jnp.asarray(values.astype(self.np_dtype))

    def _numpy(self, out):
        if not isinstance(out, self.jax.Array):
            raise TypeError(f"the JAX network must return a jax.Array; got {type(out).__name__}")
        return np.asarray(out)

    def call(self, x, t, share=True):
        return self._numpy(self.fn(self.state(x), self.times(t)))

    def score_and_trace(self, score_of, x, t, probes):
        jnp = self.jnp
        xj = self.state(np.asarray(x))
        tj = self.times(t)
        s, pullback = self.jax.vjp(lambda v: score_of(v, tj), xj)
        b = xj.shape[0]
        flat_shape = (b, math.prod(xj.shape[1:]))
        trace = np.zeros(b)
        if probes is None:
            for j in range(flat_shape[1]):
                cot = jnp.zeros(flat_shape, dtype=s.dtype).at[:, j].set(1).reshape(s.shape)
                (g,) = pullback(cot)
                trace += np.asarray(g.reshape(flat_shape)[:, j], dtype=np.float64)
        else:
            for e in probes:
                ej = jnp.asarray(np.asarray(e).astype(self.np_dtype)).reshape(s.shape)
                (g,) = pullback(ej)
                trace += np.asarray(jnp.sum((g * ej).reshape(flat_shape), axis=1), dtype=np.float64)
            trace /= len(probes)
        return self._numpy(s).astype(np.float64), trace


_BACKENDS = {"numpy": _NumpyBackend, "torch": _TorchBackend, "jax": _JaxBackend}


class NetworkScore:
    """A NumPy score around a network: made by :func:`diffsde.network_score`."""

    def __init__(self, fn, process, prediction="eps", time="t", framework=None, dtype=None):
        if not callable(fn):
            raise TypeError(f"fn must be a callable network fn(x, time); got {shown(fn)}")
        self.process = _check_process(process)
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(map(repr, PREDICTIONS))}; got {shown(prediction)}")
        if not (callable(time) or (isinstance(time, str) and time in TIMES)):
            raise ValueError(f"time must be one of {', '.join(map(repr, TIMES))} or a callable time(t); "
                             f"got {shown(time)}")
        chain = _is_chain(process)
        if prediction == "v":
            _check_unit_path(process, "prediction='v'")
        if prediction == "velocity" and chain:
            coefficients(process, 0.0, derivatives=True)  # raises, naming the chain
        if time == "index" and not chain:
            raise ValueError(f"time='index' needs a DDPM or SMLD chain (grid index i is network timestep i - 1); "
                             f"{process!r} has continuous time: pass time='t' or a callable, e.g. "
                             f"time=lambda t: 999 * t")
        if time == "sigma_score_sde" and not (hasattr(process, "sigmas") or hasattr(process, "sigma")):
            raise ValueError(f"time='sigma_score_sde' is the VE schedule's sigma(t) (score_sde's NCSN "
                             f"conditioning); {process!r} is not a VESDE or SMLD chain: use time='sigma' (s/m)")
        if framework is None:
            framework = framework_of(fn) or "numpy"
        elif framework not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {', '.join(map(repr, FRAMEWORKS))} or None; "
                             f"got {shown(framework)}")
        self.fn, self.prediction, self.time, self.framework = fn, prediction, time, framework
        self._chain = chain
        self._cache = {}
        self.backend = _BACKENDS[framework](fn, dtype)

    # -- the network's inputs ------------------------------------------------------
    #: Times whose coefficients are kept: a sampler asks for the same grid
    #: times on every run, and computing (m, s) again costs more than a
    #: small network's forward pass.
    _CACHE_SIZE = 4096

    def _setup(self, t):
        """(m, s, m', s', input scale, time value) at the scalar time t, cached by t."""
        key = t if type(t) is float else None
        found = self._cache.get(key) if key is not None else None
        if found is None:
            found = self._compute_setup(t)
            if key is not None:
                if len(self._cache) >= self._CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = found
        return found

    def _compute_setup(self, t):
        m, s, dm, ds = coefficients(self.process, t, self.prediction == "velocity")
        if s == 0.0 and self.prediction != "score":
            raise ValueError(f"the score of a {self.prediction} prediction is undefined at t = {shown(t)} "
                             f"on {self.process!r}, where s(t) = 0")
        if self.prediction == "velocity" and m * ds - dm * s == 0.0:
            raise ValueError(f"m s' - m' s = 0 at t = {shown(t)} on {self.process!r}: a velocity does not "
                             f"determine the noise there")
        scale = 1.0
        time = self.time
        if time == "t":
            value = float(t)
        elif time == "sigma":
            if m == 0.0:
                raise ValueError(f"sigma = s/m is infinite at t = {shown(t)} on {self.process!r} (m = 0)")
            value, scale = s / m, 1.0 / m
        elif time == "sigma_score_sde":
            if self._chain:
                i = int(round(float(t) * self.process.N / self.process.T))
                value = float(self.process.sigmas[i - 1]) if i > 0 else float(self.process.sigma0)
            else:
                value = float(self.process.sigma(float(t)))
        elif time == "index":
            value = int(round(float(t) * self.process.N / self.process.T)) - 1
        else:
            value = None
        return m, s, dm, ds, scale, value

    def _time_values(self, value, t, batch):
        if value is None:  # a callable
            out = np.asarray(self.time(np.full(batch, float(t))))
            if out.dtype.kind not in "biuf":
                raise TypeError(f"time(t) must return real numbers; got dtype {out.dtype}")
            return np.broadcast_to(out, (batch,)).copy()
        return np.full(batch, value, dtype=np.int64 if isinstance(value, int) else np.float64)

    def __call__(self, x, t):
        m, s, dm, ds, scale, value = self._setup(t)
        x = np.asarray(x)
        if x.ndim == 0:
            raise ValueError("x must have a batch axis")
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        net_x = x if scale == 1.0 else x * scale
        # zero-copy only for the sampler's read-only state views and our own
        # temporaries: a caller's writable array is copied, so that no
        # network can change it
        share = net_x is not x or not x.flags.writeable
        pred = self.backend.call(net_x, self._time_values(value, t, x.shape[0]), share)
        if pred.shape != x.shape:
            raise ValueError(f"the network returned shape {pred.shape} at t = {shown(t)}; expected {x.shape}, "
                             f"the shape of x")
        out = to_score(self.prediction, pred.astype(np.float64), x, m, s, dm, ds)
        return np.asarray(out, dtype=x.dtype)

    def score_and_trace(self, x, t, probes=None):
        """(score, trace of the score's Jacobian) at the scalar time t by
        autograd: exact when ``probes`` is None (one backward pass per
        coordinate), else Hutchinson's mean of e^T J e over the probes."""
        if not self.backend.autograd:
            raise ValueError("the divergence by autograd needs a torch or JAX network; this score is NumPy "
                             "(use divergence='finite_difference')")
        m, s, dm, ds, scale, value = self._setup(t)
        x = np.asarray(x, dtype=np.float64)
        kind, fn = self.prediction, self.fn

        def score_of(xt, tt):
            return to_score(kind, fn(xt if scale == 1.0 else xt * scale, tt), xt, m, s, dm, ds)

        return self.backend.score_and_trace(score_of, x, self._time_values(value, t, x.shape[0]), probes)

    def __repr__(self):
        time = self.time if isinstance(self.time, str) else getattr(self.time, "__name__", "callable")
        return (f"network_score({self.fn!r}, {self.process!r}, prediction={self.prediction!r}, "
                f"time={time!r}, framework={self.framework!r})")


def network_score(fn, process, prediction="eps", time="t", *, framework=None, dtype=None):
    r"""A score from a trained network: builds the inputs it expects and
    turns its prediction into :math:`\nabla \log p_t(x)`.

    The result is a NumPy score ``score(x, t)`` usable in
    :func:`diffsde.reverse` and :func:`diffsde.log_likelihood` (which, for a
    torch or JAX network, can take the divergence by autograd).

    Parameters
    ----------
    fn : callable fn(x, time)
        The network: a ``torch.nn.Module`` or function of torch tensors, a
        JAX function (jitted or not), or a NumPy function. ``x`` has the
        state's shape (batch, ...); ``time`` holds one value per sample,
        shape (batch,).
    process : SDE or chain
        The process the network was trained on.
    prediction : {"eps", "x0", "v", "velocity", "score"}
        What fn predicts (table of :mod:`diffsde.predictions`): the noise,
        the data (a denoiser), Salimans & Ho's v = m eps - s x0 (m^2 + s^2 = 1
        only), the flow-matching velocity u = m' x0 + s' eps, or the score.
    time : {"t", "sigma", "sigma_score_sde", "index"} or callable
        The time input and the variables the network sees:

        - ``"t"``: the process time t; fn(x, t).
        - ``"sigma"``: the noise level sigma = s/m and the scaled state
          x/m, k-diffusion's and EDM's denoiser convention D(x/m, sigma)
          (Karras et al. 2022). On a VESDE this sigma is
          s = sqrt(sigma(t)^2 - sigma(0)^2), not the schedule's sigma(t).
        - ``"sigma_score_sde"``: the schedule's own sigma(t) of a VESDE
          (sigma_min (sigma_max/sigma_min)^t, i.e. sqrt(s^2 + sigma_min^2)),
          or sigma_i of an SMLD chain: what score_sde's NCSN networks are
          conditioned on (Song et al. 2021). VE processes only.
        - ``"index"``: chains only, an integer timestep: grid index i is
          network timestep i - 1 (int64), as in diffusers' DDPM schedulers,
          whose timestep 0 is the first noise level.
        - a callable: time(t) maps an array of process times (one per
          sample) to the network's time input; fn(x, time(t)).
    framework : {"torch", "jax", "numpy"}, optional
        Default: detected from fn (a torch Module, a JAX-jitted function, or
        a first argument annotated ``torch.Tensor`` / ``jax.Array``), else
        NumPy.
    dtype : optional
        The floating dtype the network computes in. Default: a torch
        Module's parameter dtype; for JAX, float64 if ``jax_enable_x64`` is
        on and float32 otherwise; else the state's dtype. States of another
        dtype are cast to it on the way in (a float32 network on float64
        states rounds its inputs to float32) and the score is returned in
        the state's dtype. The sampler's states reach a torch network of
        their dtype zero-copy through DLPack (a caller's writable array is
        copied); the network must not change its input in place
        (RuntimeError if it does).

    Returns
    -------
    callable score(x, t)

    Notes
    -----
    Torch networks run under ``torch.inference_mode()`` (no autograd graph,
    no warnings); JAX networks on CPU arrays. The network must treat the
    rows of a batch independently (no batch statistics), as any score does.
    """
    return NetworkScore(fn, process, prediction, time, framework, dtype)


# -- states: a tensor in, a tensor out ---------------------------------------------
#
# forward, reverse, run_steps and log_likelihood take their state as a NumPy
# array, a CPU torch tensor or a CPU JAX array. The C loop runs on a
# read-only NumPy view of the tensor's memory (no copy) and the results
# (x and xs; log-densities) come back as the same type, in the run's dtype.

def array_framework(x):
    """'torch' for a torch.Tensor, 'jax' for a jax.Array, else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return "torch"
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, getattr(jax, "Array", ())):
        return "jax"
    return None


def _dtype_arg(dtype):
    """A run's ``dtype=``, with a torch dtype (torch.float32) read as NumPy's."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(dtype, torch.dtype):
        name = str(dtype).rpartition(".")[2]
        if name not in ("float32", "float64"):
            raise TypeError(f"dtype must be float32 or float64; got {dtype}")
        return np.dtype(name)
    return dtype


def _half_precision(name, what, dtype, fix):
    return TypeError(f"{name} is a {what} of dtype {dtype}; diffsde computes in float32 or float64: pass "
                     f"dtype='float32' (the state is cast and the results are float32) or {fix}")


def _read_only(a):
    view = a.view()
    view.flags.writeable = False
    return view


def _torch_state(x, name, cast):
    torch = sys.modules["torch"]
    if x.device.type != "cpu":
        raise ValueError(f"{name} is a torch tensor on device '{x.device}'; diffsde runs on the CPU: pass "
                         f"{name}.cpu() (the results come back as CPU tensors)")
    if x.layout != torch.strided:
        raise TypeError(f"{name} is a torch tensor of layout {x.layout}; diffsde needs a dense tensor: "
                        f"pass {name}.to_dense()")
    x = x.detach()
    if x.is_complex():
        raise TypeError(f"{name} is a torch tensor of dtype {x.dtype}; diffsde computes in float32 or "
                        f"float64 (bool and integer tensors become float64)")
    if x.is_floating_point() and x.dtype not in (torch.float32, torch.float64):
        if cast is None:
            raise _half_precision(name, "torch tensor", x.dtype, f"{name}.float()")
        x = x.to(getattr(torch, resolve_dtype(_dtype_arg(cast)).name))
    return _read_only(_torch_numpy(x))


def _jax_state(x, name, cast):
    jax = sys.modules["jax"]
    tracer = getattr(getattr(jax, "core", None), "Tracer", None)
    if tracer is not None and isinstance(x, tracer):
        raise TypeError(f"{name} is a traced JAX value (inside jax.jit, grad or vmap); diffsde runs its C "
                        f"loop on concrete arrays: call it outside the transformation")
    for device in x.devices():
        if device.platform != "cpu":
            raise ValueError(f"{name} is a JAX array on device '{device}'; diffsde runs on the CPU: pass "
                             f"jax.device_put({name}, jax.devices('cpu')[0]) (the results come back as "
                             f"CPU arrays)")
    a = np.asarray(x)  # on the CPU a view of the array's buffer
    low = a.dtype.name in ("float16", "bfloat16") or a.dtype.name.startswith("float8")
    if low:
        if cast is None:
            raise _half_precision(name, "JAX array", a.dtype.name, f"{name}.astype(jnp.float32)")
        a = a.astype(resolve_dtype(_dtype_arg(cast)))
    return _read_only(a)


def array_in(x, name, cast=None):
    """(a, framework): a torch tensor or JAX array ``x`` as a read-only
    NumPy view of its memory, detached from autograd (a copy only to
    ``cast`` a half-precision one), and 'torch' or 'jax'; anything else
    as it is, and None. Tensors off the CPU raise ValueError."""
    framework = array_framework(x)
    if framework == "torch":
        return _torch_state(x, name, cast), framework
    if framework == "jax":
        return _jax_state(x, name, cast), framework
    return x, None


def array_out(a, framework):
    """The NumPy array ``a``, which nothing else writes any more, as a
    tensor of ``framework`` on the same memory where the framework allows
    (torch always; JAX when the buffer is aligned for it, else a copy). For
    JAX without 64-bit mode a float64 array becomes float32 (JAX's rule)."""
    if framework is None:
        return a
    if framework == "torch":
        return sys.modules["torch"].from_numpy(a if a.flags.writeable else np.array(a))
    jax = sys.modules["jax"]
    if a.dtype == np.float64 and not bool(jax.config.jax_enable_x64):
        a = a.astype(np.float32)
    try:
        return jax.numpy.from_dlpack(a)
    except (BufferError, RuntimeError, TypeError, ValueError):
        return jax.numpy.asarray(a)


def _out_in(out):
    """A NumPy view of a torch tensor ``out``; anything else as it is."""
    framework = array_framework(out)
    if framework is None:
        return out
    if framework == "jax":
        raise TypeError("out cannot be a JAX array: JAX arrays are immutable. Leave out=None; the result "
                        "is a new JAX array")
    torch = sys.modules["torch"]
    if out.device.type != "cpu":
        raise ValueError(f"out is a torch tensor on device '{out.device}'; diffsde writes its result on the "
                         f"CPU: pass a CPU tensor, or out=None and move the result")
    if out.requires_grad:
        raise ValueError("out is a torch tensor that requires grad; diffsde writes it in place outside "
                         "autograd: pass one that does not (made under torch.no_grad() or detached)")
    if out.layout != torch.strided or out.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"out must be a dense float32 or float64 torch tensor (the run's dtype); got "
                        f"layout {out.layout}, dtype {out.dtype}")
    if any(stride == 0 and n > 1 for stride, n in zip(out.stride(), out.shape)):
        raise ValueError("out is an expanded torch tensor (several elements share one memory location); "
                         "pass a tensor with its own memory, e.g. out.contiguous()")
    return out.numpy()


class StateIO:
    """How a run's state came in (``framework``: None, 'torch' or 'jax';
    ``out``: the out= given, NumPy or torch, or None), to give its results
    back in the same form."""

    __slots__ = ("framework", "out")

    def __init__(self, framework=None, out=None):
        self.framework, self.out = framework, out

    def result(self, res):
        """A Trajectory or RunResult with ``x`` and ``xs`` in the state's
        framework (``x`` is the out= itself when one was given)."""
        if self.framework is None and self.out is None:
            return res
        if self.out is not None:
            if array_framework(self.out) == "torch":
                # the write went through NumPy: tell autograd the tensor changed
                sys.modules["torch"].autograd.graph.increment_version(self.out)
            x = self.out
        else:
            x = array_out(res.x, self.framework)
        return dataclasses.replace(res, x=x, xs=array_out(res.xs, self.framework))

    def callback(self, fn):
        """A step callback seeing the state as a tensor of the framework:
        torch, a tensor on the run's state (edits in place change the run)
        and one on the denoised estimate; JAX, copies (immutable arrays:
        the callback returns the new state). A returned tensor is read back
        into the run's state."""
        if fn is None or self.framework is None or not callable(fn):
            return fn
        if self.framework == "torch":
            torch = sys.modules["torch"]

            def tensor(a):
                return torch.from_numpy(a)

            def read_only_tensor(a):
                try:
                    return torch.from_dlpack(a)
                except (BufferError, RuntimeError, TypeError):
                    return torch.from_numpy(np.array(a))
        else:
            jnp = sys.modules["jax"].numpy
            tensor = read_only_tensor = jnp.array  # copies: the run goes on changing its buffers

        def on_step(info):
            x = tensor(info["x"])
            denoised = info["denoised"]
            new = fn(dict(info, x=x, denoised=None if denoised is None else read_only_tensor(denoised)))
            if new is None or new is x:
                return None
            return array_in(new, "the callback's state")[0]

        return on_step


def state_in(x, name, dtype=None, out=None):
    """A run's state, ``dtype=`` and ``out=`` on the NumPy side: (x, dtype,
    out, io) with x a read-only NumPy view of a tensor's memory (or as
    given: NumPy, dask, None), a torch dtype read as NumPy's, out a NumPy
    view of a torch tensor, and the :class:`StateIO` that gives the results
    back in the state's framework."""
    dtype = _dtype_arg(dtype)
    x, framework = array_in(x, name, dtype)
    if framework == "jax":
        run = working_dtype(x.dtype, dtype, name)
        if run == np.float64 and not bool(sys.modules["jax"].config.jax_enable_x64):
            why = "dtype=float64" if dtype is not None else f"{name} of dtype {x.dtype}"
            raise ValueError(f"the run computes in float64 ({why}) but JAX is in 32-bit mode, where a JAX "
                             f"array cannot hold float64: pass dtype='float32', or "
                             f"jax.config.update('jax_enable_x64', True) first")
    given = out
    return x, dtype, _out_in(out), StateIO(framework, given)

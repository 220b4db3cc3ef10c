"""SPEC 7 ``rng`` arguments -> 64-bit Philox keys, and the bare generator.

Every random number diffsde draws is normal ``j`` of ``(key, stream, k)``
(see ``csrc/rng.h``). A public call turns its ``rng`` argument into one key
with exactly one draw, so an int always gives the same key and a Generator is
advanced by one draw per call.
"""
import functools

import numpy as np

from . import _core
from ._validation import resolve_dtype, shape_tuple, shown
from ._threads import threads_for

#: Stream numbers of the counter layout, defined once in the C core
#: (csrc/step.h; docs/conventions.md): step noise, initial and prior
#: samples, corrector sub-step m (STREAM_CORRECTOR + m), the Brownian tree,
#: and further draws inside a step (STREAM_EXTRA + i).
STREAM_STEP = _core.STREAMS["step"]
STREAM_INITIAL = _core.STREAMS["initial"]
STREAM_CORRECTOR = _core.STREAMS["corrector"]
STREAM_BROWNIAN = _core.STREAMS["brownian"]
STREAM_EXTRA = _core.STREAMS["extra"]


def key_from_rng(rng):
    """Return the 64-bit Philox key for a SPEC 7 ``rng`` argument.

    ``key = np.random.default_rng(rng).integers(0, 2**64, dtype=np.uint64)``:
    one draw, so ``rng=7`` always gives the same key and a ``Generator`` is
    advanced.
    """
    if type(rng) is int:
        return _key_from_int(rng)
    return _key_from_seed(rng)


@functools.lru_cache(maxsize=4096)
def _key_from_int(seed):
    """Seeding a Generator from an int costs ~15 us; the key is a pure function
    of the int, so it is remembered."""
    return _key_from_seed(seed)


def _key_from_seed(rng):
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng < 0:
        # NumPy's SeedSequence takes entropy >= 0 only (SPEC 7 passes ints to it)
        raise ValueError(f"rng must be a non-negative int seed (or None, a SeedSequence, a BitGenerator "
                         f"or a numpy.random.Generator); got {int(rng)}: negative seeds are not allowed")
    try:
        gen = np.random.default_rng(rng)
    except ValueError as exc:
        # e.g. a sequence holding a negative int
        raise ValueError(f"rng={shown(rng)} is not a valid seed: seeds are ints >= 0 or sequences of "
                         f"them ({exc})") from exc
    except TypeError as exc:
        raise TypeError(
            f"rng must be None, an int, a SeedSequence, a BitGenerator or a "
            f"numpy.random.Generator; got {shown(rng)}"
        ) from exc
    return int(gen.integers(0, 2**64, dtype=np.uint64))


def fill_normal(out, key, stream=STREAM_INITIAL, k=0, j0=0):
    """Fill the C-contiguous float array ``out`` with normals ``j0 + i``."""
    _core.fill_normal(out, key, stream, k, j0, threads_for(out.size))
    return out


def standard_normal(shape=None, rng=None, dtype=np.float64, out=None):
    """Standard normal samples from diffsde's counter-based generator.

    Element ``j`` (C order) of the result is ``z_j``, the normal ``j`` of
    ``(key, stream=1, k=0)``: Philox4x32-10 (Salmon et al. 2011) followed by
    Box-Muller (layout: docs/conventions.md),

    .. math:: z = \\sqrt{-2 \\log u_1} \\cos(2 \\pi u_2)

    (or the sine for the second of a pair), with 53-bit uniforms for float64
    and 32-bit uniforms for float32. The largest ``|z|`` is 8.5717 in float64
    and 6.6604 in float32. float32 and float64 samples for the same key differ.
    A prefix of the flattened result does not depend on ``shape``.

    Parameters
    ----------
    shape : int or tuple of ints, optional
        Output shape; may be omitted when ``out`` is given.
    rng : None, int, SeedSequence, BitGenerator or Generator
        SPEC 7 seed; one 64-bit key is drawn from it.
    dtype : float32 or float64
    out : ndarray, optional
        Receives the samples; its shape and dtype must match.

    Returns
    -------
    ndarray
    """
    dtype = resolve_dtype(dtype, "dtype")
    if shape is None:
        if out is None:
            raise TypeError("standard_normal needs shape or out")
        shape = out.shape
    shape = shape_tuple(shape, "shape")
    if out is not None:
        if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype:
            raise ValueError(
                f"out must be an ndarray of shape {shape} and dtype {dtype}; got "
                f"{getattr(out, 'shape', type(out))} {getattr(out, 'dtype', '')}"
            )
        if not out.flags.writeable:
            raise ValueError("out is read-only")
    # The key is drawn only once the arguments are known good, so a failed
    # call does not advance a Generator.
    key = key_from_rng(rng)
    direct = out is not None and out.flags.c_contiguous and out.flags.aligned and out.dtype.isnative
    result = out if direct else np.empty(shape, dtype=dtype)
    fill_normal(result, key)
    if out is None or direct:
        return result
    out[...] = result
    return out


def fill_uniform(out, key, stream=STREAM_INITIAL, k=0, j0=0):
    """Fill the C-contiguous float64 array ``out`` with uniforms j0 + i in [0, 1)."""
    _core.fill_uniform(out, key, stream, k, j0)
    return out

r"""One Brownian path, refinable to any dyadic resolution without storing it.

The path W on the unit interval is built by the Levy (Brownian-bridge)
construction: W(1) = z_0, and each level l >= 1 adds the midpoints

.. math:: W\left(\tfrac{2k+1}{2^l}\right) = \tfrac12\left[W\left(\tfrac{k}{2^{l-1}}\right)
          + W\left(\tfrac{k+1}{2^{l-1}}\right)\right] + 2^{-(l+1)/2} z_{l,k},

the conditional law of the midpoint given its neighbours. Every z_{l,k} is a
counter-based normal (stream 2^31, k = level, j = index * size + element;
csrc/rng.h), so the points of level l never change when a finer level is
asked for, and any run with 2^l <= 2^depth steps sees exact increments of
the same path in O(batch x 2^l) work.
"""
import math

import numpy as np

from ._rng import fill_normal, key_from_rng
from ._validation import integer, real_scalar, shape_tuple

STREAM_BROWNIAN = 2**31


class BrownianPath:
    """A Brownian path for a batch of shape ``shape``, resolvable to 2^depth steps.

    Parameters
    ----------
    shape : tuple of int
        The state shape ``(batch, *event)``; one independent path per element.
    depth : int in [0, 32]
        The finest level: runs may use 2^l steps for l <= depth.
    rng : SPEC 7 seed
        One 64-bit key is drawn; the path is a pure function of it.

    The path is scale-free: on [t0, t0 + L] its increments over 2^l equal
    steps are sqrt(L) times those on the unit interval, so :meth:`normals`
    (increments divided by sqrt(h)) serve any interval.
    """

    def __init__(self, shape, depth, rng=None):
        shape = shape_tuple(shape, "shape")
        if not shape:
            raise ValueError("shape must be (batch, *event) with non-negative sizes; got ()")
        depth = integer(depth, "depth", 0, 32)
        self.shape = shape
        self.size = math.prod(shape)
        if self.size and (self.size << int(depth)) >= 2**64:
            raise ValueError(f"2**depth x size = 2**{depth} x {self.size} exceeds the 2**64 counters")
        self.depth = int(depth)
        self.key = key_from_rng(rng)

    def _level_normals(self, level):
        count = 1 if level == 0 else 2 ** (level - 1)
        return fill_normal(np.empty((count, self.size)), self.key, STREAM_BROWNIAN, level)

    def values(self, level):
        """W(j / 2^level), j = 0..2^level, on the unit interval: shape ``(2^level + 1, *shape)``."""
        level = self._check_level(level)
        w = np.zeros((2, self.size))
        w[1] = self._level_normals(0)[0]
        for lev in range(1, level + 1):
            mid = 0.5 * (w[:-1] + w[1:]) + 2.0 ** (-(lev + 1) / 2) * self._level_normals(lev)
            finer = np.empty((2 * w.shape[0] - 1, self.size))
            finer[0::2] = w
            finer[1::2] = mid
            w = finer
        return w.reshape((-1,) + self.shape)

    def increments(self, steps, T=1.0):
        """W(t_{k+1}) - W(t_k) on ``steps`` = 2^l equal steps of [0, T]: ``(steps, *shape)``.

        ``T`` must be finite and > 0: the increments scale by sqrt(T).
        """
        T = real_scalar(T, "T", "positive")
        return math.sqrt(T) * np.diff(self.values(self.level_of(steps)), axis=0)

    def normals(self, steps):
        """Increments divided by sqrt(h): independent N(0, 1), shape ``(steps, *shape)``."""
        return np.diff(self.values(self.level_of(steps)), axis=0) * math.sqrt(steps)

    def level_of(self, steps):
        """l with 2^l = steps, or ValueError."""
        steps = integer(steps, "steps", 1)
        if steps & (steps - 1):
            raise ValueError(f"a BrownianPath serves power-of-two step counts; got steps={steps!r}")
        return self._check_level(int(steps).bit_length() - 1)

    def _check_level(self, level):
        if not 0 <= level <= self.depth:
            raise ValueError(f"level {level} is finer than this path's depth {self.depth} "
                             f"(2**{self.depth} steps at most)")
        return level

    def __repr__(self):
        return f"BrownianPath(shape={self.shape}, depth={self.depth})"

"""Toy data for diffusion experiments, reproducible from ``rng``.

The Gaussian-mixture sets are exact :class:`~diffsde.GaussianMixture`
objects (with exact scores at every t); the others are point clouds for
:class:`~diffsde.EmpiricalData` or for training. Every sample is drawn from
one 64-bit key (SPEC 7 ``rng``): uniforms and normals of stream 1.
"""
import numpy as np

from ._rng import STREAM_INITIAL, fill_normal, fill_uniform, key_from_rng
from ._validation import integer, real_scalar
from .scores import GaussianMixture


def _count(n):
    return integer(n, "n", 0)


def _draws(n, rng, n_uniform, n_normal):
    key = key_from_rng(rng)
    u = fill_uniform(np.empty((n, n_uniform)), key, STREAM_INITIAL, 1)
    z = fill_normal(np.empty((n, n_normal)), key, STREAM_INITIAL, 0)
    return u, z


def eight_gaussians(radius=2.0, std=0.1):
    """Eight equal isotropic Gaussians on a circle: the classic 2-D test set.

    Means ``radius (cos 2 pi k/8, sin 2 pi k/8)``, k = 0..7 (radius >= 0),
    each with covariance ``std^2 I`` (std > 0).
    """
    radius = real_scalar(radius, "radius", "non_negative")
    std = real_scalar(std, "std", "positive")
    angles = np.arange(8) * (2 * np.pi / 8)
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return GaussianMixture(np.full(8, 1 / 8), means, np.full(8, std**2))


def bimodal_1d(separation=4.0, std=0.5, weight=0.5):
    """Two Gaussians at +-separation/2 in one dimension (weights weight, 1 - weight).

    separation >= 0, std > 0 (both components) and weight in [0, 1].
    """
    separation = real_scalar(separation, "separation", "non_negative")
    std = real_scalar(std, "std", "positive")
    weight = real_scalar(weight, "weight", "probability")
    return GaussianMixture([weight, 1 - weight], [[-separation / 2], [separation / 2]],
                           np.full(2, std**2))


def two_moons(n, rng=None, noise=0.05):
    """Two interleaved half circles in 2-D, shape (n, 2), with Gaussian noise
    of std ``noise`` >= 0."""
    n = _count(n)
    noise = real_scalar(noise, "noise", "non_negative")
    u, z = _draws(n, rng, 2, 2)
    upper = u[:, 0] < 0.5
    theta = np.pi * u[:, 1]
    x = np.where(upper, np.cos(theta), 1 - np.cos(theta))
    y = np.where(upper, np.sin(theta), 0.5 - np.sin(theta))
    return np.stack([x, y], axis=1) + noise * z


def swiss_roll(n, rng=None, noise=0.1):
    """The 2-D swiss roll r(t) (cos t, sin t), t in [1.5 pi, 4.5 pi], scaled to
    about [-1, 1]^2, with Gaussian noise of std ``noise`` >= 0; shape (n, 2)."""
    n = _count(n)
    noise = real_scalar(noise, "noise", "non_negative")
    u, z = _draws(n, rng, 1, 2)
    t = 1.5 * np.pi * (1 + 2 * u[:, 0])
    return np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (4.5 * np.pi) + noise * z


def checkerboard(n, rng=None, squares=4, size=4.0):
    """Uniform points on the dark squares of a squares x squares board on
    [-size/2, size/2]^2 (size > 0); shape (n, 2)."""
    n = _count(n)
    squares = integer(squares, "squares", 2)
    size = real_scalar(size, "size", "positive")
    u, _ = _draws(n, rng, 3, 1)
    dark = [(i, j) for i in range(squares) for j in range(squares) if (i + j) % 2 == 0]
    cell = np.minimum((u[:, 0] * len(dark)).astype(int), len(dark) - 1)
    ij = np.array(dark)[cell]
    width = size / squares
    return (ij + u[:, 1:]) * width - size / 2

"""Small statistical helpers for tests: tolerances from sample sizes."""
import numpy as np

Z = 5.0  # standard errors allowed


def assert_mean(sample, mean, std, z=Z, axis=0):
    """Sample mean within z standard errors of `mean` (std the true std)."""
    n = np.shape(sample)[axis]
    err = np.abs(np.mean(sample, axis=axis) - mean)
    assert np.all(err <= z * np.asarray(std) / np.sqrt(n)), (err, z * np.asarray(std) / np.sqrt(n))


def assert_variance(sample, var, z=Z, axis=0):
    """Sample variance within z standard errors (Gaussian: var sqrt(2/n))."""
    n = np.shape(sample)[axis]
    err = np.abs(np.var(sample, axis=axis) - var)
    assert np.all(err <= z * np.asarray(var) * np.sqrt(2.0 / n)), (err, z * np.asarray(var) * np.sqrt(2.0 / n))


def fitted_slope(n, err):
    """Slope of log(err) against log(n)."""
    return np.polyfit(np.log(n), np.log(err), 1)[0]


def sliced_wasserstein(x, y, n_projections=64, seed=0):
    """Sliced W2 between equal-size samples: the RMS over random directions
    of the 1-D W2 between sorted projections."""
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((n_projections, x.shape[1]))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    px, py = np.sort(x @ dirs.T, axis=0), np.sort(y @ dirs.T, axis=0)
    return np.sqrt(np.mean((px - py) ** 2))

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

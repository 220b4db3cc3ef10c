"""Exact "networks" for the learned-score tests: the score, denoiser and
posterior of a Gaussian mixture, written once for NumPy, torch and JAX.

For data sum_k w_k N(mu_k, Sigma_k) and x_t = m x_0 + s z, the marginal is
sum_k w_k N(m mu_k, C_k) with C_k = m^2 Sigma_k + s^2 I, so with the
responsibilities r_k(x) of the marginal's components

    score(x)       = -sum_k r_k C_k^{-1} (x - m mu_k)
    E[x_0 | x_t=x] =  sum_k r_k (mu_k + m Sigma_k C_k^{-1} (x - m mu_k))

(the second is the Gaussian posterior mean within each component, written
without Tweedie's formula, so a test comparing the two checks it).
"""
import numpy as np

#: A 2-D mixture with full, unequal covariances: anisotropy and correlation
#: make a wrong sign or a transposed matrix visible.
WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[1.0, -0.5], [-1.5, 1.0], [0.5, 2.0]])
COVS = np.array([[[0.30, 0.10], [0.10, 0.20]],
                 [[0.15, -0.05], [-0.05, 0.40]],
                 [[0.25, 0.00], [0.00, 0.10]]])


def _parts(m, s, weights=WEIGHTS, means=MEANS, covs=COVS):
    d = means.shape[1]
    C = m * m * covs + s * s * np.eye(d)
    Cinv = np.linalg.inv(C)
    logdet = np.linalg.slogdet(C)[1]
    const = np.log(weights) - 0.5 * logdet - 0.5 * d * np.log(2 * np.pi)
    return Cinv, const


def _namespace(lib):
    if lib == "numpy":
        def softmax(a):
            a = a - a.max(axis=1, keepdims=True)
            e = np.exp(a)
            return e / e.sum(axis=1, keepdims=True)
        return np.asarray, softmax, np.einsum
    if lib == "torch":
        import torch
        return (lambda a, like: torch.as_tensor(a, dtype=like.dtype)), (lambda a: torch.softmax(a, dim=1)), torch.einsum
    import jax
    import jax.numpy as jnp
    return (lambda a, like: jnp.asarray(a, dtype=like.dtype)), (lambda a: jax.nn.softmax(a, axis=1)), jnp.einsum


def mixture(x, m, s, lib="numpy", what="score"):
    """The mixture's exact score ("score") or posterior mean E[x_0|x] ("x0")
    at x of shape (batch, d), in the array library ``lib``."""
    Cinv, const = _parts(m, s)
    asarray, softmax, einsum = _namespace(lib)
    if lib == "numpy":
        conv = lambda a: np.asarray(a)  # noqa: E731
    else:
        conv = lambda a: asarray(a, x)  # noqa: E731
    centred = x[:, None, :] - conv(m * MEANS)[None]             # (b, K, d)
    solved = einsum("kij,bkj->bki", conv(Cinv), centred)       # C_k^{-1}(x - m mu_k)
    logp = conv(const)[None] - 0.5 * (centred * solved).sum(2)  # (b, K)
    r = softmax(logp)
    if what == "score":
        return -(r[:, :, None] * solved).sum(1)
    post = conv(MEANS)[None] + einsum("kij,bkj->bki", conv(m * COVS), solved)
    return (r[:, :, None] * post).sum(1)


def data():
    import diffsde as ds

    return ds.GaussianMixture(WEIGHTS, MEANS, COVS)


def coefficients(process, t):
    m, s = process.marginal_coefficients(t)
    return float(m), float(s)

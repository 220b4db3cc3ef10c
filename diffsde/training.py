r"""Denoising score matching for small networks on the built-in datasets.

:func:`train_dsm` fits a noise-prediction network :math:`\hat\varepsilon(x, t)`
by minimising the denoising score-matching loss of Ho et al. (2020, eq. 14)
and Song et al. (2021, eq. 7) in its noise-prediction form,

.. math::

    L(\theta) = E_{t \sim U(t_{min}, T)}\, E_{x_0, \varepsilon}
        \big|\hat\varepsilon_\theta(m(t)\, x_0 + s(t)\, \varepsilon, t) - \varepsilon\big|^2,

whose minimiser is :math:`E[\varepsilon \mid x_t] = -s(t) \nabla \log p_t`
(Vincent 2011), so ``ds.network_score(net, process, prediction="eps")`` is
the learned score. The network is a small MLP (:func:`mlp`) of (x, t) with
Fourier features of t, trained with Adam in torch on the CPU.

:func:`save_mlp` writes its weights to an ``.npz``; :func:`load_mlp` reads
them back as a NumPy function (no torch needed to sample with it) or, with
``framework="torch"``, as the torch module.
"""
import numpy as np

from ._validation import integer, real_scalar, shown
from ._optional import require
from .scores import EmpiricalData, GaussianMixture
from .sde import SDE


def _features(x, t, frequencies, lib):
    """[x, t, sin(pi k t), cos(pi k t) for k = 1..frequencies] per row."""
    k = lib.arange(1, frequencies + 1, dtype=x.dtype) if lib is np else lib.arange(1, frequencies + 1).to(x.dtype)
    angle = np.pi * t[:, None] * k[None, :]
    return lib.concatenate([x, t[:, None], lib.sin(angle), lib.cos(angle)], 1) if lib is np else \
        lib.cat([x, t[:, None], lib.sin(angle), lib.cos(angle)], 1)


def mlp(d, hidden=128, frequencies=4, dtype=None):
    """A torch MLP eps(x, t): d + 1 + 2 * frequencies inputs, two hidden
    SiLU layers of ``hidden`` units, d outputs; t has one value per row."""
    d = integer(d, "d", 1)
    hidden = integer(hidden, "hidden", 1)
    frequencies = integer(frequencies, "frequencies", 0)
    torch = require("torch", "diffsde.training")

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.d, self.hidden, self.frequencies = d, hidden, frequencies
            self.layers = torch.nn.Sequential(
                torch.nn.Linear(d + 1 + 2 * frequencies, hidden), torch.nn.SiLU(),
                torch.nn.Linear(hidden, hidden), torch.nn.SiLU(),
                torch.nn.Linear(hidden, d))

        def forward(self, x, t):
            return self.layers(_features(x, t.to(x.dtype), self.frequencies, torch))

    net = MLP()
    return net.to(dtype) if dtype is not None else net


def _sampler(data):
    if isinstance(data, GaussianMixture):
        return lambda n, rng: np.asarray(data.sample(n, rng=rng)).reshape(n, -1)
    if isinstance(data, EmpiricalData):
        data = data.points
    if callable(data):
        return lambda n, rng: np.asarray(data(n, rng=rng), dtype=np.float64).reshape(n, -1)
    points = np.asarray(data, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] == 0:
        raise ValueError(f"data must be a GaussianMixture, EmpiricalData, a sampler f(n, rng) or points of "
                         f"shape (n, d); got {shown(data)}")
    return lambda n, rng: points[np.random.default_rng(rng).integers(0, points.shape[0], n)]


def train_dsm(data, process, *, net=None, steps=3000, batch=512, lr=2e-3, t_min=1e-3, rng=0, threads=1):
    r"""Fit a noise-prediction network to ``data`` under ``process`` by
    denoising score matching (module docstring).

    Parameters
    ----------
    data : GaussianMixture, EmpiricalData, array (n, d) or callable f(n, rng)
        A built-in dataset (``ds.datasets.eight_gaussians()``), points, or a
        sampler such as ``ds.datasets.two_moons``.
    process : SDE
        Gives (m, s) of x_t = m x_0 + s eps.
    net : torch.nn.Module, optional
        eps(x, t) with one t per row; default ``mlp(d)``.
    steps, batch : int
        Adam steps and samples per step (fresh data, times and noise each step).
    lr : float > 0
        Adam's learning rate, decayed by a cosine to 0 over the steps.
    t_min : float in [0, T)
        Times are uniform on [t_min, T] (s(0) = 0 would ask eps of noise-free data).
    rng : int
        Seeds NumPy's draws of data, times and noise, and torch's initialisation.
    threads : int or None
        torch's intra-op threads while training (restored afterwards). A
        small MLP gains nothing from more than one, and on a busy machine
        torch's spinning threads made 200 steps take 26 s with 2 threads
        against 1.2 s with 1; None keeps torch's setting.

    Returns
    -------
    (net, losses)
        The trained module (in eval mode) and the loss of every step.
    """
    if not isinstance(process, SDE):
        raise TypeError(f"process must be an SDE; got {type(process).__name__}")
    steps = integer(steps, "steps", 1)
    batch = integer(batch, "batch", 1)
    lr = real_scalar(lr, "lr", "positive")
    t_min = real_scalar(t_min, "t_min", "non_negative")
    if not t_min < process.T:
        raise ValueError(f"t_min must lie in [0, T) = [0, {process.T:g}); got {t_min!r}")
    sample = _sampler(data)
    torch = require("torch", "diffsde.training.train_dsm")
    gen = np.random.default_rng(rng)
    d = sample(1, int(gen.integers(2**63))).shape[1]
    if net is None:
        torch.manual_seed(int(gen.integers(2**63)))
        net = mlp(d)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(integer(threads, "threads", 1))
    try:
        return _train(torch, net, sample, gen, process, steps, batch, lr, t_min)
    finally:
        torch.set_num_threads(before)


def _train(torch, net, sample, gen, process, steps, batch, lr, t_min):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    dtype = next(p for p in net.parameters() if p.is_floating_point()).dtype
    losses = np.empty(steps)
    net.train()
    for k in range(steps):
        x0 = sample(batch, int(gen.integers(2**63)))
        t = gen.uniform(t_min, process.T, batch)
        eps = gen.standard_normal(x0.shape)
        m, s = process.marginal_coefficients(t)
        xt = m[:, None] * x0 + s[:, None] * eps
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dtype)  # noqa: E731
        loss = torch.mean(torch.sum((net(as_t(xt), as_t(t)) - as_t(eps)) ** 2, dim=1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        losses[k] = float(loss.detach())
    net.eval()
    return net, losses


def save_mlp(net, path, **metadata):
    """Write an :func:`mlp`'s weights (float32) and shape to ``path`` (.npz);
    ``metadata`` (strings or numbers) is stored beside them."""
    if not all(hasattr(net, a) for a in ("layers", "d", "hidden", "frequencies")):
        raise TypeError(f"net must be a module made by diffsde.training.mlp; got {shown(net)}")
    arrays = {f"w{i}": layer.weight.detach().cpu().numpy().astype(np.float32)
              for i, layer in enumerate(net.layers[::2])}
    arrays.update({f"b{i}": layer.bias.detach().cpu().numpy().astype(np.float32)
                   for i, layer in enumerate(net.layers[::2])})
    arrays["shape"] = np.array([net.d, net.hidden, net.frequencies])
    for key, value in metadata.items():
        arrays[f"meta_{key}"] = np.asarray(value)
    np.savez_compressed(path, **arrays)


class NumpyMLP:
    """An :func:`mlp` evaluated in NumPy from saved weights: eps(x, t), t a
    scalar or one value per row. ``metadata`` holds what :func:`save_mlp` stored."""

    def __init__(self, weights, biases, d, hidden, frequencies, metadata):
        self.weights, self.biases = weights, biases
        self.d, self.hidden, self.frequencies, self.metadata = d, hidden, frequencies, metadata

    def __call__(self, x, t):
        x = np.asarray(x, dtype=np.float64)
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape[:1])
        h = _features(x, t, self.frequencies, np)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w.T + b
            if i < len(self.weights) - 1:
                h = h / (1 + np.exp(-h))  # SiLU
        return h

    def __repr__(self):
        return f"NumpyMLP(d={self.d}, hidden={self.hidden}, frequencies={self.frequencies})"


def load_mlp(path, framework="numpy"):
    """Read :func:`save_mlp`'s file: a :class:`NumpyMLP` (float64 arithmetic
    on the float32 weights), or with ``framework="torch"`` the torch module."""
    if framework not in ("numpy", "torch"):
        raise ValueError(f"framework must be 'numpy' or 'torch'; got {shown(framework)}")
    with np.load(path) as f:
        d, hidden, frequencies = (int(v) for v in f["shape"])
        weights = [f[f"w{i}"].astype(np.float64) for i in range(3)]
        biases = [f[f"b{i}"].astype(np.float64) for i in range(3)]
        metadata = {k[5:]: f[k][()].item() for k in f.files if k.startswith("meta_")}
    if framework == "numpy":
        return NumpyMLP(weights, biases, d, hidden, frequencies, metadata)
    torch = require("torch", "diffsde.training.load_mlp")
    net = mlp(d, hidden, frequencies, dtype=torch.float64)
    with torch.no_grad():
        for layer, w, b in zip(net.layers[::2], weights, biases):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    net.metadata = metadata
    return net.eval()

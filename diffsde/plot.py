"""Matplotlib helpers (matplotlib is imported when a helper is called).

Each takes ``ax=None`` (a new figure when none is given), returns the axes
and passes ``**kwargs`` to its main artist.
"""
import numpy as np


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def convergence(study, ax=None, reference_orders=(1, 2), **kwargs):
    """Log-log error against step count, with error bars, the fitted line
    and dashed reference slopes."""
    ax = _axes(ax)
    n = np.asarray(study.steps, dtype=float)
    kwargs.setdefault("marker", "o")
    line = ax.errorbar(n, study.errors, yerr=2 * np.asarray(study.stderr), capsize=3,
                       label=f"{study.kind}: order {study.fit.order:.2f}", **kwargs)
    ax.plot(n, study.fit.constant * n ** (-study.fit.order), color=line[0].get_color(), lw=0.8)
    for order in reference_orders:
        ax.plot(n, study.errors[0] * (n / n[0]) ** (-order), "k--", lw=0.6, alpha=0.6)
        ax.annotate(f"slope -{order}", (n[-1], study.errors[0] * (n[-1] / n[0]) ** (-order)), fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="steps N", ylabel=f"{study.kind} error")
    ax.legend()
    return ax

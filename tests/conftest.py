"""The laws, schedules and ladders the test files share, and how the
helper modules of tests/ are found.

How the helpers import
----------------------
tests/ is not a package (no ``__init__.py``). In pytest's default "prepend"
import mode, importing this conftest puts its own directory, tests/, and
nothing above it, at the front of ``sys.path``, and pytest imports it before
it collects any test module below tests/ (tests/derivations/ included). So
every test file can write ``import reference``, ``from stats import ...`` and
``from conftest import VP, MU, V0`` with no path manipulation of its own.

The repository root is never put on ``sys.path`` by this: ``pytest`` run from
anywhere tests whichever ``diffsde`` the interpreter finds (an installed
wheel, or an editable / in-place build), and an unbuilt ``diffsde/`` source
folder cannot shadow an installed package. (``python -m pytest`` adds the
current directory itself, as ``python -m`` always does.)

``--import-mode=importlib`` does not put tests/ on ``sys.path``; the suite
needs the default mode.

The shared objects
------------------
Test modules share these objects: no test may modify one.
"""
import numpy as np
import pytest

import diffsde as ds

#: The Gaussian data law N(MU, V0) of the moment tests: its score is linear
#: (``GAUSS_SCORE``), so every affine sampler has an exact moment recursion
#: (``reference.table_moments``).
MU, V0 = 1.5, 0.25
GAUSS_SCORE = ds.LinearScore(MU, V0)

#: Song et al. 2021's VP and sub-VP schedules, beta from 0.1 to 20 on [0, 1].
VP = ds.VPSDE(0.1, 20.0)
SUB = ds.SubVPSDE(0.1, 20.0)
#: An NCSN-like VE schedule, sigma from 0.01 to 50.
VE = ds.VESDE(0.01, 50.0)

#: The 1-D Fokker-Planck comparisons: a VE schedule whose marginals stay on a
#: grid of modest width, and a bimodal data law with exact CDFs and scores.
VE_FP = ds.VESDE(0.05, 5.0)
BIMODAL = ds.datasets.bimodal_1d(separation=3.0, std=0.4)

#: Step-count ladder of the order fits, and the tolerance of a fitted order.
LADDER = np.array([32, 64, 128, 256, 512, 1024])
ORDER_TOL = 0.15


def gaussian_marginal(m, s, mu=MU, v0=V0):
    """(mean, variance) of x_t = m x_0 + s z for x_0 ~ N(mu, v0), z ~ N(0, 1)."""
    return m * mu, m * m * v0 + s * s


def data_marginal(sde, t):
    """Mean and variance of x_t for data N(MU, V0) under ``sde``: (m MU, m^2 V0 + s^2)."""
    m, s = sde.marginal_coefficients(t)
    return gaussian_marginal(m, s)


def on_every_simd_path(fn):
    """{path: fn()} over every SIMD path this CPU has."""
    before = ds.get_simd_path()
    try:
        out = {}
        for path in ds.simd_paths():
            ds.set_simd_path(path)
            out[path] = fn()
        return out
    finally:
        ds.set_simd_path(before)


def engine_noise(key, n, shape, dtype=np.float64):
    """noise(step, which) for a sampler twin (tests/reference_samplers.py): the
    engine's own normal of twin step i (interval n - 1 - i) on the stream of
    ``which`` (step noise, churn, dpmpp_sde's second increment), so a twin and
    ``ds.reverse`` run on identical noise."""
    import reference_samplers as rs
    from diffsde import _core
    from diffsde._steptable import STREAM_EXTRA, STREAM_STEP
    streams = {rs.STEP: STREAM_STEP, rs.CHURN: STREAM_EXTRA + 0, rs.BRIDGE: STREAM_EXTRA + 1}

    def noise(step, which):
        out = np.empty(shape, dtype=dtype)
        _core.fill_normal(out, key, streams[which], n - 1 - step, 0, 1)
        return out
    return noise


#: The fine step count of the shared tour run (the coarse one is the tour's 15).
TOUR_STEPS = 100


@pytest.fixture(scope="session")
def tour_run(tmp_path_factory):
    """One ``python -m diffsde tour --quick --steps 100`` for every test that
    reads it (its tables, its printed text, its figures), since the tour is
    the suite's longest single call. Returns the folder, the printed text
    and the figures by name (kept open after being saved). Tests only read
    them."""
    import contextlib
    import io
    from types import SimpleNamespace

    from diffsde import __main__ as cli

    out = tmp_path_factory.mktemp("tour") / "tour"
    figures = {}
    save = cli.Report.figure

    def keep(self, fig, name):
        figures[name] = fig
        save(self, fig, name)

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(cli.Report, "figure", keep)
        code = cli.main(["tour", "--quick", "--quiet", "--out", str(out), "--steps", str(TOUR_STEPS)])
    return SimpleNamespace(code=code, out=out, printed=printed.getvalue(), figures=figures, cli=cli)

"""Sphinx configuration for the diffsde documentation.

Build with ``tools/build_docs.sh`` (warnings are errors). The package is
imported from the source tree when it is not installed, so the C extension
must be built first (``python setup.py build_ext --inplace``).
"""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
try:
    import diffsde  # noqa: F401  (an installed copy wins)
except ImportError:
    sys.path.insert(0, ROOT)
    import diffsde  # noqa: F401

project = "diffsde"
author = "diffsde developers"
copyright = "diffsde developers"
release = diffsde.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# The notebooks live in notebooks/ at the repository root, where the tests run
# them too; docs/notebooks is a symbolic link to that folder so that one copy
# serves both, and myst-nb executes every notebook during the build.

# --- API reference -------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# The reference pages are derived from the code: every name in
# ``diffsde.__all__`` and every public function or class defined in the
# submodules below, so a new public name cannot be left undocumented.
SUBMODULES = ["analysis", "datasets", "fokker_planck", "methods", "plot", "schedules", "grids", "training"]
GROUPS = [
    ("Processes", ["VPSDE", "VESDE", "SubVPSDE", "ReverseSDE", "DDPM", "SMLD"]),
    ("Simulation", ["forward", "reverse", "Trajectory", "BrownianPath", "log_likelihood"]),
    ("Scores", ["GaussianMixture", "EmpiricalData", "LinearScore", "score_from_eps", "score_from_x0",
                "score_from_v", "score_from_velocity", "network_score"]),
]


def _public(module):
    import inspect
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items()
                 if not n.startswith("_")
                 and (inspect.isfunction(obj) or inspect.isclass(obj))
                 and obj.__module__ == module.__name__]
    return sorted(names)


def _write_api_index(app, config=None):
    import importlib
    import types
    top = [n for n in diffsde.__all__
           if not isinstance(getattr(diffsde, n), types.ModuleType)]
    grouped = [n for _, names in GROUPS for n in names]
    sections = [(title, [n for n in names if n in top]) for title, names in GROUPS]
    sections.append(("Engine and noise", sorted(n for n in top if n not in grouped)))
    lines = ["API reference", "=============", "",
             "Generated from the docstrings. Everything below is importable as",
             "``import diffsde as ds; ds.<name>`` or ``ds.<submodule>.<name>``.", ""]
    for title, names in sections:
        lines += [title, "-" * len(title), "", ".. currentmodule:: diffsde", "",
                  ".. autosummary::", "   :toctree: generated", ""]
        lines += ["   " + n for n in names] + [""]
    for sub in SUBMODULES:
        try:
            module = importlib.import_module("diffsde." + sub)
        except ImportError:
            continue
        title = "diffsde." + sub
        lines += [title, "-" * len(title), "", ".. automodule:: " + title,
                  "   :no-members:", "", ".. currentmodule:: " + title, "",
                  ".. autosummary::", "   :toctree: generated", ""]
        lines += ["   " + n for n in _public(module)] + [""]
    text = "\n".join(lines)
    path = os.path.join(app.srcdir, "api", "index.rst")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    old = open(path).read() if os.path.exists(path) else None
    if old != text:  # rewriting an unchanged file would force a full rebuild
        with open(path, "w") as f:
            f.write(text)


def setup(app):
    app.connect("config-inited", _write_api_index)


# --- MyST / notebooks ----------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# Every build executes the notebooks ("force"), so the rendered outputs come
# from the code being documented. DIFFSDE_DOCS_EXECUTE=cache reuses outputs of
# unchanged notebooks (quick local rebuilds; the cache does not notice changes
# to the package itself), =off renders them without running.
nb_execution_mode = os.environ.get("DIFFSDE_DOCS_EXECUTE", "force")
nb_execution_cache_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_build", ".jupyter_cache")
nb_execution_timeout = 180
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# --- HTML ----------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"diffsde {release}"
html_static_path = []
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
}

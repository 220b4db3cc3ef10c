"""Import the compiled core, or say exactly what to do when it is missing.

Python puts the current directory first on ``sys.path``, so in a clone of the
repository the source folder ``diffsde/`` shadows any installed copy. When that
folder has no compiled ``_core`` (a plain ``pip install .`` builds the
extension into site-packages, not into the clone), the bare import error would
read like a circular import. This module turns it into instructions.
"""
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)


def _is_source_tree():
    """True when this package is the unbuilt folder of a repository clone."""
    return all(os.path.exists(os.path.join(_ROOT, name)) for name in ("setup.py", "csrc"))


def _built_core_files():
    """The compiled ``_core`` files this folder holds for this Python."""
    from importlib.machinery import EXTENSION_SUFFIXES
    return [name for name in sorted(os.listdir(_HERE))
            if name.startswith("_core") and name.endswith(tuple(EXTENSION_SUFFIXES))]


def _missing_core_message(cause):
    built = _built_core_files()
    if built:
        # A file is there but does not load (another Python, a missing symbol):
        # the loader's own words are the useful part.
        why = f"{built[0]} does not load: {cause}"
    else:
        why = "there is no compiled _core extension for this Python in that folder"
    lines = [f"diffsde's compiled core (diffsde._core) cannot be imported from {_HERE}: {why}."]
    if _is_source_tree() and not built:
        lines += [
            "This is diffsde's source folder, and its C core is not built here.",
            f"Python imports it before any installed copy because {_ROOT} is on sys.path "
            "(it is the current directory, or on PYTHONPATH).",
            "Either build the core in place, which makes this folder the installed package:",
            '    pip install -e ".[examples]"          (or: python setup.py build_ext --inplace)',
            "or run Python from another directory so that an installed diffsde is found.",
        ]
    else:
        lines += [
            "The build looks incomplete or was made for another Python or NumPy; rebuild it "
            '(pip install -e ".[examples]" in a clone, or pip install --force-reinstall '
            "--no-cache-dir . for a regular install).",
        ]
    return "\n".join(lines)


try:
    from . import _core  # noqa: F401  (re-exported for the private modules)
except ImportError as exc:
    raise ImportError(_missing_core_message(exc)) from exc

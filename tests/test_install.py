"""Importing diffsde from a source tree whose C core is not built.

From a clone's root Python finds the source folder ``diffsde/`` before any
installed copy; without a compiled ``_core`` there, the import must say what
to do instead of failing with a circular-import message.
"""
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES

import pytest

import diffsde

PACKAGE = os.path.dirname(diffsde.__file__)


def _source_tree(tmp_path, core_bytes=None):
    """A copy of the package's Python files laid out like a clone's root."""
    pkg = tmp_path / "diffsde"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    (tmp_path / "csrc").mkdir()
    (tmp_path / "setup.py").write_text("# stand-in for the clone's setup.py\n")
    if core_bytes is not None:
        (pkg / ("_core" + EXTENSION_SUFFIXES[0])).write_bytes(core_bytes)
    return tmp_path


def _import_error(cwd):
    """Import diffsde in a fresh interpreter as a user would from ``cwd``
    with diffsde installed elsewhere: the current directory first, then the
    site-packages holding NumPy. ``-S`` keeps site-packages' .pth hooks out,
    such as the finder of an editable install of this very checkout, which
    would otherwise take the import wherever the current directory is."""
    import numpy

    site = os.path.dirname(os.path.dirname(numpy.__file__))
    code = f"import sys; sys.path[:0] = ['', {site!r}]; import diffsde"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, "an unbuilt source tree imported without error"
    return proc.stderr


def test_unbuilt_source_tree_says_how_to_build(tmp_path):
    err = _import_error(_source_tree(tmp_path))
    last = err.strip().splitlines()[-6:]
    assert "circular import" not in err.split("ImportError: diffsde")[-1]
    assert any(line.startswith("ImportError: diffsde's compiled core") for line in last), err
    assert 'pip install -e ".[examples]"' in err
    assert "python setup.py build_ext --inplace" in err
    assert str(tmp_path) in err


@pytest.mark.skipif(sys.platform == "win32", reason="ELF loader message")
def test_broken_core_file_reports_the_loader_error(tmp_path):
    err = _import_error(_source_tree(tmp_path, core_bytes=b"not a shared object"))
    assert "does not load" in err
    assert "rebuild" in err

#!/usr/bin/env bash
# Build the HTML documentation into docs/_build/html, with every Sphinx warning
# an error. Needs the docs extra (pip install ".[docs]") and the compiled
# package: installed, or built in place (python setup.py build_ext --inplace).
# The notebooks in notebooks/ are executed during the build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# When diffsde is not installed, use the source tree; exporting it also lets
# the notebook kernels that the build starts (in notebooks/) import it. The
# check runs outside the tree, where the source directory cannot shadow it.
if ! (cd / && python -c "import diffsde") >/dev/null 2>&1; then
    export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
    (cd / && python -c "import diffsde") || {
        echo "build_docs.sh: diffsde does not import; build it first:" \
             "python setup.py build_ext --inplace" >&2
        exit 1
    }
fi
exec sphinx-build -W --keep-going -b html "$@" docs docs/_build/html

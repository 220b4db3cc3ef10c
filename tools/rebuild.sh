#!/usr/bin/env bash
# Rebuild diffsde._core in place, replacing the module file atomically so a
# Python process that has it loaded (a notebook, a test run) never sees a
# half-written library.
set -euo pipefail
cd "$(dirname "$0")/.."
python setup.py -q build_ext --build-lib build/rebuild >/dev/null 2>build/rebuild.log || { cat build/rebuild.log; exit 1; }
so="$(cd build/rebuild/diffsde && ls _core*.so)"
cp "build/rebuild/diffsde/$so" "diffsde/.$so.new"
mv -f "diffsde/.$so.new" "diffsde/$so"
echo "rebuilt diffsde/$so"

#!/usr/bin/env bash
# Build diffsde._core with AddressSanitizer and UndefinedBehaviorSanitizer in
# a scratch copy of the tree and run the C-facing tests under it.
#   tools/sanitize.sh [pytest args...]      (tools/sanitize.sh tests/ : the whole suite)
# Leak detection is off: CPython itself "leaks" by design at exit; reference
# and memory stability are tested in tests/test_engine.py instead.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$here"
git ls-files -z | xargs -0 -I{} cp -P --parents {} "$work"
# Untracked but not ignored files (work in progress) go too.
git ls-files -z --others --exclude-standard | xargs -0 -r -I{} cp -P --parents {} "$work"
cd "$work"
CC="${CC:-gcc}" DIFFSDE_SANITIZE=address,undefined python setup.py -q build_ext --inplace >build.log 2>&1 \
  || { cat build.log; exit 1; }
# libstdc++ goes in too: C++ extensions (matplotlib's) throw exceptions, and
# ASan's __cxa_throw interceptor needs the real one loaded from the start.
export LD_PRELOAD="$("${CC:-gcc}" -print-file-name=libasan.so) $("${CC:-gcc}" -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
PYTHONPATH="$work" python -m pytest -q -p no:cacheprovider \
  tests/test_engine.py tests/test_engine_regressions.py tests/test_rng.py tests/test_interrupt.py \
  tests/test_scores.py tests/test_scores_regressions.py "$@"
echo "sanitize.sh: ASan + UBSan run passed"

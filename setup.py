"""Build the C core, diffsde._core, with OpenMP when the compiler has it."""
import os
import sys
import tempfile
from glob import glob

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Results must not depend on the compiler's freedom to fuse or reorder
# floating-point operations: the tests compare the C kernels bit for bit with
# NumPy twins doing the same operations in the same order.
BASE_FLAGS = ["-std=c99", "-O3", "-ffp-contract=off", "-fno-math-errno"]
if os.environ.get("DIFFSDE_NATIVE") == "1":
    BASE_FLAGS.append("-march=native")
SANITIZE = os.environ.get("DIFFSDE_SANITIZE", "")

# Instruction sets of the per-ISA kernel files on x86-64, given to those files
# only: the rest of the module stays portable, and the CPU picks a path at run
# time (csrc/simd.c, which checks the same features). Each file stops with
# #error when compiled without its flags, so a build can never ship baseline
# code under an AVX name. The flags add no fusion: -ffp-contract=off holds.
ISA_FLAGS = {
    "isa_avx2.c": ["-mavx2"],
    "isa_avx512.c": ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mavx512cd"],
}


def compiles(compiler, source, flags, link=False):
    """True when `compiler` compiles `source` with `flags` (and links it, if asked)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(source)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            if link:
                compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=flags)
        except Exception:
            return False
    return True


OPENMP_PROBE = "#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n"
X86_64_PROBE = "#ifndef __x86_64__\n#error not x86-64\n#endif\nint dsde_probe;\n"


class BuildExt(build_ext):
    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            raise RuntimeError("diffsde builds with gcc or clang (C99, OpenMP optional)")
        openmp = os.environ.get("DIFFSDE_OPENMP", "1") != "0" and compiles(
            self.compiler, OPENMP_PROBE, ["-fopenmp"], link=True
        )
        if not openmp:
            print("diffsde: building without OpenMP (serial engine)", file=sys.stderr)
        for ext in self.extensions:
            ext.extra_compile_args = BASE_FLAGS + (["-fopenmp"] if openmp else [])
            ext.extra_link_args = ["-fopenmp"] if openmp else []
            if SANITIZE:
                flags = ["-fsanitize=" + SANITIZE, "-fno-sanitize-recover=undefined",
                         "-fno-omit-frame-pointer", "-g", "-O1"]
                ext.extra_compile_args += flags
                ext.extra_link_args += flags
        isa_flags = ISA_FLAGS if compiles(self.compiler, X86_64_PROBE, BASE_FLAGS) else {}
        # distutils compiles each source through _compile(); wrapping it is
        # the one place where flags can differ per file.
        compile_one = self.compiler._compile

        def compile_with_isa(obj, src, ext, cc_args, extra_postargs, pp_opts):
            extra = list(extra_postargs or []) + isa_flags.get(os.path.basename(src), [])
            compile_one(obj, src, ext, cc_args, extra, pp_opts)

        self.compiler._compile = compile_with_isa
        try:
            super().build_extensions()
        finally:
            del self.compiler._compile


setup(
    ext_modules=[
        Extension(
            "diffsde._core",
            sources=sorted(glob("csrc/*.c")),
            include_dirs=[np.get_include(), "csrc"],
            depends=sorted(glob("csrc/*.h")),
        )
    ],
    cmdclass={"build_ext": BuildExt},
)

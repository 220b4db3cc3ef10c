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


def compiler_accepts(compiler, flags):
    """True when `compiler` compiles and links an OpenMP program with `flags`."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=flags)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            raise RuntimeError("diffsde builds with gcc or clang (C99, OpenMP optional)")
        openmp = os.environ.get("DIFFSDE_OPENMP", "1") != "0" and compiler_accepts(
            self.compiler, ["-fopenmp"]
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
        super().build_extensions()


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

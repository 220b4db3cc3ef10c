/* Every vector kernel, compiled once per instruction set: the file that
 * includes this defines DSDE_ISA (baseline, avx2, avx512) and is compiled
 * with that set's flags; the step kernels once per dtype. */
#include "normal_kernel.h"
#include "mixture_kernel.h"
#include "empirical_kernel.h"
#define DSDE_T double
#define DSDE_SFX DSDE_CAT(f64, DSDE_ISA)
#define DSDE_NONFINITE nonfinite_f64
#include "step_kernel.h"
#undef DSDE_T
#undef DSDE_SFX
#undef DSDE_NONFINITE
#define DSDE_T float
#define DSDE_SFX DSDE_CAT(f32, DSDE_ISA)
#define DSDE_NONFINITE nonfinite_f32
#include "step_kernel.h"
#undef DSDE_T
#undef DSDE_SFX
#undef DSDE_NONFINITE

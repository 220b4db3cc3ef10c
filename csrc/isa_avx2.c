/* The vector kernels compiled for AVX2 (x86-64 only; chosen at run time). */
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2")
#include <math.h>
#define DSDE_ISA avx2
#include "normal_kernel.h"
#include "mixture_kernel.h"
#endif
typedef int dsde_avx2_translation_unit_is_not_empty;

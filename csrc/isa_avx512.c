/* The vector kernels compiled for AVX-512 (x86-64-v4; chosen at run time). */
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx512cd,avx2")
#include <math.h>
#define DSDE_ISA avx512
#include "normal_kernel.h"
#include "mixture_kernel.h"
#endif
typedef int dsde_avx512_translation_unit_is_not_empty;

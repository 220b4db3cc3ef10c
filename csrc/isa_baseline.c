/* The vector kernels for the compiler's baseline target (SSE2 on x86-64,
 * NEON on aarch64). */
#include <math.h>
#define DSDE_ISA baseline
#include "isa_kernels.h"

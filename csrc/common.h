/* Shared macros for the diffsde C core: errors, the GIL, dtypes, OpenMP. */
#ifndef DIFFSDE_COMMON_H
#define DIFFSDE_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Element types the kernels are compiled for. */
enum dsde_dtype { DSDE_F64 = 0, DSDE_F32 = 1 };

/* Raise `exc` with a printf-style message and jump to the one cleanup label. */
#define DSDE_FAIL(exc, ...)                                                    \
    do {                                                                       \
        PyErr_Format((exc), __VA_ARGS__);                                      \
        goto error;                                                            \
    } while (0)

/* Release and re-take the GIL around pure-C work; `save` names the slot. */
#define DSDE_RELEASE_GIL(save) PyThreadState *save = PyEval_SaveThread()
#define DSDE_ACQUIRE_GIL(save) PyEval_RestoreThread(save)

#endif

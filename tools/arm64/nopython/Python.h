/*
 * A stand-in for <Python.h> used only by the pure-C known-answer driver
 * (tools/arm64/kat.c), so that the C core's engine files (driver.c,
 * parallel.c, normal.c, scores.c) compile unchanged without an interpreter,
 * natively or for another architecture.
 *
 * Without an interpreter there is no GIL and no signal to check: releasing
 * and re-taking the GIL do nothing and PyErr_CheckSignals finds nothing.
 * Errors the engine raises (PyErr_Format, PyErr_SetString) are kept as text
 * for the driver to print. Calling back into Python (the score kind PYTHON)
 * has no meaning here: those functions stop the program with a message, and
 * the driver never selects that kind.
 */
#ifndef DSDE_NOPYTHON_PYTHON_H
#define DSDE_NOPYTHON_PYTHON_H

/* Like the real header (its pyconfig.h), the POSIX and GNU declarations
 * (clock_gettime, nanosleep, sched_yield) before any system header. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>

typedef struct dsde_nopy_object PyObject;
typedef struct dsde_nopy_thread_state PyThreadState;
typedef ptrdiff_t Py_ssize_t;

extern PyObject *const PyExc_ValueError, *const PyExc_TypeError, *const PyExc_MemoryError,
    *const PyExc_FloatingPointError, *const PyExc_RuntimeError;

/* The pending error: its message, or NULL (PyErr_Occurred). */
PyObject *PyErr_Format(PyObject *exc, const char *format, ...);
void PyErr_SetString(PyObject *exc, const char *message);
PyObject *PyErr_Occurred(void);
const char *dsde_nopy_error_message(void);
void dsde_nopy_error_clear(void);

int PyErr_CheckSignals(void);
PyThreadState *PyEval_SaveThread(void);
void PyEval_RestoreThread(PyThreadState *state);

/* Python callbacks: unreachable in the driver (abort with a message). */
void dsde_nopy_unreachable(const char *what);
PyObject *PyObject_CallFunction(PyObject *callable, const char *format, ...);
PyObject *PyObject_CallMethod(PyObject *obj, const char *name, const char *format, ...);
#define Py_DECREF(o) dsde_nopy_unreachable("Py_DECREF")
#define Py_XDECREF(o) ((o) != NULL ? dsde_nopy_unreachable("Py_XDECREF") : (void)0)

#endif

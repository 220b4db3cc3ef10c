/* The functions behind the stand-in <Python.h> (see Python.h). */
#include "Python.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct dsde_nopy_object {
    const char *name;
};

static struct dsde_nopy_object exceptions[] = {
    {"ValueError"}, {"TypeError"}, {"MemoryError"}, {"FloatingPointError"}, {"RuntimeError"}};
PyObject *const PyExc_ValueError = &exceptions[0];
PyObject *const PyExc_TypeError = &exceptions[1];
PyObject *const PyExc_MemoryError = &exceptions[2];
PyObject *const PyExc_FloatingPointError = &exceptions[3];
PyObject *const PyExc_RuntimeError = &exceptions[4];

static PyObject *pending;
static char message[512];

PyObject *
PyErr_Format(PyObject *exc, const char *format, ...)
{
    va_list args;
    int n = snprintf(message, sizeof message, "%s: ", exc->name);
    va_start(args, format);
    vsnprintf(message + n, sizeof message - (size_t)n, format, args);
    va_end(args);
    pending = exc;
    return NULL;
}

void
PyErr_SetString(PyObject *exc, const char *text)
{
    PyErr_Format(exc, "%s", text);
}

PyObject *
PyErr_Occurred(void)
{
    return pending;
}

const char *
dsde_nopy_error_message(void)
{
    return pending != NULL ? message : NULL;
}

void
dsde_nopy_error_clear(void)
{
    pending = NULL;
}

int
PyErr_CheckSignals(void)
{
    return 0;
}

PyThreadState *
PyEval_SaveThread(void)
{
    return NULL;
}

void
PyEval_RestoreThread(PyThreadState *state)
{
    (void)state;
}

void
dsde_nopy_unreachable(const char *what)
{
    fprintf(stderr, "kat: %s called: the driver has no Python (score kind PYTHON is not "
            "available here)\n", what);
    abort();
}

PyObject *
PyObject_CallFunction(PyObject *callable, const char *format, ...)
{
    (void)callable, (void)format;
    dsde_nopy_unreachable("PyObject_CallFunction");
    return NULL;
}

PyObject *
PyObject_CallMethod(PyObject *obj, const char *name, const char *format, ...)
{
    (void)obj, (void)name, (void)format;
    dsde_nopy_unreachable("PyObject_CallMethod");
    return NULL;
}

/*
 * Threads, the GIL and Ctrl-C for pure-C work.
 *
 * dsde_run_chunks() releases the GIL, opens one OpenMP parallel region and
 * hands out chunks 0 .. n_chunks-1 to threads in any order (an atomic
 * counter); results must not depend on which thread runs which chunk. The
 * calling thread (the "master") re-takes the GIL every DSDE_POLL_SECONDS to
 * run Python's signal handlers, so Ctrl-C raises KeyboardInterrupt promptly;
 * the others stop at their next poll.
 */
#ifndef DIFFSDE_PARALLEL_H
#define DIFFSDE_PARALLEL_H

#include "common.h"

#define DSDE_POLL_SECONDS 0.01
/* The master reads the clock on every stride-th poll only (a read costs
 * about 30 ns, a score tile at d = 2 about 1 us): the stride doubles while
 * reads come less than DSDE_POLL_SECONDS / 16 apart and halves when they
 * come more than DSDE_POLL_SECONDS / 4 apart, up to DSDE_POLL_STRIDE_MAX.
 * Polls of one run come at a steady pace (every site does a bounded piece
 * of work: a score tile, a table row of one block, a chunk of normals), so
 * reads stay about 1 ms apart and Ctrl-C is answered within a few
 * DSDE_POLL_SECONDS (tests/test_interrupt.py measures it). */
#define DSDE_POLL_STRIDE_MAX 256

enum dsde_stop_reason {
    DSDE_OK = 0,
    DSDE_STOP_SIGNAL = 1, /* a Python exception is set (usually KeyboardInterrupt) */
    DSDE_STOP_NOMEM = 2,
    DSDE_STOP_PYTHON = 3, /* a Python exception is set by a callback */
    DSDE_STOP_NONFINITE = 4 /* not an error: the caller reports the row */
};

typedef struct {
    PyThreadState *saved; /* the master's thread state while the GIL is released */
    int stop;             /* a dsde_stop_reason; read and written atomically */
    double next_poll;     /* master only: when to run the signal handlers */
    double last_read;     /* master only: the last clock read */
    int stride;           /* master only: polls per clock read */
    int countdown;        /* master only: polls left before the next read */
    size_t nomem_bytes;   /* DSDE_STOP_NOMEM: the per-thread buffer that failed */
    int threads;          /* threads of the parallel region, for messages */
} dsde_pool;

/* Start the master's clock (before its first dsde_poll). */
void dsde_pool_arm(dsde_pool *pool);

/* Nonzero when the work must stop. The master may run signal handlers. */
int dsde_poll(dsde_pool *pool, int master);

/* Record why the work stops (the first reason wins). */
void dsde_pool_stop(dsde_pool *pool, int reason);

/* Stop for lack of memory: a thread could not allocate `bytes`. */
void dsde_pool_stop_nomem(dsde_pool *pool, size_t bytes);

/* Atomically read the stop reason. */
int dsde_pool_stopped(dsde_pool *pool);

double dsde_now(void);

/* The thread count actually used for a request: at least 1, at most
 * 4 x the processors (and OpenMP's limit); 1 without OpenMP. */
int dsde_thread_cap(int requested);

int dsde_thread_index(void);

/* Hooks for dsde_run_chunks: per-thread workspace and one chunk of work. */
typedef struct {
    /* NULL return = out of memory; *bytes = the bytes it asked for */
    void *(*make_workspace)(void *ctx, size_t *bytes);
    void (*free_workspace)(void *ctx, void *ws); /* also merges per-thread results */
    void (*run_chunk)(void *ctx, void *ws, int64_t chunk, dsde_pool *pool,
                      int master);
} dsde_chunk_job;

/* Run all chunks with up to `num_threads` threads. Call with the GIL held;
 * returns with it held. 0 on success, -1 with a Python exception set. */
int dsde_run_chunks(const dsde_chunk_job *job, void *ctx, int64_t n_chunks,
                    int num_threads);

/* Set the Python exception for the pool's stop reason when it has none yet
 * (out of memory: a MemoryError stating the bytes). 0 when the work
 * completed or stopped at a non-finite value, else -1. Call with the GIL. */
int dsde_raise_for_stop(const dsde_pool *pool);

/* Set a MemoryError stating the `bytes` that `what` could not get. */
void dsde_no_memory(size_t bytes, const char *what);

#endif

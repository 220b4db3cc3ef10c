#include "parallel.h"
#include <time.h>

int
dsde_thread_cap(int requested)
{
    int nt = requested < 1 ? 1 : requested;
#ifdef _OPENMP
    /* More threads than a few per processor only cost memory and time, and
     * libgomp fails (or worse) when asked for absurd counts. */
    int limit = 4 * omp_get_num_procs();
    if (limit > omp_get_thread_limit())
        limit = omp_get_thread_limit();
    if (nt > limit)
        nt = limit;
#else
    nt = 1;
#endif
    return nt;
}

double
dsde_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int
dsde_thread_index(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int
dsde_pool_stopped(dsde_pool *pool)
{
    return __atomic_load_n(&pool->stop, __ATOMIC_SEQ_CST);
}

static void
store_stop(dsde_pool *pool, int reason)
{
    __atomic_store_n(&pool->stop, reason, __ATOMIC_SEQ_CST);
}

void
dsde_pool_stop(dsde_pool *pool, int reason)
{
    /* The first reason wins; readers use atomic reads, so writes are atomic
     * too, and the critical section makes test-and-set one step. */
#pragma omp critical(dsde_pool_stop)
    {
        if (dsde_pool_stopped(pool) == DSDE_OK)
            store_stop(pool, reason);
    }
}

void
dsde_pool_stop_nomem(dsde_pool *pool, size_t bytes)
{
    /* every thread asks for the same buffers: any failing thread's size will do */
    __atomic_store_n(&pool->nomem_bytes, bytes, __ATOMIC_SEQ_CST);
    dsde_pool_stop(pool, DSDE_STOP_NOMEM);
}

void
dsde_pool_arm(dsde_pool *pool)
{
    pool->last_read = dsde_now();
    pool->next_poll = pool->last_read + DSDE_POLL_SECONDS;
    pool->stride = pool->countdown = 1;
}

int
dsde_poll(dsde_pool *pool, int master)
{
    /* Once stopped, no more signal handlers: an exception may be set. */
    if (dsde_pool_stopped(pool))
        return 1;
    if (master && --pool->countdown <= 0) {
        double now = dsde_now(), gap = now - pool->last_read;
        if (gap < DSDE_POLL_SECONDS / 16 && pool->stride < DSDE_POLL_STRIDE_MAX)
            pool->stride *= 2;
        else if (gap > DSDE_POLL_SECONDS / 4 && pool->stride > 1)
            pool->stride /= 2;
        pool->countdown = pool->stride;
        pool->last_read = now;
        if (now >= pool->next_poll) {
            pool->next_poll = now + DSDE_POLL_SECONDS;
            PyEval_RestoreThread(pool->saved);
            int interrupted = PyErr_CheckSignals() < 0;
            pool->saved = PyEval_SaveThread();
            if (interrupted)
                dsde_pool_stop(pool, DSDE_STOP_SIGNAL);
        }
    }
    return dsde_pool_stopped(pool);
}

void
dsde_no_memory(size_t bytes, const char *what)
{
    /* PyErr_Format has no %f: whole MiB, rounded up */
    PyErr_Format(PyExc_MemoryError, "diffsde: could not allocate %zu bytes (%zu MiB) for %s",
                 bytes, (bytes + 1048575) / 1048576, what);
}

int
dsde_raise_for_stop(const dsde_pool *pool)
{
    int reason = pool->stop;
    if (reason == DSDE_STOP_NOMEM && !PyErr_Occurred()) {
        size_t bytes = pool->nomem_bytes;
        PyErr_Format(PyExc_MemoryError,
                     "diffsde: could not allocate %zu bytes (%zu MiB) for one thread's work "
                     "buffers (each of the run's %d thread(s) has its own); use fewer threads "
                     "(set_num_threads), a smaller block_rows or a smaller state",
                     bytes, (bytes + 1048575) / 1048576, pool->threads);
    }
    return reason == DSDE_OK || reason == DSDE_STOP_NONFINITE ? 0 : -1;
}

int
dsde_run_chunks(const dsde_chunk_job *job, void *ctx, int64_t n_chunks,
                int num_threads)
{
    dsde_pool pool = {.saved = NULL, .stop = DSDE_OK, .threads = 1};
    int64_t next_chunk = 0, chunks_done = 0;
    int nt = dsde_thread_cap(num_threads);
    if (nt > n_chunks)
        nt = n_chunks < 1 ? 1 : (int)n_chunks;
    pool.threads = nt;

    dsde_pool_arm(&pool);
    pool.saved = PyEval_SaveThread();
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int master = dsde_thread_index() == 0;
        size_t bytes = 0;
        void *ws = job->make_workspace(ctx, &bytes);
        if (ws == NULL)
            dsde_pool_stop_nomem(&pool, bytes);
        while (ws != NULL && !dsde_pool_stopped(&pool)) {
            int64_t chunk;
#pragma omp atomic capture
            chunk = next_chunk++;
            if (chunk >= n_chunks)
                break;
            job->run_chunk(ctx, ws, chunk, &pool, master);
#pragma omp atomic update
            chunks_done++;
            dsde_poll(&pool, master);
        }
        /* The master keeps answering Ctrl-C while the others finish. */
        if (master) {
            for (;;) {
                int64_t done;
#pragma omp atomic read
                done = chunks_done;
                if (done >= n_chunks || dsde_poll(&pool, master))
                    break;
                struct timespec nap = {0, 20000};
                nanosleep(&nap, NULL);
            }
        }
        if (ws != NULL)
            job->free_workspace(ctx, ws);
    }
    PyEval_RestoreThread(pool.saved);
    return dsde_raise_for_stop(&pool);
}

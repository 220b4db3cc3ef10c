/*
 * The multi-step driver: runs a whole step table (a register program, step.h)
 * over a batch.
 *
 * A table row r has a kind, a destination register, up to DSDE_MAX_TERMS
 * source registers and weights, the score time t and the marginal (m, sd) at
 * t for the built-in scores. Noise for a normal row is normal j of (key,
 * stream[r], interval[r]) (rng.h), or, for stream 0 when the caller gives a
 * noise array, noise[interval[r], j]: the register then points into the
 * caller's array instead of holding a copy (registers written by normal rows
 * are written by nothing else, so it is never written through).
 *
 * Without a Python score the batch is cut into blocks of whole rows and each
 * thread runs every table row on its block while the block and its scratch
 * registers sit in cache. With a Python score the loop runs table rows
 * outermost: the master calls the score on the whole batch with the GIL
 * held, then all threads update their blocks; the scratch registers are then
 * whole-batch arrays the caller allocates. Both orders do identical
 * arithmetic per element, so results are bit-identical for any thread count,
 * block size or batch prefix.
 */
#ifndef DIFFSDE_DRIVER_H
#define DIFFSDE_DRIVER_H

#include "common.h"
#include "scores.h"
#include "step.h"

typedef struct {
    int64_t n_rows;
    int n_registers;
    const int32_t *kind, *dst;
    int width;             /* terms per row, 1 .. DSDE_MAX_TERMS (2 with score rows) */
    const int32_t *src;    /* (n_rows, width); -1 ends a row's list */
    const double *w;       /* (n_rows, width) */
    const double *t, *m, *sd;
    const int64_t *interval, *stream;
    /* filled by dsde_table_check */
    unsigned char written[DSDE_MAX_REGISTERS]; /* some row writes the register */
    int score_tmp; /* some score row needs a buffer for the score values */
} dsde_table;

typedef struct {
    int dtype;             /* dsde_dtype */
    int64_t batch, dim;    /* the state is (batch, dim), C-contiguous */
    void *x;               /* state, updated in place (register 0) */
    /* Python score: whole-batch scratch registers (NULL where unused) */
    void *registers[DSDE_MAX_REGISTERS];
    uint64_t key;
    const void *noise;     /* (n_noise, batch, dim) or NULL */
    int64_t n_noise;
    const int64_t *save_rows; /* increasing; -1 = the initial state */
    int64_t n_save;
    void *snapshots;       /* (n_save, batch, dim) */
    dsde_builtin_score score;
    PyObject *callback;    /* score kind PYTHON: callback(row) -> score values */
    int check_finite;
    int stop_on_nonfinite;
    int num_threads;
    int64_t block_rows;
    /* global index of batch row 0: row i draws the normals of row
     * row_offset + i, so a slice of rows computes as in the whole batch */
    uint64_t row_offset;
    /* result: the first table row after which the state had a non-finite
     * element, or -1 */
    int64_t first_nonfinite_row;
} dsde_run;

/* Check what would crash the driver (kinds, register indices, the normal
 * registers, noise intervals) and fill the derived fields. 0, or -1 with a
 * ValueError set. */
int dsde_table_check(dsde_table *table, const dsde_run *run);

/* Call with the GIL held. 0 on success, -1 with a Python exception set. */
int dsde_drive(dsde_run *run, const dsde_table *table);

/* Number of source terms of row r (the sources before the first -1). */
int dsde_row_terms(const dsde_table *table, int64_t r);

#endif

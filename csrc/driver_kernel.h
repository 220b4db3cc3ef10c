/*
 * apply_row for one element type: table row r on batch rows [i0, i1).
 * driver.c includes this file once per type with DSDE_T and DSDE_SFX
 * defined. `ext_score` is the score of the whole batch from a Python
 * callable, or NULL to use the built-in score.
 */
#define DSDE_FN(name) DSDE_DRV_CAT(name, DSDE_SFX)

static DSDE_T *
DSDE_FN(reg)(const dsde_run *run, const regs *rg, int k, int64_t i0)
{
    if (k == 0)
        return (DSDE_T *)run->x + i0 * run->dim;
    if (rg->alias[k] >= 0)
        return (DSDE_T *)run->noise + (rg->alias[k] * run->batch + i0) * run->dim;
    return (DSDE_T *)rg->buf[k] + (rg->whole ? i0 * run->dim : 0);
}

static int
DSDE_FN(apply_row)(const dsde_run *run, const dsde_table *tb, int64_t r, int64_t i0, int64_t i1,
                   const regs *rg, void *tmp, double *work, const DSDE_T *ext_score,
                   dsde_pool *pool, int master)
{
    const int64_t dim = run->dim, rows = i1 - i0, n = rows * dim;
    const int kind = tb->kind[r], dst = tb->dst[r];
    const int32_t *src = tb->src + r * tb->width;
    const double *w = tb->w + r * tb->width;
    DSDE_T *out = DSDE_FN(reg)(run, rg, dst, i0);
    int bad = 0;

    switch (kind) {
    case DSDE_ROW_SCORE: {
        const DSDE_T *at = DSDE_FN(reg)(run, rg, src[0], i0);
        const DSDE_T *s;
        if (ext_score != NULL) {
            s = ext_score + i0 * dim;
        }
        else if (w[0] == 0.0 && w[1] == 1.0 && dst != 0 && dst != src[0]) {
            /* the raw score, straight into its register: no arithmetic */
            DSDE_FN(dsde_score)(&run->score, tb->m[r], tb->sd[r], at, rows, out, work, pool,
                                master);
            break;
        }
        else {
            DSDE_FN(dsde_score)(&run->score, tb->m[r], tb->sd[r], at, rows, (DSDE_T *)tmp, work,
                                pool, master);
            s = (const DSDE_T *)tmp;
        }
        const DSDE_T *terms[2];
        double tw[2];
        int nt = 0;
        if (w[0] != 0.0)
            terms[nt] = at, tw[nt++] = w[0];
        terms[nt] = s, tw[nt++] = w[1];
        bad = DSDE_FN(dsde_combine)(out, terms, tw, nt, n);
        break;
    }
    case DSDE_ROW_NORMAL:
        if (rg->alias[dst] < 0) /* else the register points into the caller's noise */
            DSDE_FN(dsde_normal_fill)(dsde_key_from_u64(run->key), (uint32_t)tb->stream[r],
                                      (uint32_t)tb->interval[r],
                                      ((uint64_t)i0 + run->row_offset) * (uint64_t)dim, n, out);
        break;
    case DSDE_ROW_COMBINE: {
        const DSDE_T *terms[DSDE_MAX_TERMS];
        int nt = dsde_row_terms(tb, r);
        for (int k = 0; k < nt; k++)
            terms[k] = DSDE_FN(reg)(run, rg, src[k], i0);
        bad = DSDE_FN(dsde_combine)(out, terms, w, nt, n);
        break;
    }
    case DSDE_ROW_LANGEVIN:
        bad = DSDE_FN(dsde_langevin)(out, DSDE_FN(reg)(run, rg, src[0], i0),
                                     DSDE_FN(reg)(run, rg, src[1], i0),
                                     DSDE_FN(reg)(run, rg, src[2], i0), rows, dim, w[0], w[1]);
        break;
    }
    return run->check_finite && bad && (dst == 0 || kind == DSDE_ROW_LANGEVIN);
}

#undef DSDE_FN

/*
 * colmap_mpi.c - matchnet-colmap under Open MPI (colmap_app.h; built with
 * MN_WITH_MPI): `mpirun -n R matchnet-colmap ... --store DIR`.
 *
 * Every rank lists the same --images folder and describes its share of the
 * images (i % R == rank) into the store, which must be on a file system all
 * ranks see; the unreadable ones are then known to all. Rank 0 alone opens
 * the database: it adds the images (from the store), selects the pairs,
 * leaves out those already done (a rerun resumes), and hands out blocks of
 * PAIR_BLOCK pairs, in the store's tiled order, to the other ranks as they
 * ask for work (IN_FLIGHT at a time each, so that a worker always has its
 * next block), matching OWN_BLOCK pairs at a time itself in between. Each worker reads the descriptors through its own cache,
 * matches (and with --verify own verifies) the pairs and sends the results
 * back; rank 0 writes each block in one transaction. The database gets the
 * rows a single run writes, in another order.
 *
 * Messages (MPI_COMM_WORLD):
 *   TAG_BLOCK  0 -> worker: uint64 (i, j) image indices per pair; none: stop
 *   TAG_RESULT worker -> 0: per pair, in the block's order, 5 uint64 (i, j,
 *              nm, ni, config), 9 float64 F, nm uint32 i1, nm i2, ni g1,
 *              ni g2
 * A rank that fails reports its error and the caller aborts the job
 * (MPI_Abort): the database stays as its last committed block left it.
 */
#define _POSIX_C_SOURCE 200809L
#include "colmap_app.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAG_BLOCK 1
#define TAG_RESULT 2
/* Pairs per message and per transaction: as a single run commits them. */
#define MPI_PAIR_BLOCK 16
/* Pairs rank 0 matches between looking for the workers' results. One
 * (about 25 ms): a result larger than Open MPI's eager limit (most blocks')
 * leaves its worker waiting in MPI_Send until rank 0 receives it (4 pairs
 * there: 2 ranks at 1.62x one rank; 1 pair: 1.74x). An MPI_Isend does not
 * help: the transfer then waits for the worker's next MPI call instead. */
#define OWN_BLOCK 1
/* Blocks a worker holds at once: the next is already queued while it
 * works on one, so it never waits for rank 0 to send it one. */
#define IN_FLIGHT 2

int mpi_start(int *argc, char ***argv, int *rank, int *size)
{
    *rank = 0;
    *size = 1;
    /* Only under a launcher: a plain run of an MPI build stays a plain
     * process (no singleton MPI start-up, no network probing). */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK"))
        return 0;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        error_line("MPI_Init failed");
        return -1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return 1;
}

void mpi_end(int started, int failed)
{
    if (!started)
        return;
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (failed && size > 1)
        MPI_Abort(MPI_COMM_WORLD, 1); /* the other ranks may wait for this one */
    MPI_Finalize();
}

int mpi_same_list(const image_list *list)
{
    unsigned long long n = list->n, n0 = n;
    MPI_Bcast(&n0, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    int bad = n0 != n, any;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (bad)
        error_line("this rank lists %llu images under the folder, rank 0 %llu: --images must be the same folder on "
                   "every machine", n, n0);
    return any ? -1 : 0;
}

int mpi_merge_unreadable(image_list *list)
{
    unsigned char *flags = malloc(list->n ? list->n : 1), *all = malloc(list->n ? list->n : 1);
    int oom = !flags || !all, any_oom;
    MPI_Allreduce(&oom, &any_oom, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any_oom) {
        free(flags);
        free(all);
        error_line("out of memory");
        return -1;
    }
    for (size_t i = 0; i < list->n; i++)
        flags[i] = (unsigned char)list->v[i].unreadable;
    MPI_Allreduce(flags, all, (int)list->n, MPI_UNSIGNED_CHAR, MPI_MAX, MPI_COMM_WORLD);
    for (size_t i = 0; i < list->n; i++)
        list->v[i].unreadable = all[i];
    free(flags);
    free(all);
    return 0;
}

int mpi_share_counts(image_list *list, size_t *max_kp)
{
    unsigned long long *v = malloc((list->n + 1) * sizeof *v);
    if (!v) {
        error_line("out of memory");
        return -1;
    }
    for (size_t i = 0; i < list->n; i++)
        v[i] = list->v[i].nkp;
    v[list->n] = *max_kp;
    MPI_Bcast(v, (int)list->n + 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    for (size_t i = 0; i < list->n; i++)
        list->v[i].nkp = (size_t)v[i];
    *max_kp = (size_t)v[list->n];
    free(v);
    return 0;
}

/* Send the next block of pairs (none: stop) to a worker; *next moves on.
 * Blocks shrink towards the end (a share of what is left per rank and
 * block in flight), so that no rank is left with a long block while the
 * others have nothing. Returns whether pairs were sent. */
static int send_block(const pair_list *pairs, size_t n_todo, size_t *next, int worker, int ranks)
{
    unsigned long long v[2 * MPI_PAIR_BLOCK];
    const size_t share = (n_todo - *next) / ((size_t)ranks * (IN_FLIGHT + 1));
    const int most = share >= MPI_PAIR_BLOCK ? MPI_PAIR_BLOCK : share < 1 ? 1 : (int)share;
    int n = 0;
    while (n < most && *next < n_todo) {
        v[2 * n] = pairs->v[*next][0];
        v[2 * n + 1] = pairs->v[*next][1];
        n++;
        ++*next;
    }
    MPI_Send(v, 2 * n, MPI_UNSIGNED_LONG_LONG, worker, TAG_BLOCK, MPI_COMM_WORLD);
    return n > 0;
}

/* Bounds-checked reader of a result message. */
typedef struct reader {
    const unsigned char *p, *end;
} reader;

static int take(reader *r, void *out, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return -1;
    memcpy(out, r->p, n);
    r->p += n;
    return 0;
}

/* Append n bytes to a growing message. 0 or -1 (out of memory). */
static int put(unsigned char **msg, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n)
            c *= 2;
        unsigned char *m = realloc(*msg, c);
        if (!m)
            return -1;
        *msg = m;
        *cap = c;
    }
    if (n)
        memcpy(*msg + *len, data, n);
    *len += n;
    return 0;
}

/* Match pairs (i, j) of v[0 .. 2n) through the cache and append their
 * results to *msg in TAG_RESULT's layout. 0 or -1 (reported). */
static int compute_pairs(context *ctx, const image_list *list, store_cache *cache, match_buffers *buf,
                         const unsigned long long *v, int n, unsigned char **msg, size_t *len, size_t *cap)
{
    for (int k = 0; k + 1 < n; k += 2) {
        if (v[k] >= list->n || v[k + 1] >= list->n) {
            error_line("a malformed block message from rank 0");
            return -1;
        }
        const store_entry *ea, *eb;
        if (store_cache_pair(cache, ctx, list, (size_t)v[k], (size_t)v[k + 1], &ea, &eb) != 0) {
            error_line("%s", ctx->err);
            return -1;
        }
        image_entry a = list->v[v[k]], b = list->v[v[k + 1]];
        a.kp = ea->kp;
        a.desc = ea->desc;
        b.kp = eb->kp;
        b.desc = eb->desc;
        pair_result res;
        if (pair_compute(ctx, &a, &b, buf, &res) != 0) {
            error_line("%s", ctx->err);
            return -1;
        }
        unsigned long long h[5] = {v[k], v[k + 1], res.nm, res.ni, (unsigned long long)res.config};
        if (put(msg, len, cap, h, sizeof h) || put(msg, len, cap, res.F, sizeof res.F) ||
            put(msg, len, cap, res.i1, res.nm * 4) || put(msg, len, cap, res.i2, res.nm * 4) ||
            put(msg, len, cap, res.g1, res.ni * 4) || put(msg, len, cap, res.g2, res.ni * 4)) {
            error_line("out of memory");
            return -1;
        }
    }
    return 0;
}

/* Write one result message in one transaction. 0 or -1 (reported). */
static int write_result(context *ctx, const image_list *list, const unsigned char *msg, size_t len,
                        match_buffers *buf, size_t max_kp, size_t *n_pairs, size_t *n_matches)
{
    reader rd = {msg, msg + len};
    if (colmap_db_begin(ctx->db, ctx->err, sizeof ctx->err) != 0) {
        error_line("%s: %s", ctx->o->database, ctx->err);
        return -1;
    }
    while (rd.p < rd.end) {
        unsigned long long h[5];
        pair_result res = {.i1 = buf->i1, .i2 = buf->i2, .g1 = buf->g1, .g2 = buf->g2};
        if (take(&rd, h, sizeof h) != 0 || h[0] >= list->n || h[1] >= list->n || h[2] > max_kp || h[3] > h[2] ||
            take(&rd, res.F, sizeof res.F) != 0 || take(&rd, res.i1, h[2] * 4) != 0 ||
            take(&rd, res.i2, h[2] * 4) != 0 || take(&rd, res.g1, h[3] * 4) != 0 ||
            take(&rd, res.g2, h[3] * 4) != 0) {
            error_line("a malformed result message from another rank");
            return -1;
        }
        res.nm = (size_t)h[2];
        res.ni = (size_t)h[3];
        res.config = (int)h[4];
        if (pair_write(ctx, &list->v[h[0]], &list->v[h[1]], &res) != 0) {
            error_line("%s: %s", ctx->o->database, ctx->err);
            return -1;
        }
        ++*n_pairs;
        *n_matches += res.nm;
    }
    if (colmap_db_commit(ctx->db, ctx->err, sizeof ctx->err) != 0) {
        error_line("%s: %s", ctx->o->database, ctx->err);
        return -1;
    }
    return 0;
}

int mpi_serve(context *ctx, const image_list *list, const pair_list *pairs, size_t n_todo, size_t max_kp,
              mn_cli_progress *progress, size_t *n_pairs, size_t *n_matches)
{
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    match_buffers buf = {0}, own_buf = {0};
    store_cache cache = {0};
    if (match_buffers_alloc(&buf, max_kp) != 0 || match_buffers_alloc(&own_buf, max_kp) != 0 ||
        store_cache_init(&cache, list->n, (size_t)ctx->o->cache_mb << 20) != 0) {
        match_buffers_free(&buf);
        match_buffers_free(&own_buf);
        return -1;
    }
    size_t next = 0;
    int active = 0, rc = 0; /* blocks sent and not yet answered */
    char *stopped = calloc((size_t)size, 1);
    if (!stopped) {
        error_line("out of memory");
        match_buffers_free(&buf);
        match_buffers_free(&own_buf);
        store_cache_free(&cache);
        return -1;
    }
    for (int k = 0; k < IN_FLIGHT; k++)
        for (int w = 1; w < size; w++)
            if (!stopped[w]) {
                int sent = send_block(pairs, n_todo, &next, w, size);
                active += sent;
                stopped[w] = !sent;
            }
    unsigned char *msg = NULL, *own = NULL;
    size_t cap = 0, own_cap = 0;
    /* Rank 0 matches too, OWN_BLOCK pairs at a time between the workers'
     * results, so that R ranks are R matchers; with no pairs left it waits
     * for the last results without spinning on a core a worker needs. */
    while (rc == 0 && (active > 0 || next < n_todo)) {
        MPI_Status st;
        int len, ready = 0;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &ready, &st);
        if (!ready && next < n_todo) {
            unsigned long long v[2 * OWN_BLOCK];
            int n = 0;
            for (; n < OWN_BLOCK && next < n_todo; n++, next++) {
                v[2 * n] = pairs->v[next][0];
                v[2 * n + 1] = pairs->v[next][1];
            }
            size_t own_len = 0;
            if (compute_pairs(ctx, list, &cache, &own_buf, v, 2 * n, &own, &own_len, &own_cap) != 0 ||
                write_result(ctx, list, own, own_len, &buf, max_kp, n_pairs, n_matches) != 0)
                rc = -1;
            mn_cli_progress_update(progress, "pairs", *n_pairs, n_todo, NULL);
            continue;
        }
        if (!ready) {
            nanosleep(&(struct timespec){0, 1000000}, NULL); /* 1 ms */
            continue;
        }
        MPI_Get_count(&st, MPI_BYTE, &len);
        if ((size_t)len > cap) {
            unsigned char *m = realloc(msg, (size_t)len);
            if (!m) {
                error_line("out of memory");
                rc = -1;
                break;
            }
            msg = m;
            cap = (size_t)len;
        }
        MPI_Recv(msg, len, MPI_BYTE, st.MPI_SOURCE, TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (write_result(ctx, list, msg, (size_t)len, &buf, max_kp, n_pairs, n_matches) != 0) {
            rc = -1;
            break;
        }
        mn_cli_progress_update(progress, "pairs", *n_pairs, n_todo, NULL);
        active--;
        if (!stopped[st.MPI_SOURCE]) {
            int sent = send_block(pairs, n_todo, &next, st.MPI_SOURCE, size);
            active += sent;
            stopped[st.MPI_SOURCE] = !sent;
        }
    }
    /* Workers not yet told to stop (rc != 0 leaves them to MPI_Abort). */
    for (int w = 1; rc == 0 && w < size; w++)
        if (!stopped[w])
            send_block(pairs, n_todo, &next, w, size);
    free(stopped);
    free(msg);
    free(own);
    match_buffers_free(&buf);
    match_buffers_free(&own_buf);
    store_cache_free(&cache);
    return rc;
}

int mpi_work(context *ctx, const image_list *list, size_t max_kp)
{
    store_cache cache = {0};
    match_buffers buf = {0};
    unsigned char *msg = NULL;
    size_t cap = 0;
    int rc = -1;
    if (store_cache_init(&cache, list->n, (size_t)ctx->o->cache_mb << 20) != 0 ||
        match_buffers_alloc(&buf, max_kp) != 0)
        goto done;
    for (;;) {
        unsigned long long v[2 * MPI_PAIR_BLOCK];
        MPI_Status st;
        int n;
        MPI_Recv(v, 2 * MPI_PAIR_BLOCK, MPI_UNSIGNED_LONG_LONG, 0, TAG_BLOCK, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, MPI_UNSIGNED_LONG_LONG, &n);
        if (n == 0)
            break;
        size_t len = 0;
        if (compute_pairs(ctx, list, &cache, &buf, v, n, &msg, &len, &cap) != 0)
            goto done;
        MPI_Send(msg, (int)len, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
    }
    rc = 0;
done:
    free(msg);
    match_buffers_free(&buf);
    store_cache_free(&cache);
    return rc;
}

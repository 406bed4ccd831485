/*
 * describe.c - the ways to descriptors: mn_describe_u8 and
 * mn_describe_f32 on patches, and mn_describe_keypoints and
 * mn_describe_keypoints_affine on an image's keypoints (patches cut by
 * patch.c, then described). Work is split over the session's threads.
 */
#include "common.h"
#include "patches.h"
#include "session.h"
#include "tower.h"
#include "kernels/blocked.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

/* ---- patches to descriptors ---- */

/* Blocks of MN_NB patches claimed one at a time by the session's threads:
 * a thread slowed by the rest of the machine takes fewer, instead of
 * holding the others at the end of a fixed half. Each block is described on
 * its own, as mn_tower_run would within a range, so the descriptors do not
 * depend on which thread took it, nor on the thread count. */
typedef struct mn_describe_job {
    const mn_model *m;
    int reference;
    size_t n;
    atomic_size_t next;
    /* Patches given (px8 / pxf), or cut here per block from pyr into each
     * thread's own MN_NB patches of cut. */
    const uint8_t *px8;
    const float *pxf;
    const mn_pyramid *pyr;
    const mn_keypoint *kps;
    const mn_affine_keypoint *akps;
    const mn_extract_params *p;
    uint8_t *cut;
    float *desc;
} mn_describe_job;

static void mn_describe_task(void *ctx, mn_scratch *scratch, int thread, size_t begin, size_t end)
{
    mn_describe_job *j = ctx;
    const size_t pp = (size_t)j->m->patch * j->m->patch;
    (void)begin, (void)end;
    for (;;) {
        const size_t b = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed) * MN_NB;
        if (b >= j->n)
            return;
        const size_t e = j->n - b < MN_NB ? j->n : b + MN_NB;
        float *desc = j->desc + b * j->m->desc_dim;
        if (j->pyr) {
            uint8_t *px = j->cut + (size_t)thread * MN_NB * pp;
            mn_pyramid_sample(j->pyr, j->kps ? j->kps + b : NULL, j->akps ? j->akps + b : NULL, e - b, j->p, px);
            mn_tower_run(j->m, scratch, j->reference, px, NULL, 0, e - b, desc);
        } else {
            mn_tower_run(j->m, scratch, j->reference, j->px8 ? j->px8 + b * pp : NULL,
                         j->pxf ? j->pxf + b * pp : NULL, 0, e - b, desc);
        }
    }
}

/* Runs j (m, n and the sources set) over the session's threads. */
static void mn_describe_blocks(mn_session *s, mn_describe_job *j)
{
    j->reference = mn_session_reference(s);
    atomic_init(&j->next, 0);
    const size_t blocks = (j->n + MN_NB - 1) / MN_NB;
    const size_t threads = (size_t)mn_session_threads(s);
    mn_session_parallel(s, mn_describe_task, j, blocks < threads ? blocks : threads, 1);
}

static void mn_split_task(void *ctx, mn_scratch *scratch, int thread, size_t begin, size_t end)
{
    (void)thread, (void)begin, (void)end;
    mn_tower_split_work(ctx, scratch);
}

static mn_status mn_describe(const char *fn, mn_session *s, const uint8_t *px8, const float *pxf,
                             size_t n, float *desc)
{
    if (!s)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    if (n == 0)
        return MN_OK;
    if (!(px8 || pxf) || !desc)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", desc ? "patches" : "descriptors");
    const mn_model *m = mn_session_model(s);
    size_t pp = (size_t)m->patch * m->patch;
    if (n > SIZE_MAX / sizeof(float) / (pp > m->desc_dim ? pp : m->desc_dim))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "n = %zu patches is too large", n);
    /* NaN and infinite pixels come out of the ReLUs and max-pools as
     * ordinary numbers: a plausible descriptor of nothing. */
    for (size_t i = 0; pxf && i < n * pp; i++)
        if (!isfinite(pxf[i]))
            return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "patch %zu: pixel (%zu, %zu) is not finite", i / pp,
                            i % pp % (size_t)m->patch, i % pp / (size_t)m->patch);
    const int threads = mn_session_threads(s);
    if (n < MN_NB / 2 && threads > 1 && !mn_session_reference(s)) {
        /* Too few patches to give each thread its own: the threads share
         * the layers of one chunk instead (the same numbers). */
        mn_tower_split split;
        mn_tower_split_init(&split, m, px8, pxf, (int)n, desc, threads);
        mn_session_parallel(s, mn_split_task, &split, (size_t)threads, 1);
        return MN_OK;
    }
    /* Blocks start at multiples of MN_NB whatever the thread count: each
     * patch takes the same path, and the results are bit-identical for any
     * number of threads. */
    mn_describe_job job = {.m = m, .n = n, .px8 = px8, .pxf = pxf, .desc = desc};
    mn_describe_blocks(s, &job);
    return MN_OK;
}

mn_status mn_describe_u8(mn_session *s, const uint8_t *patches, size_t n, float *desc)
{
    return mn_describe("mn_describe_u8", s, patches, NULL, n, desc);
}

mn_status mn_describe_f32(mn_session *s, const float *patches, size_t n, float *desc)
{
    return mn_describe("mn_describe_f32", s, NULL, patches, n, desc);
}

/* ---- keypoints to descriptors ---- */

/* Patches cut per task of the session's threads (calls of fewer than MN_NB / 2). */
#define MN_CUT_GRAIN 16

typedef struct mn_cut_job {
    const mn_pyramid *pyr;
    const mn_keypoint *kps;
    const mn_affine_keypoint *akps;
    const mn_extract_params *p;
    uint8_t *patches;
} mn_cut_job;

static void mn_cut_task(void *ctx, mn_scratch *scratch, int thread, size_t begin, size_t end)
{
    const mn_cut_job *j = ctx;
    const size_t pp = (size_t)j->p->patch_size * (size_t)j->p->patch_size;
    (void)scratch, (void)thread;
    mn_pyramid_sample(j->pyr, j->kps ? j->kps + begin : NULL, j->akps ? j->akps + begin : NULL, end - begin, j->p,
                      j->patches + begin * pp);
}

/* Either kind of keypoint (exactly one of kps and akps is used). */
static mn_status mn_describe_kps(const char *fn, mn_session *s, const uint8_t *image, int width, int height,
                                 size_t stride, const mn_keypoint *kps, const mn_affine_keypoint *akps, size_t n,
                                 const mn_extract_params *params, float *desc)
{
    if (!s)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    if (n == 0)
        return MN_OK;
    if (!(kps || akps) || !desc)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", (kps || akps) ? "descriptors" : "keypoints");
    const mn_model *m = mn_session_model(s);
    mn_extract_params p = params ? *params : mn_extract_params_default();
    if (p.patch_size != m->patch)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "patch_size = %d, the model takes %d", p.patch_size,
                        m->patch);
    const size_t pp = (size_t)m->patch * (size_t)m->patch;
    if (n > SIZE_MAX / sizeof(float) / (pp > m->desc_dim ? pp : m->desc_dim))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "n = %zu keypoints is too large", n);
    /* The pyramid once for all keypoints. */
    mn_pyramid pyr;
    mn_status st = mn_pyramid_init(fn, image, width, height, stride, kps, akps, n, &p, &pyr);
    if (st != MN_OK)
        return st;
    /* Too few for a block: cut them all, then the threads share the layers
     * of the one block (mn_describe). Else each block of MN_NB keypoints is
     * cut and described by the thread that takes it, while its patches are
     * still in that core's cache, into the thread's own MN_NB patches. */
    const int small = n < MN_NB / 2;
    const size_t held = small ? n : (size_t)mn_session_threads(s) * MN_NB;
    uint8_t *patches = mn_malloc(held * pp);
    if (!patches) {
        mn_pyramid_release(&pyr);
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu patches", held);
    }
    if (small) {
        mn_cut_job job = {&pyr, kps, akps, &p, patches};
        mn_session_parallel(s, mn_cut_task, &job, n, MN_CUT_GRAIN);
        st = mn_describe_u8(s, patches, n, desc);
    } else {
        mn_describe_job job = {.m = m, .n = n, .pyr = &pyr, .kps = kps, .akps = akps, .p = &p, .cut = patches,
                               .desc = desc};
        mn_describe_blocks(s, &job);
    }
    mn_free(patches);
    mn_pyramid_release(&pyr);
    return st;
}

mn_status mn_describe_keypoints(mn_session *s, const uint8_t *image, int width, int height, size_t stride,
                                const mn_keypoint *kps, size_t n, const mn_extract_params *params,
                                float *desc)
{
    return mn_describe_kps("mn_describe_keypoints", s, image, width, height, stride, kps, NULL, n, params, desc);
}

mn_status mn_describe_keypoints_affine(mn_session *s, const uint8_t *image, int width, int height, size_t stride,
                                       const mn_affine_keypoint *kps, size_t n, const mn_extract_params *params,
                                       float *desc)
{
    if (s && n && !kps)
        return mn_error(MN_ERR_INVALID_ARGUMENT, "mn_describe_keypoints_affine", "keypoints is NULL");
    return mn_describe_kps("mn_describe_keypoints_affine", s, image, width, height, stride, NULL, kps, n, params,
                           desc);
}

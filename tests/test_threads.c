/*
 * test_threads.c - one model shared by several threads, each with its own
 * session, gives results identical to a single-threaded run; so does a
 * session that splits its work over several threads.
 */
#include "matchnet.h"
#include "check.h"

#include <pthread.h>
#include <stdint.h>

#define NPATCH 37
#define NTHREADS 4
#define ROUNDS 3

static const mn_model *model;
static uint8_t patches[NPATCH * 64 * 64];
static mn_pair pairs[NPATCH * 5];
static size_t D;
static float *want_desc, *want_prob;

typedef struct worker {
    int id, failures;
    char msg[256];
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = 1;
    mn_session *s = NULL;
    if (mn_session_create(model, &sp, &s) != MN_OK) {
        snprintf(w->msg, sizeof w->msg, "session: %s", mn_last_error());
        w->failures++;
        return NULL;
    }
    float *desc = malloc(NPATCH * D * sizeof(float)), prob[NPATCH * 5];
    for (int r = 0; r < ROUNDS; r++) {
        if (mn_describe_u8(s, patches, NPATCH, desc) != MN_OK ||
            mn_metric_score_pairs(s, desc, NPATCH, desc, NPATCH, pairs, NPATCH * 5, prob) != MN_OK) {
            snprintf(w->msg, sizeof w->msg, "call failed: %s", mn_last_error());
            w->failures++;
            break;
        }
        if (memcmp(desc, want_desc, NPATCH * D * sizeof(float)) ||
            memcmp(prob, want_prob, sizeof prob)) {
            size_t wd, wp;
            double ed = max_abs_diff(desc, want_desc, NPATCH * D, &wd);
            double ep = max_abs_diff(prob, want_prob, NPATCH * 5, &wp);
            snprintf(w->msg, sizeof w->msg,
                     "round %d: results differ from the single-threaded run (descriptor %zu by %.3g, "
                     "probability %zu by %.3g)", r, wd, ed, wp, ep);
            w->failures++;
        }
    }
    free(desc);
    mn_session_free(s);
    return NULL;
}

int main(void)
{
    mn_model *m = NULL;
    CHECK_OK(mn_model_load_file(MN_TEST_DATA "/golden_original.mnw", &m));
    if (!m)
        return check_summary("test_threads");
    model = m;
    D = mn_model_descriptor_dim(m);
    unsigned seed = 99;
    for (size_t i = 0; i < sizeof patches; i++) {
        seed = seed * 1103515245u + 12345u;
        patches[i] = (uint8_t)((i % 64) * 2 + ((seed >> 16) & 63));
    }
    for (int k = 0; k < NPATCH * 5; k++) {
        pairs[k].a = (uint32_t)(k / 5);
        pairs[k].b = (uint32_t)((k * 13 + 1) % NPATCH);
    }
    want_desc = malloc(NPATCH * D * sizeof(float));
    want_prob = malloc(NPATCH * 5 * sizeof(float));

    /* Single-threaded baseline. */
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = 1;
    mn_session *s = NULL;
    CHECK_OK(mn_session_create(m, &sp, &s));
    CHECK_OK(mn_describe_u8(s, patches, NPATCH, want_desc));
    CHECK_OK(mn_metric_score_pairs(s, want_desc, NPATCH, want_desc, NPATCH, pairs, NPATCH * 5, want_prob));
    mn_session_free(s);

    /* A session with 3 threads splits the batch: identical results. */
    float *desc = malloc(NPATCH * D * sizeof(float)), prob[NPATCH * 5];
    sp.num_threads = 3;
    CHECK_OK(mn_session_create(m, &sp, &s));
    CHECK_OK(mn_describe_u8(s, patches, NPATCH, desc));
    CHECK_OK(mn_metric_score_pairs(s, desc, NPATCH, desc, NPATCH, pairs, NPATCH * 5, prob));
    CHECK(memcmp(desc, want_desc, NPATCH * D * sizeof(float)) == 0, "3-thread session: descriptors differ");
    CHECK(memcmp(prob, want_prob, sizeof prob) == 0, "3-thread session: probabilities differ");
    mn_session_free(s);

    /* Several threads, one shared model, one session each. */
    pthread_t tid[NTHREADS];
    worker w[NTHREADS];
    memset(w, 0, sizeof w);
    for (int t = 0; t < NTHREADS; t++) {
        w[t].id = t;
        CHECK(pthread_create(&tid[t], NULL, run, &w[t]) == 0, "pthread_create %d", t);
    }
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(tid[t], NULL);
        CHECK(w[t].failures == 0, "thread %d: %s", t, w[t].msg);
    }
    free(desc);
    free(want_desc);
    free(want_prob);
    mn_model_free(m);
    return check_summary("test_threads");
}

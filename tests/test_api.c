/*
 * test_api.c - status codes and messages, version, argument checks, and
 * that failures leave outputs NULL and messages per thread.
 */
#define _POSIX_C_SOURCE 200809L
#include "matchnet.h"
#include "check.h"

#include <pthread.h>
#include <stdint.h>

static void *other_thread(void *arg)
{
    (void)arg;
    mn_model *m = NULL;
    mn_model_load_file("/nonexistent/other-thread.mnw", &m);
    return NULL;
}

int main(void)
{
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", MN_VERSION_MAJOR, MN_VERSION_MINOR, MN_VERSION_PATCH);
    CHECK(strcmp(mn_version_string(), v) == 0, "version %s vs %s", mn_version_string(), v);
    CHECK(strcmp(mn_status_str(MN_OK), "MN_OK") == 0, "MN_OK name");
    CHECK(strcmp(mn_status_str(MN_ERR_CHECKSUM), "MN_ERR_CHECKSUM") == 0, "checksum name");
    CHECK(strcmp(mn_status_str((mn_status)99), "MN_ERR_UNKNOWN") == 0, "unknown status name");
    CHECK(mn_last_error() != NULL && mn_last_error()[0] == '\0', "no error yet: '%s'", mn_last_error());
    CHECK(mn_blas_info() != NULL && mn_blas_info()[0] != '\0', "blas info");
    printf("BLAS: %s\n", mn_blas_info());

    mn_model *m = NULL;
    CHECK_OK(mn_model_load_file(MN_TEST_DATA "/golden_bottleneck.mnw", &m));
    if (!m)
        return check_summary("test_api");

    /* Messages are per thread: a failure elsewhere does not touch ours. */
    mn_model *bad = NULL;
    CHECK(mn_model_load_file("/nonexistent/this-thread.mnw", &bad) == MN_ERR_IO, "missing file");
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    CHECK(strstr(mn_last_error(), "this-thread") != NULL, "message replaced by another thread's: %s",
          mn_last_error());

    mn_session *s = (mn_session *)(uintptr_t)1;
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = -1;
    CHECK(mn_session_create(m, &sp, &s) == MN_ERR_INVALID_ARGUMENT && s == NULL, "negative threads");
    CHECK(mn_session_create(NULL, NULL, &s) == MN_ERR_INVALID_ARGUMENT && s == NULL, "NULL model");
    CHECK(mn_session_create(m, NULL, NULL) == MN_ERR_INVALID_ARGUMENT, "NULL out");
    CHECK(mn_set_num_threads(0) == MN_ERR_INVALID_ARGUMENT, "0 threads");
    CHECK(strstr(mn_last_error(), "mn_set_num_threads(): n = 0") != NULL, "%s", mn_last_error());
    CHECK_OK(mn_session_create(m, NULL, &s));

    const size_t D = mn_model_descriptor_dim(m), F = mn_model_projection_dim(m);
    uint8_t px[2 * 64 * 64];
    memset(px, 100, sizeof px);
    float *desc = calloc(2 * D, sizeof(float)), *proj = calloc(2 * F, sizeof(float)), prob[4];
    CHECK(mn_describe_u8(NULL, px, 1, desc) == MN_ERR_INVALID_ARGUMENT, "NULL session");
    CHECK(mn_describe_u8(s, NULL, 1, desc) == MN_ERR_INVALID_ARGUMENT, "NULL patches");
    CHECK(strstr(mn_last_error(), "mn_describe_u8(): patches is NULL") != NULL, "%s", mn_last_error());
    CHECK(mn_describe_u8(s, px, 1, NULL) == MN_ERR_INVALID_ARGUMENT, "NULL descriptors");
    CHECK(mn_describe_u8(s, px, SIZE_MAX / 2, desc) == MN_ERR_INVALID_ARGUMENT, "absurd n");
    CHECK_OK(mn_describe_u8(s, NULL, 0, NULL)); /* nothing to do */
    CHECK_OK(mn_describe_u8(s, px, 2, desc));

    mn_pair pairs[2] = {{0, 1}, {1, 2}};
    CHECK(mn_metric_score_pairs(s, desc, 2, desc, 2, pairs, 2, prob) == MN_ERR_INVALID_ARGUMENT,
          "pair index out of range");
    CHECK(strstr(mn_last_error(), "pair 1 = (1, 2) is outside 2 x 2") != NULL, "%s", mn_last_error());
    CHECK(mn_metric_score_pairs(s, desc, 0, desc, 2, pairs, 1, prob) == MN_ERR_INVALID_ARGUMENT, "empty set A");
    CHECK(mn_metric_score_pairs(s, desc, 2, desc, 2, NULL, 1, prob) == MN_ERR_INVALID_ARGUMENT, "NULL pairs");
    CHECK_OK(mn_metric_score_pairs(s, desc, 2, desc, 2, pairs, 0, NULL)); /* no pairs: nothing to do */
    CHECK(mn_metric_score_all(s, desc, 2, desc, 0, prob) == MN_ERR_INVALID_ARGUMENT, "empty set B");
    CHECK(mn_metric_project(s, desc, 2, (mn_side)5, proj) == MN_ERR_INVALID_ARGUMENT, "bad side");
    CHECK(mn_metric_score_projected(s, proj, 1, proj, 1, pairs, 1, prob) == MN_ERR_INVALID_ARGUMENT,
          "projected index out of range");

    /* The low-level two-stage calls agree with the one-call version. */
    float prob2[4];
    mn_pair all[4] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    CHECK_OK(mn_metric_project(s, desc, 2, MN_SIDE_A, proj));
    float *proj_b = calloc(2 * F, sizeof(float));
    CHECK_OK(mn_metric_project(s, desc, 2, MN_SIDE_B, proj_b));
    CHECK_OK(mn_metric_score_projected(s, proj, 2, proj_b, 2, all, 4, prob));
    CHECK_OK(mn_metric_score_all(s, desc, 2, desc, 2, prob2));
    CHECK(memcmp(prob, prob2, sizeof prob) == 0, "projected vs score_all");
    free(proj_b);

    /* The default model: MATCHNET_MODEL wins, and a bad one is named. */
    setenv("MATCHNET_MODEL", MN_TEST_DATA "/golden_bottleneck.mnw", 1);
    mn_model *dm = NULL;
    CHECK_OK(mn_model_load_default(&dm));
    CHECK(dm && strcmp(mn_model_name(dm), "golden-bottleneck") == 0, "default model from MATCHNET_MODEL");
    mn_model_free(dm);
    setenv("MATCHNET_MODEL", "/nonexistent/x.mnw", 1);
    CHECK(mn_model_load_default(&dm) == MN_ERR_IO && dm == NULL, "bad MATCHNET_MODEL");
    CHECK(strstr(mn_last_error(), "mn_model_load_default(): MATCHNET_MODEL=/nonexistent/x.mnw: "
                                  "mn_model_load_file(): cannot open") != NULL, "%s", mn_last_error());
    unsetenv("MATCHNET_MODEL");
    CHECK(mn_default_model_path()[0] == '/', "installed model path %s", mn_default_model_path());

    /* Queries on NULL do not crash. */
    CHECK(mn_model_descriptor_dim(NULL) == 0 && mn_model_patch_size(NULL) == 0, "NULL model queries");
    mn_session_free(NULL);
    mn_model_free(NULL);

    free(desc);
    free(proj);
    mn_session_free(s);
    mn_model_free(m);
    return check_summary("test_api");
}

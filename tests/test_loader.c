/*
 * test_loader.c - the model loader refuses every kind of broken file with
 * the right status and a precise message, and never crashes: truncation,
 * wrong magic, future version, checksum, shape and architecture mismatches,
 * absurd sizes, tensors outside the file, non-finite weights, plus a sweep
 * of truncations and random corruptions (run under ASan/UBSan in CI).
 */
#include "crc32.h"
#include "matchnet.h"
#include "check.h"

#include <stdint.h>

static uint8_t *base;
static size_t base_size;

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void fix_crc(uint8_t *d, size_t size)
{
    put32(d + size - 4, mn_crc32(d, size - 4));
}

static uint8_t *copy_base(void)
{
    uint8_t *d = malloc(base_size);
    memcpy(d, base, base_size);
    return d;
}

/* Offset of tensor record t. */
static size_t tensor_rec(const uint8_t *d, int t)
{
    return 128 + 32 * (size_t)(get32(d + 24) + get32(d + 28)) + 64 * (size_t)t;
}

/* Load d and expect status st with msg in the message. */
static void expect(const char *what, const uint8_t *d, size_t size, mn_status st, const char *msg)
{
    mn_model *m = (mn_model *)(uintptr_t)1; /* must come back NULL */
    mn_status got = mn_model_load_memory(d, size, &m);
    CHECK(got == st, "%s: status %s, expected %s (%s)", what, mn_status_str(got), mn_status_str(st),
          mn_last_error());
    CHECK(m == NULL, "%s: *out not NULL after failure", what);
    CHECK(strstr(mn_last_error(), msg) != NULL, "%s: message '%s' lacks '%s'", what, mn_last_error(), msg);
    CHECK(strncmp(mn_last_error(), "mn_model_load_memory(): ", 24) == 0, "%s: message not prefixed: %s", what,
          mn_last_error());
    if (got == MN_OK)
        mn_model_free(m);
}

int main(void)
{
    base = read_file(MN_TEST_DATA "/golden_bottleneck.mnw", &base_size);
    if (!base) {
        fprintf(stderr, "cannot read %s\n", MN_TEST_DATA "/golden_bottleneck.mnw");
        return 1;
    }
    mn_model *m = NULL;
    CHECK_OK(mn_model_load_memory(base, base_size, &m));
    CHECK(m && mn_model_descriptor_dim(m) == 96 && mn_model_feature_dim(m) == 4096 &&
              mn_model_projection_dim(m) == 192 && mn_model_patch_size(m) == 64,
          "bottleneck model dims");
    CHECK(m && strcmp(mn_model_name(m), "golden-bottleneck") == 0, "name '%s'", m ? mn_model_name(m) : "");
    float mean = 0, div = 0;
    mn_model_normalization(m, &mean, &div);
    CHECK(mean == 128.0f && div == 160.0f, "normalisation %f %f", mean, div);
    mn_model_free(m);

    uint8_t *d;
    /* Truncated: declared size no longer matches. */
    expect("truncated", base, base_size - 100, MN_ERR_FORMAT, "truncated");
    expect("too short", base, 20, MN_ERR_FORMAT, "too short");
    expect("empty", base, 0, MN_ERR_FORMAT, "too short");
    /* Trailing bytes. */
    d = malloc(base_size + 8);
    memcpy(d, base, base_size);
    memset(d + base_size, 0, 8);
    expect("trailing data", d, base_size + 8, MN_ERR_FORMAT, "trailing");
    free(d);

    d = copy_base();
    d[0] = 'X';
    expect("wrong magic", d, base_size, MN_ERR_FORMAT, "bad magic");
    free(d);

    d = copy_base();
    put32(d + 8, 2);
    fix_crc(d, base_size);
    expect("future version", d, base_size, MN_ERR_VERSION, "version 2");
    free(d);

    d = copy_base();
    d[base_size / 2] ^= 0x40;
    expect("checksum", d, base_size, MN_ERR_CHECKSUM, "checksum mismatch");
    free(d);

    /* Shape mismatch with the same byte count: conv1 weight [64,24,5,5] -> [24,64,5,5]. */
    d = copy_base();
    size_t r = tensor_rec(d, 2);
    put32(d + r + 32, 24);
    put32(d + r + 36, 64);
    fix_crc(d, base_size);
    expect("shape mismatch", d, base_size, MN_ERR_FORMAT, "shape [24,64,5,5], expected [64,24,5,5]");
    free(d);

    /* Architecture says conv2 has 97 channels, the tensors say 96. */
    d = copy_base();
    put32(d + 128 + 32 * 4 + 4, 97);
    fix_crc(d, base_size);
    expect("architecture mismatch", d, base_size, MN_ERR_FORMAT, "tower layer 4 (conv) weight: shape [96,64,3,3], expected [97,64,3,3]");
    free(d);

    /* Absurd tensor size: 2^60 elements. */
    d = copy_base();
    r = tensor_rec(d, 0);
    put32(d + r + 28, 4);
    put32(d + r + 32, 1u << 20);
    put32(d + r + 36, 1u << 20);
    put32(d + r + 40, 1u << 20);
    put32(d + r + 44, 1);
    put64(d + r + 56, 1ull << 62);
    fix_crc(d, base_size);
    expect("absurd tensor", d, base_size, MN_ERR_FORMAT, "absurd size");
    free(d);

    /* Absurd tensor size just over 2^40 elements with a matching byte count. */
    d = copy_base();
    r = tensor_rec(d, 0);
    put32(d + r + 28, 2);
    put32(d + r + 32, 1u << 20);
    put32(d + r + 36, 1u << 21);
    put64(d + r + 56, 4ull << 41);
    fix_crc(d, base_size);
    expect("2^41 elements", d, base_size, MN_ERR_FORMAT, "absurd size");
    free(d);

    /* Absurd architecture: 2^31 output channels. */
    d = copy_base();
    put32(d + 128 + 4, 0x80000000u);
    fix_crc(d, base_size);
    expect("absurd channels", d, base_size, MN_ERR_FORMAT, "output channels");
    free(d);

    /* Tensor data past the end of the file. */
    d = copy_base();
    r = tensor_rec(d, 3);
    put64(d + r + 48, base_size - 8);
    fix_crc(d, base_size);
    expect("tensor outside file", d, base_size, MN_ERR_FORMAT, "lies outside");
    free(d);

    /* Fewer tensors than the architecture needs. */
    d = copy_base();
    put32(d + 32, get32(d + 32) - 1);
    fix_crc(d, base_size);
    expect("tensor count", d, base_size, MN_ERR_FORMAT, "tensors, the architecture needs");
    free(d);

    /* Unknown layer type. */
    d = copy_base();
    put32(d + 128 + 32, 9);
    fix_crc(d, base_size);
    expect("unknown layer", d, base_size, MN_ERR_FORMAT, "unknown layer type 9");
    free(d);

    /* A NaN weight. */
    d = copy_base();
    r = tensor_rec(d, 0);
    put32(d + get32(d + r + 48) + 8, 0x7FC00000u);
    fix_crc(d, base_size);
    expect("nan weight", d, base_size, MN_ERR_FORMAT, "not finite");
    free(d);

    /* Last metric layer with 3 outputs. */
    d = copy_base();
    {
        uint32_t nl = get32(d + 24), nm = get32(d + 28);
        put32(d + 128 + 32 * (nl + nm - 1) + 4, 3);
    }
    fix_crc(d, base_size);
    expect("metric outputs", d, base_size, MN_ERR_FORMAT, "2 outputs");
    free(d);

    /* Zero normalisation divisor. */
    d = copy_base();
    put32(d + 116, 0);
    fix_crc(d, base_size);
    expect("divisor", d, base_size, MN_ERR_FORMAT, "normalisation");
    free(d);

    /* Files and arguments. */
    mn_model *mm = (mn_model *)(uintptr_t)1;
    CHECK(mn_model_load_file("/nonexistent/model.mnw", &mm) == MN_ERR_IO && mm == NULL, "missing file: %s",
          mn_last_error());
    CHECK(strstr(mn_last_error(), "mn_model_load_file(): cannot open '/nonexistent/model.mnw'") != NULL, "%s",
          mn_last_error());
    CHECK(mn_model_load_file(MN_TEST_DATA, &mm) == MN_ERR_IO && mm == NULL, "directory: %s", mn_last_error());
    CHECK(strstr(mn_last_error(), "is not a regular file") != NULL, "%s", mn_last_error());
    CHECK(mn_model_load_file(NULL, &mm) == MN_ERR_INVALID_ARGUMENT, "NULL path");
    CHECK(mn_model_load_memory(NULL, 10, &mm) == MN_ERR_INVALID_ARGUMENT, "NULL data");
    CHECK(mn_model_load_memory(base, base_size, NULL) == MN_ERR_INVALID_ARGUMENT, "NULL out");
    mn_model_free(NULL);

    /* Every truncation point in the header region, then a sample beyond. */
    int ok_count = 0;
    for (size_t len = 0; len < base_size; len += len < 2048 ? 1 : 4093) {
        mn_model *t = NULL;
        if (mn_model_load_memory(base, len, &t) == MN_OK)
            ok_count++;
        mn_model_free(t);
    }
    CHECK(ok_count == 0, "%d truncated files were accepted", ok_count);

    /* Random corruptions of the header and records, with the checksum
     * repaired so that the structural checks are what is exercised. */
    unsigned seed = 7;
    size_t header = get32(base + 12);
    int accepted = 0;
    for (int it = 0; it < 1000; it++) {
        d = copy_base();
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = 8 + (seed >> 8) % (header - 8);
            seed = seed * 1103515245u + 12345u;
            d[pos] = (uint8_t)(seed >> 16);
        }
        fix_crc(d, base_size);
        mn_model *t = NULL;
        mn_status st = mn_model_load_memory(d, base_size, &t);
        if (st == MN_OK) {
            accepted++;
            /* Whatever it accepted must be usable. */
            mn_session *s = NULL;
            if (mn_session_create(t, NULL, &s) == MN_OK) {
                int p = mn_model_patch_size(t);
                uint8_t *px = calloc((size_t)p * p, 1);
                float *desc = malloc(mn_model_descriptor_dim(t) * sizeof(float));
                mn_describe_u8(s, px, 1, desc);
                free(px);
                free(desc);
            }
            mn_session_free(s);
        } else {
            CHECK(t == NULL && mn_last_error()[0] != '\0', "corruption %d: no message or leaked handle", it);
        }
        mn_model_free(t);
        free(d);
    }
    printf("random header corruptions: %d of 1000 accepted (changes to names or padding only)\n", accepted);
    free(base);
    return check_summary("test_loader");
}

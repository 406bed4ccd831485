/*
 * test_colmap_store.c - matchnet-colmap's descriptor store
 * (apps/colmap_store.c) on its own: float16 rounding against numpy's
 * float16 (the table below, from numpy 1.24: np.float32(np.float16(x)),
 * except that values beyond the range saturate to +-65504 where numpy
 * gives infinity, as the store documents); a file written and read back
 * (keypoints exact, descriptors rounded), also with --affine's ellipses;
 * and the files it must treat as absent: other settings (--affine or not
 * among them), another model, another image file, a truncated file, a
 * flipped byte; and the LRU cache within its budget.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "colmap_app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const float half_table[][2] = {
    {1.0, 1.0},
    {1.00048828125, 1.0},
    {1.00146484375, 1.001953125},
    {1.0004892349243164, 1.0009765625},
    {65504.0, 65504.0},
    {65519.0, 65504.0},
    {65520.0, 65504.0},
    {1000000000.0, 65504.0},
    {-1000000000.0, -65504.0},
    {6.0999998822808266e-05, 6.097555160522461e-05},
    {5.960464477539063e-08, 5.960464477539063e-08},
    {2.9802322387695312e-08, 0.0},
    {2.9831426218152046e-08, 5.960464477539063e-08},
    {4.470348358154297e-08, 5.960464477539063e-08},
    {9.99999993922529e-09, 0.0},
    {-0.0, -0.0},
    {0.10000000149011612, 0.0999755859375},
    {-3.1415927410125732, -3.140625},
    {0.012345679104328156, 0.0123443603515625},
    {1234.5677490234375, 1235.0},
    {6.102025508880615e-05, 6.103515625e-05},
};

#define NKP 37
#define DIM 8

/* Overwrite one byte of a file. */
static void poke(const char *path, long at, unsigned char xor_mask)
{
    FILE *f = fopen(path, "r+b");
    if (!f)
        return;
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ xor_mask, f);
    fclose(f);
}

static char *only_file(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls '%s'/*.mnd 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    static char line[512];
    line[0] = '\0';
    if (p) {
        if (!fgets(line, sizeof line, p))
            line[0] = '\0';
        pclose(p);
    }
    line[strcspn(line, "\n")] = '\0';
    return line;
}

int main(void)
{
    for (size_t k = 0; k < sizeof half_table / sizeof *half_table; k++) {
        float got = store_half_round(half_table[k][0]);
        CHECK(memcmp(&got, &half_table[k][1], sizeof got) == 0, "half(%.9g) = %.9g, numpy %.9g", half_table[k][0],
              got, half_table[k][1]);
    }
    CHECK(isnan(store_half_round(NAN)), "NaN does not stay NaN");

    char tmp[] = "/tmp/test_colmap_store.XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    char images[128], store[128], img[160], cmd[256];
    snprintf(images, sizeof images, "%s/images", tmp);
    snprintf(store, sizeof store, "%s/store", tmp);
    snprintf(img, sizeof img, "%s/sub/a.png", images);
    mkdir(images, 0777);
    snprintf(cmd, sizeof cmd, "%s/sub", images);
    mkdir(cmd, 0777);
    mkdir(store, 0777);
    FILE *f = fopen(img, "w");
    fputs("pixels", f);
    fclose(f);

    options o = {.images = images, .store = store, .max_keypoints = 100, .max_size = 0, .cache_mb = 0};
    context ctx = {.o = &o, .dim = DIM, .model_id = 42};
    ctx.ep = mn_extract_params_default();
    mn_keypoint kp[NKP];
    float desc[NKP * DIM];
    uint32_t s = 7;
    for (int i = 0; i < NKP; i++) {
        kp[i] = (mn_keypoint){i * 1.25f, 300.0f - i, 2.0f + i * 0.1f, (float)(i * 9)};
        for (int d = 0; d < DIM; d++) {
            s = s * 1664525u + 1013904223u;
            desc[i * DIM + d] = (float)(s >> 8) / (1 << 24) * 4.0f - 1.0f;
        }
    }
    store_entry e = {.kp = kp, .desc = desc, .nkp = NKP, .width = 640, .height = 480}, r;
    CHECK(store_write(&ctx, "sub/a.png", &e) == 0, "store_write: %s", ctx.err);
    CHECK(store_read(&ctx, "sub/a.png", 0, &r) == 1, "written file not read back");
    if (r.kp) {
        CHECK(r.nkp == NKP && r.width == 640 && r.height == 480, "counts %zu %d %d", r.nkp, r.width, r.height);
        CHECK(memcmp(r.kp, kp, sizeof kp) == 0, "keypoints changed");
        int bad = 0;
        for (int i = 0; i < NKP * DIM; i++)
            bad += r.desc[i] != store_half_round(desc[i]);
        CHECK(bad == 0, "%d descriptor values are not their float16 rounding", bad);
    }
    store_entry_free(&r);
    CHECK(store_read(&ctx, "sub/a.png", 1, &r) == 1 && r.nkp == NKP && !r.desc, "header-only read");
    CHECK(store_read(&ctx, "sub/b.png", 0, &r) == 0, "an image without a file was found");

    /* Other settings, model or image file: absent. */
    o.max_keypoints = 101;
    CHECK(store_read(&ctx, "sub/a.png", 1, &r) == 0, "another --max-keypoints accepted");
    o.max_keypoints = 100;
    ctx.model_id = 43;
    CHECK(store_read(&ctx, "sub/a.png", 1, &r) == 0, "another model accepted");
    ctx.model_id = 42;
    f = fopen(img, "a");
    fputs("more", f);
    fclose(f);
    CHECK(store_read(&ctx, "sub/a.png", 1, &r) == 0, "a changed image file accepted");
    CHECK(store_write(&ctx, "sub/a.png", &e) == 0 && store_read(&ctx, "sub/a.png", 0, &r) == 1, "rewrite");
    store_entry_free(&r);

    /* --affine: ellipses in place of the keypoints, read back with their
     * equivalent circles; a file of the other setting is absent. */
    o.affine = 1;
    CHECK(store_read(&ctx, "sub/a.png", 1, &r) == 0, "a file without ellipses accepted with --affine");
    CHECK(store_write(&ctx, "sub/a.png", &e) != 0, "--affine: an entry without ellipses written");
    mn_affine_keypoint ak[NKP];
    for (int i = 0; i < NKP; i++)
        ak[i] = (mn_affine_keypoint){i * 1.5f, 200.0f - i, 3.0f + i * 0.2f, -1.0f, 0.5f, 1.5f + i * 0.1f};
    store_entry with_akp = e;
    with_akp.akp = ak;
    CHECK(store_write(&ctx, "sub/a.png", &with_akp) == 0 && store_read(&ctx, "sub/a.png", 0, &r) == 1,
          "--affine: written file not read back: %s", ctx.err);
    if (r.akp) {
        CHECK(r.nkp == NKP && memcmp(r.akp, ak, sizeof ak) == 0, "--affine: ellipses changed");
        int bad = 0;
        for (int i = 0; i < NKP; i++) {
            mn_keypoint c = mn_affine_to_keypoint(&ak[i]);
            bad += memcmp(&r.kp[i], &c, sizeof c) != 0;
        }
        for (int i = 0; i < NKP * DIM; i++)
            bad += r.desc[i] != store_half_round(desc[i]);
        CHECK(bad == 0, "--affine: %d keypoints or descriptor values differ", bad);
    }
    CHECK(r.akp != NULL, "--affine: no ellipses read");
    store_entry_free(&r);
    o.affine = 0;
    CHECK(store_read(&ctx, "sub/a.png", 1, &r) == 0, "a file with ellipses accepted without --affine");
    CHECK(store_write(&ctx, "sub/a.png", &e) == 0 && store_read(&ctx, "sub/a.png", 0, &r) == 1 && !r.akp, "rewrite");
    store_entry_free(&r);

    /* Corrupt files: absent. */
    const char *path = only_file(store);
    struct stat st;
    CHECK(path[0] && stat(path, &st) == 0, "no store file in %s", store);
    poke(path, st.st_size - 100, 0x01);
    CHECK(store_read(&ctx, "sub/a.png", 0, &r) == 0, "a flipped byte was not noticed");
    CHECK(store_write(&ctx, "sub/a.png", &e) == 0, "rewrite");
    CHECK(truncate(path, st.st_size - 1) == 0 && store_read(&ctx, "sub/a.png", 1, &r) == 0,
          "a truncated file was accepted");
    CHECK(store_write(&ctx, "sub/a.png", &e) == 0, "rewrite");
    poke(path, 0, 0x20);
    CHECK(store_read(&ctx, "sub/a.png", 1, &r) == 0, "a bad magic was accepted");

    /* The cache: budget 0 keeps only the pair at hand; both stay valid. */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/sub/b.png' && cp '%s' '%s/sub/c.png'", img, images, img, images);
    CHECK(system(cmd) == 0, "%s", cmd);
    image_list list = {0};
    image_entry v[3] = {{.name = "sub/a.png", .nkp = NKP}, {.name = "sub/b.png", .nkp = NKP},
                        {.name = "sub/c.png", .nkp = NKP}};
    list.v = v;
    list.n = 3;
    for (int i = 0; i < 3; i++)
        CHECK(store_write(&ctx, v[i].name, &e) == 0, "write %s: %s", v[i].name, ctx.err);
    store_cache c;
    CHECK(store_cache_init(&c, 3, 0) == 0, "cache init");
    const store_entry *ea, *eb;
    CHECK(store_cache_pair(&c, &ctx, &list, 0, 1, &ea, &eb) == 0 && ea->nkp == NKP && eb->nkp == NKP, "pair 0 1");
    CHECK(store_cache_pair(&c, &ctx, &list, 1, 2, &ea, &eb) == 0 && c.n == 2 && c.slot_of[0] == -1,
          "budget 0: %zu entries after the second pair", c.n);
    CHECK(ea->kp[NKP - 1].x == kp[NKP - 1].x && eb->kp[0].y == kp[0].y, "entries moved under the pointers");
    CHECK(c.loads == 3, "%llu loads, want 3", (unsigned long long)c.loads);
    store_cache_free(&c);
    CHECK(store_cache_init(&c, 3, 1 << 20) == 0, "cache init");
    store_cache_pair(&c, &ctx, &list, 0, 1, &ea, &eb);
    store_cache_pair(&c, &ctx, &list, 1, 2, &ea, &eb);
    store_cache_pair(&c, &ctx, &list, 0, 2, &ea, &eb);
    CHECK(c.loads == 3 && c.n == 3, "1 MB: %llu loads, %zu entries", (unsigned long long)c.loads, c.n);
    store_cache_free(&c);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (check_failures == 0 && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmp);
    return check_summary("test_colmap_store");
}

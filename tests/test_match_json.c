/*
 * test_match_json.c - matchnet-match's JSON writer (apps/match_json.c):
 * paths with quotes, backslashes, control characters, UTF-8 and invalid
 * bytes, and extreme or non-finite numbers give a document that Python's
 * json module parses back to the same values; affine shapes ("shapes")
 * where an image has them.
 */
#define _POSIX_C_SOURCE 200809L
#include "match_json.h"
#include "check.h"

#include <stdint.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"

/* Dump what Python parsed, one value a line: paths as the hex of their
 * UTF-8 bytes, numbers with repr() (None for null). */
static const char dump_script[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1], encoding='utf-8'))\n"
    "assert sorted(d) == ['image1', 'image2', 'matches', 'timing_ms'], sorted(d)\n"
    "out = open(sys.argv[2], 'w')\n"
    "for key in ('image1', 'image2'):\n"
    "    im = d[key]\n"
    "    keys = ['height', 'keypoints', 'path'] + ['shapes'] * ('shapes' in im) + ['width']\n"
    "    assert sorted(im) == keys, sorted(im)\n"
    "    out.write(im['path'].encode('utf-8').hex() + '\\n')\n"
    "    out.write('%d %d %d\\n' % (im['width'], im['height'], len(im['keypoints'])))\n"
    "    for k in im['keypoints']:\n"
    "        assert len(k) == 4\n"
    "        out.write(' '.join(repr(v) for v in k) + '\\n')\n"
    "    out.write('%d\\n' % len(im.get('shapes', [])) if 'shapes' in im else '-\\n')\n"
    "    for a in im.get('shapes', []):\n"
    "        assert len(a) == 4\n"
    "        out.write(' '.join(repr(v) for v in a) + '\\n')\n"
    "out.write('%d\\n' % len(d['matches']))\n"
    "for m in d['matches']:\n"
    "    assert len(m) == 3 and isinstance(m[0], int) and isinstance(m[1], int)\n"
    "    out.write('%d %d %r\\n' % tuple(m))\n"
    "t = d['timing_ms']\n"
    "out.write('%r %r %r\\n' % (t['detect'], t['describe'], t['match']))\n";

static void hex_of(const char *s, char *out)
{
    for (; *s; s++, out += 2)
        sprintf(out, "%02x", (unsigned char)*s);
    *out = '\0';
}

/* A value as Python printed it against what was written. */
static int same_number(const char *text, float want)
{
    if (!isfinite(want))
        return strcmp(text, "None") == 0;
    char *end;
    double v = strtod(text, &end);
    return end != text && (float)v == want; /* -0 reads back as 0: equal */
}

static void check_image(FILE *dump, const match_json_image *im, const char *expect_utf8, const char *what)
{
    char line[4096], hex[2048];
    hex_of(expect_utf8, hex);
    CHECK(fgets(line, sizeof line, dump) && strncmp(line, hex, strlen(hex)) == 0 && line[strlen(hex)] == '\n',
          "%s path: got hex %s want %s", what, line, hex);
    int w = -1, h = -1, n = -1;
    CHECK(fgets(line, sizeof line, dump) && sscanf(line, "%d %d %d", &w, &h, &n) == 3 && w == im->width &&
              h == im->height && n == (int)im->n,
          "%s: size/count line '%s'", what, line);
    for (size_t i = 0; i < im->n && n == (int)im->n; i++) {
        char v[4][64];
        const mn_keypoint *k = &im->keypoints[i];
        CHECK(fgets(line, sizeof line, dump) && sscanf(line, "%63s %63s %63s %63s", v[0], v[1], v[2], v[3]) == 4 &&
                  same_number(v[0], k->x) && same_number(v[1], k->y) && same_number(v[2], k->size) &&
                  same_number(v[3], k->angle),
              "%s keypoint %zu: python read '%s' for %.9g %.9g %.9g %.9g", what, i, line, k->x, k->y, k->size,
              k->angle);
    }
    /* "-" without shapes, else their number and one line each. */
    CHECK(fgets(line, sizeof line, dump) != NULL, "%s: no shapes line", what);
    if (!im->shapes) {
        CHECK(strcmp(line, "-\n") == 0, "%s: shapes written without any: '%s'", what, line);
        return;
    }
    CHECK(atoi(line) == (int)im->n, "%s: %s shapes for %zu keypoints", what, line, im->n);
    for (size_t i = 0; i < im->n; i++) {
        char v[4][64];
        const mn_affine_keypoint *a = &im->shapes[i];
        CHECK(fgets(line, sizeof line, dump) && sscanf(line, "%63s %63s %63s %63s", v[0], v[1], v[2], v[3]) == 4 &&
                  same_number(v[0], a->a11) && same_number(v[1], a->a12) && same_number(v[2], a->a21) &&
                  same_number(v[3], a->a22),
              "%s shape %zu: python read '%s'", what, i, line);
    }
}

int main(void)
{
    /* Valid UTF-8 with everything JSON must escape. */
    const char *path1 = "dir \"quoted\"\\back\\slash\t\n\r\b\f\x01\x1f\x7f/\xc3\xa9t\xc3\xa9 "
                        "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80.png";
    /* Not UTF-8: a stray continuation byte, 0xFF, an overlong '/', a
     * surrogate, and a sequence cut by the end. */
    const char *path2 = "bad\x80\xff/\xc0\xaf/\xed\xa0\x80/end\xe6\x97";
    const char *path2_read = "bad\xef\xbf\xbd\xef\xbf\xbd/\xef\xbf\xbd\xef\xbf\xbd/"
                             "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd/end\xef\xbf\xbd\xef\xbf\xbd";
    mn_keypoint kp1[5] = {{0.1f, 1e-30f, 3.4028235e38f, -1.0f},
                          {-0.0f, 123.456789f, 1.17549435e-38f, 359.999f},
                          {NAN, INFINITY, -INFINITY, 0.0f},
                          {1e-45f, 16777217.0f, 2.5f, 90.0f},
                          {639.5f, 479.25f, 31.0f, 1.0f / 3.0f}};
    mn_keypoint kp2[1] = {{5, 6, 7, 8}};
    mn_affine_keypoint shape2[1] = {{5, 6, 3.5f, -1e-30f, 1.17549435e-38f, -3.4028235e38f}};
    mn_dmatch m[4] = {{0, 0, 0.0f, 1}, {4, 0, 1.0f, 2}, {2, 0, 0.123456789f, 3}, {UINT32_MAX, 0, 0.5f, 4}};
    match_json_image im1 = {path1, 640, 480, kp1, 5, NULL}, im2 = {path2, 1, 2, kp2, 1, shape2};
    match_json_image empty1 = {"", 0, 0, NULL, 0, NULL}, empty2 = {NULL, 3, 4, NULL, 0, shape2};
    match_json_timing timing = {1.25, 12345.678901, NAN};

    char dir[] = "/tmp/test_match_json.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char json_path[64], dump_path[64], script_path[64], empty_path[64];
    snprintf(json_path, sizeof json_path, "%s/pair.json", dir);
    snprintf(empty_path, sizeof empty_path, "%s/empty.json", dir);
    snprintf(dump_path, sizeof dump_path, "%s/dump.txt", dir);
    snprintf(script_path, sizeof script_path, "%s/dump.py", dir);

    FILE *f = fopen(json_path, "wb");
    CHECK(f && match_json_write(f, &im1, &im2, m, 4, &timing) == 0, "writing %s", json_path);
    if (f)
        fclose(f);
    f = fopen(empty_path, "wb");
    CHECK(f && match_json_write(f, &empty1, &empty2, NULL, 0, &timing) == 0, "writing %s", empty_path);
    if (f)
        fclose(f);
    f = fopen(script_path, "wb");
    if (f) {
        fputs(dump_script, f);
        fclose(f);
    }

    /* A failing stream is reported. */
    f = fopen("/dev/full", "w");
    if (f) {
        setvbuf(f, NULL, _IONBF, 0);
        CHECK(match_json_write(f, &im1, &im2, m, 4, &timing) != 0, "write error not reported");
        fclose(f);
    }

    /* The bytes themselves: no raw control character, no NaN or Infinity. */
    size_t n = 0;
    char *text = read_file(json_path, &n);
    CHECK(text != NULL, "reading back %s", json_path);
    if (text) {
        int ctrl = 0;
        for (size_t i = 0; i < n; i++)
            ctrl += (unsigned char)text[i] < 0x20 && text[i] != '\n';
        CHECK(ctrl == 0, "%d raw control characters", ctrl);
        text[n - 1] = '\0';
        CHECK(!strstr(text, "nan") && !strstr(text, "inf") && !strstr(text, "NaN") && !strstr(text, "Inf"),
              "non-finite number in the output");
        CHECK(strstr(text, "\"dir \\\"quoted\\\"\\\\back\\\\slash\\t\\n\\r\\b\\f\\u0001\\u001f\\u007f/") != NULL,
              "escapes not as expected");
        free(text);
    }

    if (access(PYTHON, X_OK) != 0) {
        printf("note: %s not found; skipping the parse by Python's json module\n", PYTHON);
    } else {
        char cmd[256];
        snprintf(cmd, sizeof cmd, PYTHON " %s %s %s", script_path, json_path, dump_path);
        CHECK(system(cmd) == 0, "python could not parse %s (kept for inspection)", json_path);
        FILE *dump = fopen(dump_path, "r");
        CHECK(dump != NULL, "no dump from python");
        if (dump) {
            check_image(dump, &im1, path1, "image1");
            check_image(dump, &im2, path2_read, "image2");
            char line[256];
            int nm = -1;
            CHECK(fgets(line, sizeof line, dump) && sscanf(line, "%d", &nm) == 1 && nm == 4, "match count");
            for (int k = 0; k < 4 && nm == 4; k++) {
                unsigned long long q = 0, t = 0;
                char p[64];
                CHECK(fgets(line, sizeof line, dump) && sscanf(line, "%llu %llu %63s", &q, &t, p) == 3 &&
                          q == m[k].query && t == m[k].train && same_number(p, m[k].probability),
                      "match %d read as '%s'", k, line);
            }
            char v[3][64];
            CHECK(fgets(line, sizeof line, dump) && sscanf(line, "%63s %63s %63s", v[0], v[1], v[2]) == 3 &&
                      strtod(v[0], NULL) == 1.25 && fabs(strtod(v[1], NULL) - 12345.678901) < 1e-4 &&
                      strcmp(v[2], "None") == 0,
                  "timing read as '%s'", line);
            fclose(dump);
        }
        snprintf(cmd, sizeof cmd, PYTHON " %s %s %s", script_path, empty_path, dump_path);
        CHECK(system(cmd) == 0, "python could not parse %s (kept for inspection)", empty_path);
    }
    if (check_failures == 0) {
        unlink(json_path);
        unlink(empty_path);
        unlink(dump_path);
        unlink(script_path);
        rmdir(dir);
    }
    return check_summary("test_match_json");
}

/*
 * match_json.c - matchnet-match's JSON output (see match_json.h).
 */
#include "match_json.h"

#include <math.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF), or 0 if s does not start one. */
static size_t utf8_sequence(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

int match_json_write_string(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    if (fputc('"', f) == EOF)
        return -1;
    while (*s) {
        const char *esc = NULL;
        char buf[8];
        size_t len = 1;
        switch (*s) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (*s < 0x20 || *s == 0x7F) {
                snprintf(buf, sizeof buf, "\\u%04x", *s);
                esc = buf;
            } else if ((len = utf8_sequence(s)) == 0) {
                esc = "\\ufffd"; /* a file name that is not UTF-8: JSON must be */
                len = 1;
            }
        }
        if (esc ? fputs(esc, f) == EOF : fwrite(s, 1, len, f) != len)
            return -1;
        s += len;
    }
    return fputc('"', f) == EOF ? -1 : 0;
}

/* A number JSON can hold: 9 significant digits read back as the same float. */
static int write_number(FILE *f, double v)
{
    return (isfinite(v) ? fprintf(f, "%.9g", v) : fprintf(f, "null")) < 0 ? -1 : 0;
}

static int write_image(FILE *f, const char *key, const match_json_image *im)
{
    int err = fprintf(f, "  \"%s\": {\n    \"path\": ", key) < 0;
    err |= match_json_write_string(f, im->path) != 0;
    err |= fprintf(f, ",\n    \"width\": %d,\n    \"height\": %d,\n    \"keypoints\": [", im->width,
                   im->height) < 0;
    for (size_t i = 0; i < im->n && !err; i++) {
        const mn_keypoint *k = &im->keypoints[i];
        err |= fputs(i ? ",\n      [" : "\n      [", f) == EOF;
        err |= write_number(f, k->x) != 0 || fputs(", ", f) == EOF;
        err |= write_number(f, k->y) != 0 || fputs(", ", f) == EOF;
        err |= write_number(f, k->size) != 0 || fputs(", ", f) == EOF;
        err |= write_number(f, k->angle) != 0 || fputc(']', f) == EOF;
    }
    err |= fputs(im->n ? "\n    ]" : "]", f) == EOF;
    if (im->shapes) {
        err |= fputs(",\n    \"shapes\": [", f) == EOF;
        for (size_t i = 0; i < im->n && !err; i++) {
            const mn_affine_keypoint *a = &im->shapes[i];
            err |= fputs(i ? ",\n      [" : "\n      [", f) == EOF;
            err |= write_number(f, a->a11) != 0 || fputs(", ", f) == EOF;
            err |= write_number(f, a->a12) != 0 || fputs(", ", f) == EOF;
            err |= write_number(f, a->a21) != 0 || fputs(", ", f) == EOF;
            err |= write_number(f, a->a22) != 0 || fputc(']', f) == EOF;
        }
        err |= fputs(im->n ? "\n    ]" : "]", f) == EOF;
    }
    err |= fputs("\n  }", f) == EOF;
    return err ? -1 : 0;
}

int match_json_write(FILE *f, const match_json_image *image1, const match_json_image *image2,
                     const mn_dmatch *matches, size_t nm, const match_json_timing *timing)
{
    int err = fputs("{\n", f) == EOF;
    err |= write_image(f, "image1", image1) != 0 || fputs(",\n", f) == EOF;
    err |= write_image(f, "image2", image2) != 0 || fputs(",\n  \"matches\": [", f) == EOF;
    for (size_t k = 0; k < nm && !err; k++) {
        err |= fprintf(f, "%s[%u, %u, ", k ? ",\n    " : "\n    ", (unsigned)matches[k].query,
                       (unsigned)matches[k].train) < 0;
        err |= write_number(f, matches[k].probability) != 0 || fputc(']', f) == EOF;
    }
    err |= fputs(nm ? "\n  ],\n  \"timing_ms\": {\"detect\": " : "],\n  \"timing_ms\": {\"detect\": ", f) == EOF;
    err |= write_number(f, timing->detect) != 0 || fputs(", \"describe\": ", f) == EOF;
    err |= write_number(f, timing->describe) != 0 || fputs(", \"match\": ", f) == EOF;
    err |= write_number(f, timing->match) != 0 || fputs("}\n}\n", f) == EOF;
    return err ? -1 : 0;
}

/*
 * colmap_exif.c - COLMAP 3.8's EXIF focal-length prior through libexif
 * (colmap_exif.h says which tags and how).
 */
#include "colmap_exif.h"

#ifdef MN_HAVE_LIBEXIF

#include <libexif/exif-data.h>
#include <libexif/exif-loader.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int colmap_exif_available(void)
{
    return 1;
}

/* A SHORT or LONG entry's first value, or -1. */
static double entry_count(ExifEntry *e, ExifByteOrder bo)
{
    if (!e || e->components < 1 || !e->data)
        return -1;
    if (e->format == EXIF_FORMAT_SHORT && e->size >= 2)
        return exif_get_short(e->data, bo);
    if (e->format == EXIF_FORMAT_LONG && e->size >= 4)
        return exif_get_long(e->data, bo);
    return -1;
}

/* A RATIONAL entry's first value, or 0 when absent or not a rational. */
static int entry_rational(ExifEntry *e, ExifByteOrder bo, ExifRational *r)
{
    if (!e || e->components < 1 || !e->data || e->format != EXIF_FORMAT_RATIONAL || e->size < 8)
        return 0;
    *r = exif_get_rational(e->data, bo);
    return 1;
}

/* The rules of colmap_exif.h on parsed EXIF data. */
static int focal_from_exif(ExifData *ed, double max_size, double *focal)
{
    ExifContent *exif = ed->ifd[EXIF_IFD_EXIF];
    ExifByteOrder bo = exif_data_get_byte_order(ed);
    if (!exif)
        return 0;
    double f35 = entry_count(exif_content_get_entry(exif, EXIF_TAG_FOCAL_LENGTH_IN_35MM_FILM), bo);
    if (f35 > 0) {
        *focal = f35 / 35.0 * max_size;
        return 1;
    }
    ExifRational fl, xres;
    if (!entry_rational(exif_content_get_entry(exif, EXIF_TAG_FOCAL_LENGTH), bo, &fl) || fl.denominator == 0)
        return 0;
    /* FreeImage hands COLMAP the focal length as "%.1f mm". */
    char text[64];
    snprintf(text, sizeof text, "%.1f", (double)fl.numerator / fl.denominator);
    double focal_mm = strtod(text, NULL);
    double pixel_x = entry_count(exif_content_get_entry(exif, EXIF_TAG_PIXEL_X_DIMENSION), bo);
    double unit = entry_count(exif_content_get_entry(exif, EXIF_TAG_FOCAL_PLANE_RESOLUTION_UNIT), bo);
    if (!(focal_mm > 0) || pixel_x < 0 || (unit != 2 && unit != 3) ||
        !entry_rational(exif_content_get_entry(exif, EXIF_TAG_FOCAL_PLANE_X_RESOLUTION), bo, &xres) ||
        xres.numerator == 0)
        return 0;
    double sensor = (double)xres.denominator / xres.numerator * pixel_x * (unit == 2 ? 25.4 : 10.0);
    if (!(sensor > 0) || !isfinite(sensor))
        return 0;
    *focal = focal_mm / sensor * max_size;
    return 1;
}

int colmap_exif_focal(const char *path, int width, int height, double *focal)
{
    ExifLoader *loader = exif_loader_new();
    if (!loader)
        return 0;
    exif_loader_write_file(loader, path);
    const unsigned char *buf = NULL;
    unsigned int size = 0;
    exif_loader_get_buf(loader, &buf, &size);
    int found = 0;
    if (buf && size) {
        ExifData *ed = exif_data_new();
        if (ed) {
            /* Read the tags as written: no mandatory tags added with
             * default values, no entries "fixed". */
            exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
            exif_data_load_data(ed, buf, size);
            found = focal_from_exif(ed, width > height ? width : height, focal);
            exif_data_unref(ed);
        }
    }
    exif_loader_unref(loader);
    return found;
}

#else /* no libexif */

int colmap_exif_available(void)
{
    return 0;
}

int colmap_exif_focal(const char *path, int width, int height, double *focal)
{
    (void)path, (void)width, (void)height, (void)focal;
    return 0;
}

#endif

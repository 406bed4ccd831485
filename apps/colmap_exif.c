/*
 * colmap_exif.c - COLMAP 3.8's EXIF focal-length prior and the GPS
 * position through libexif (colmap_exif.h says which tags and how).
 */
#include "colmap_exif.h"

#include <math.h>

void colmap_gps_to_ecef(const double lla[3], double xyz[3])
{
    /* WGS 84 */
    const double a = 6378137.0, e2 = 6.69437999014e-3, pi = 3.14159265358979323846;
    double lat = lla[0] * pi / 180, lon = lla[1] * pi / 180, s = sin(lat);
    double n = a / sqrt(1 - e2 * s * s);
    xyz[0] = (n + lla[2]) * cos(lat) * cos(lon);
    xyz[1] = (n + lla[2]) * cos(lat) * sin(lon);
    xyz[2] = (n * (1 - e2) + lla[2]) * s;
}

#ifdef MN_HAVE_LIBEXIF

#include <libexif/exif-data.h>
#include <libexif/exif-loader.h>

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

/* The file's EXIF data, or NULL (none, or unreadable). */
static ExifData *load_exif(const char *path)
{
    ExifLoader *loader = exif_loader_new();
    if (!loader)
        return NULL;
    exif_loader_write_file(loader, path);
    const unsigned char *buf = NULL;
    unsigned int size = 0;
    exif_loader_get_buf(loader, &buf, &size);
    ExifData *ed = NULL;
    if (buf && size && (ed = exif_data_new())) {
        /* Read the tags as written: no mandatory tags added with default
         * values, no entries "fixed". */
        exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
        exif_data_load_data(ed, buf, size);
    }
    exif_loader_unref(loader);
    return ed;
}

int colmap_exif_focal(const char *path, int width, int height, double *focal)
{
    ExifData *ed = load_exif(path);
    int found = ed && focal_from_exif(ed, width > height ? width : height, focal);
    if (ed)
        exif_data_unref(ed);
    return found;
}

/* An ASCII reference tag's first letter, or 0. */
static char entry_letter(ExifEntry *e)
{
    return e && e->format == EXIF_FORMAT_ASCII && e->size >= 1 && e->data ? (char)e->data[0] : 0;
}

/* Degrees, minutes and seconds (three RATIONALs) as degrees; -1 when
 * absent, malformed or a denominator is 0. */
static double entry_degrees(ExifEntry *e, ExifByteOrder bo)
{
    if (!e || e->format != EXIF_FORMAT_RATIONAL || e->components != 3 || e->size < 24 || !e->data)
        return -1;
    double v = 0, unit = 1;
    for (int k = 0; k < 3; k++, unit *= 60) {
        ExifRational r = exif_get_rational(e->data + 8 * k, bo);
        if (r.denominator == 0)
            return -1;
        v += (double)r.numerator / r.denominator / unit;
    }
    return v;
}

int colmap_exif_gps(const char *path, double lla[3])
{
    ExifData *ed = load_exif(path);
    ExifContent *gps = ed ? ed->ifd[EXIF_IFD_GPS] : NULL;
    int found = 0;
    if (gps) {
        ExifByteOrder bo = exif_data_get_byte_order(ed);
        char lat_ref = entry_letter(exif_content_get_entry(gps, EXIF_TAG_GPS_LATITUDE_REF));
        char lon_ref = entry_letter(exif_content_get_entry(gps, EXIF_TAG_GPS_LONGITUDE_REF));
        double lat = entry_degrees(exif_content_get_entry(gps, EXIF_TAG_GPS_LATITUDE), bo);
        double lon = entry_degrees(exif_content_get_entry(gps, EXIF_TAG_GPS_LONGITUDE), bo);
        ExifRational alt;
        ExifEntry *alt_ref = exif_content_get_entry(gps, EXIF_TAG_GPS_ALTITUDE_REF);
        int below = alt_ref && alt_ref->format == EXIF_FORMAT_BYTE && alt_ref->size >= 1 && alt_ref->data &&
                    alt_ref->data[0] == 1;
        if ((lat_ref == 'N' || lat_ref == 'S') && (lon_ref == 'E' || lon_ref == 'W') && lat >= 0 && lat <= 90 &&
            lon >= 0 && lon <= 180) {
            lla[0] = lat_ref == 'S' ? -lat : lat;
            lla[1] = lon_ref == 'W' ? -lon : lon;
            /* Altitude is optional: sea level without it. */
            lla[2] = 0;
            if (entry_rational(exif_content_get_entry(gps, EXIF_TAG_GPS_ALTITUDE), bo, &alt) && alt.denominator)
                lla[2] = (below ? -1.0 : 1.0) * alt.numerator / alt.denominator;
            found = 1;
        }
    }
    if (ed)
        exif_data_unref(ed);
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

int colmap_exif_gps(const char *path, double lla[3])
{
    (void)path, (void)lla;
    return 0;
}

#endif

/*
 * colmap_exif.h - the focal-length prior COLMAP 3.8's feature_extractor
 * takes from a photo's EXIF data (Bitmap::ExifFocalLength in
 * src/util/bitmap.cc, reading tags as FreeImage formats them), through
 * libexif (Debian: libexif-dev):
 *
 *   1. FocalLengthIn35mmFilm > 0:  f = f35 / 35 x max(width, height)
 *   2. FocalLength (FreeImage prints it "%.1f mm", so it is rounded to
 *      0.1 mm) with the sensor width from PixelXDimension and
 *      FocalPlaneXResolution (pixels per FocalPlaneResolutionUnit,
 *      2 = inch, 3 = cm):
 *        sensor_mm = PixelXDimension / FocalPlaneXResolution x 25.4 (or 10)
 *        f = focal_mm / sensor_mm x max(width, height)
 * Otherwise no prior (the caller takes colmap_default_focal()). COLMAP
 * first looks the camera's Make and Model up in its sensor-width table
 * (src/base/camera_database.cc) before step 2; that table is not here, so
 * for a photo with FocalLength but neither FocalLengthIn35mmFilm nor
 * focal-plane tags COLMAP may find a prior where this finds none.
 * Checked against colmap feature_extractor on JPEGs with each of these
 * tags (tests/test_colmap_cameras.py).
 *
 * The GPS position (--pairs spatial:K) comes from the GPS IFD:
 * GPSLatitude and GPSLongitude (degrees, minutes, seconds: three
 * RATIONALs) with GPSLatitudeRef 'N'/'S' and GPSLongitudeRef 'E'/'W'
 * (both required), GPSAltitude (metres, RATIONAL; 0 when absent) with
 * GPSAltitudeRef 1 for below sea level.
 *
 * Built without libexif (CMake found none), colmap_exif_focal() finds no
 * prior, colmap_exif_gps() no position and colmap_exif_available() is 0.
 */
#ifndef MATCHNET_COLMAP_EXIF_H
#define MATCHNET_COLMAP_EXIF_H

/** Whether EXIF data can be read (built with libexif). */
int colmap_exif_available(void);

/**
 * The focal length in pixels COLMAP takes from the EXIF data of the image
 * file at path (width x height as decoded, not rotated). 1 with *focal
 * set, 0 when there is no usable EXIF focal length (or no EXIF at all, or
 * the file cannot be read).
 */
int colmap_exif_focal(const char *path, int width, int height, double *focal);

/**
 * The GPS position in the EXIF data of the image file at path: 1 with
 * lla = latitude and longitude in degrees (north and east positive) and
 * altitude in metres, 0 when there is none (or a tag is malformed or out
 * of range, or the file cannot be read).
 */
int colmap_exif_gps(const char *path, double lla[3]);

/** Latitude, longitude (degrees) and altitude (metres) on the WGS 84
 *  ellipsoid as earth-centred, earth-fixed x, y, z in metres, so that
 *  positions compare by straight-line distance. */
void colmap_gps_to_ecef(const double lla[3], double xyz[3]);

#endif /* MATCHNET_COLMAP_EXIF_H */

/*
 * colmap_convert.c - COLMAP 3.8's keypoint and camera conventions
 * (colmap_convert.h says which and why).
 */
#include "colmap_convert.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

/* src/base/camera_models.h of COLMAP 3.8, in id order. */
const colmap_camera_model colmap_camera_models[COLMAP_NUM_CAMERA_MODELS + 1] = {
    {"SIMPLE_PINHOLE", 0, 3, 1, "f, cx, cy"},
    {"PINHOLE", 1, 4, 2, "fx, fy, cx, cy"},
    {"SIMPLE_RADIAL", 2, 4, 1, "f, cx, cy, k"},
    {"RADIAL", 3, 5, 1, "f, cx, cy, k1, k2"},
    {"OPENCV", 4, 8, 2, "fx, fy, cx, cy, k1, k2, p1, p2"},
    {"OPENCV_FISHEYE", 5, 8, 2, "fx, fy, cx, cy, k1, k2, k3, k4"},
    {"FULL_OPENCV", 6, 12, 2, "fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, k5, k6"},
    {"FOV", 7, 5, 2, "fx, fy, cx, cy, omega"},
    {"SIMPLE_RADIAL_FISHEYE", 8, 4, 1, "f, cx, cy, k"},
    {"RADIAL_FISHEYE", 9, 5, 1, "f, cx, cy, k1, k2"},
    {"THIN_PRISM_FISHEYE", 10, 12, 2, "fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, sx1, sy1"},
    {NULL, -1, 0, 0, NULL},
};

const colmap_camera_model *colmap_camera_model_by_name(const char *name)
{
    for (const colmap_camera_model *m = colmap_camera_models; m->name; m++)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

const colmap_camera_model *colmap_camera_model_by_id(int id)
{
    for (const colmap_camera_model *m = colmap_camera_models; m->name; m++)
        if (m->id == id)
            return m;
    return NULL;
}

void colmap_camera_params_init(const colmap_camera_model *model, double focal, int width, int height, double *params)
{
    for (int i = 0; i < model->num_params; i++)
        params[i] = 0.0;
    for (int i = 0; i < model->num_focal; i++)
        params[i] = focal;
    params[model->num_focal] = width / 2.0;
    params[model->num_focal + 1] = height / 2.0;
    if (model->id == 7) /* FOV: omega starts at 1e-2, not 0 (FOVCameraModel::InitializeParams) */
        params[4] = 1e-2;
}

double colmap_default_focal(int width, int height)
{
    return 1.2 * (width > height ? width : height);
}

int colmap_keypoint_row_expand(const float *in, int cols, float out[6])
{
    if (cols != 2 && cols != 4 && cols != 6)
        return -1;
    out[0] = in[0];
    out[1] = in[1];
    if (cols == 6) {
        memcpy(out + 2, in + 2, 4 * sizeof *out);
    } else {
        /* FeatureKeypoint(x, y) is scale 1, orientation 0. */
        float scale = cols == 4 ? in[2] : 1.0f, o = cols == 4 ? in[3] : 0.0f;
        out[2] = scale * cosf(o);
        out[3] = -scale * sinf(o);
        out[4] = scale * sinf(o);
        out[5] = scale * cosf(o);
    }
    return 0;
}

int colmap_keypoint_to_mn(const float row[6], mn_keypoint *k)
{
    double a11 = row[2], a12 = row[3], a21 = row[4], a22 = row[5];
    double scale = sqrt(fabs(a11 * a22 - a12 * a21)), deg = atan2(a21, a11) * (180.0 / PI);
    int finite_xy = isfinite(row[0]) && isfinite(row[1]);
    k->x = finite_xy ? row[0] - 0.5f : 0.0f;
    k->y = finite_xy ? row[1] - 0.5f : 0.0f;
    /* A scale past FLT_MAX / 2 (floats near FLT_MAX in the row) would
     * make the size infinite in float. */
    if (!finite_xy || !(scale > 0 && 2.0 * scale <= FLT_MAX) || !isfinite(deg)) {
        k->size = 1.0f;
        k->angle = 0.0f;
        return -1;
    }
    k->size = (float)(2.0 * scale);
    deg = fmod(deg, 360.0);
    if (deg < 0)
        deg += 360.0;
    float angle = (float)deg; /* a value just under 360 may round up to it in float */
    k->angle = angle >= 360.0f ? 0.0f : angle;
    return 0;
}

void colmap_keypoint_from_mn(const mn_keypoint *k, float row[6])
{
    double scale = 0.5 * k->size, o = (k->angle < 0 ? 0.0 : k->angle) * (PI / 180.0);
    row[0] = k->x + 0.5f;
    row[1] = k->y + 0.5f;
    row[2] = (float)(scale * cos(o));
    row[3] = (float)(-scale * sin(o));
    row[4] = (float)(scale * sin(o));
    row[5] = (float)(scale * cos(o));
}

int colmap_keypoint_to_affine(const float row[6], mn_affine_keypoint *a)
{
    double det = (double)row[2] * row[5] - (double)row[3] * row[4];
    int ok = isfinite(row[0]) && isfinite(row[1]) && isfinite(row[2]) && isfinite(row[3]) && isfinite(row[4]) &&
             isfinite(row[5]) && det > 0 && det <= FLT_MAX; /* a float det (what callers compute) must not overflow */
    if (!ok) {
        mn_keypoint k;
        colmap_keypoint_to_mn(row, &k); /* a reflected frame's circle, or the placeholder */
        *a = mn_affine_from_keypoint(&k);
        return -1;
    }
    a->x = row[0] - 0.5f;
    a->y = row[1] - 0.5f;
    a->a11 = row[2], a->a12 = row[3], a->a21 = row[4], a->a22 = row[5];
    return 0;
}

void colmap_keypoint_from_affine(const mn_affine_keypoint *a, float row[6])
{
    row[0] = a->x + 0.5f;
    row[1] = a->y + 0.5f;
    row[2] = a->a11, row[3] = a->a12, row[4] = a->a21, row[5] = a->a22;
}

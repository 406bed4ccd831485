// bench_dnn.cpp - OpenCV DNN peer for bench/run.sh: the same tower, exported
// to ONNX from the same weights, read with cv::dnn::readNetFromONNX. Checks
// that its descriptors agree with libmatchnet's, then measures patches/s at
// batch 1, 64 and 256 (medians of repeated runs). Prints one JSON line.
//
//   bench_dnn MODEL.mnw TOWER.onnx [--threads 2] [--repeats 7]
#include "matchnet.h"

#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL.mnw TOWER.onnx [--threads N] [--repeats R]\n", argv[0]);
        return 2;
    }
    int threads = 2, repeats = 7;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--threads"))
            threads = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--repeats"))
            repeats = std::atoi(argv[i + 1]);
    }
    cv::setNumThreads(threads);
    mn_model *m = nullptr;
    if (mn_model_load_file(argv[1], &m) != MN_OK) {
        std::fprintf(stderr, "%s\n", mn_last_error());
        return 1;
    }
    const int P = mn_model_patch_size(m);
    const size_t D = mn_model_descriptor_dim(m);
    float mean, div;
    mn_model_normalization(m, &mean, &div);
    cv::dnn::Net net = cv::dnn::readNetFromONNX(argv[2]);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);

    const int maxb = 256;
    std::vector<uint8_t> px((size_t)maxb * P * P);
    std::srand(1);
    for (auto &v : px)
        v = (uint8_t)(std::rand() & 255);
    auto blob_of = [&](int b) {
        int sz[4] = {b, 1, P, P};
        cv::Mat blob(4, sz, CV_32F);
        float *f = blob.ptr<float>();
        for (size_t i = 0; i < (size_t)b * P * P; i++)
            f[i] = (px[i] - mean) / div;
        return blob;
    };

    // Same network? Compare with libmatchnet on 8 patches.
    mn_session *s = nullptr;
    mn_session_create(m, nullptr, &s);
    std::vector<float> ours(8 * D);
    mn_describe_u8(s, px.data(), 8, ours.data());
    net.setInput(blob_of(8));
    cv::Mat out = net.forward();
    double maxerr = 0, scale = 0;
    for (size_t i = 0; i < 8 * D; i++) {
        maxerr = std::max(maxerr, (double)std::fabs(out.ptr<float>()[i] - ours[i]));
        scale = std::max(scale, (double)std::fabs(ours[i]));
    }
    mn_session_free(s);

    const int batches[3] = {1, 64, 256};
    double med[3], lo64 = 0, hi64 = 0;
    for (int bi = 0; bi < 3; bi++) {
        int b = batches[bi], iters = b == 1 ? 32 : 1;
        cv::Mat blob = blob_of(b);
        net.setInput(blob);
        net.forward(); // warm-up, and lets OpenCV size its buffers
        std::vector<double> r;
        for (int k = 0; k < repeats; k++) {
            double t = now();
            for (int it = 0; it < iters; it++) {
                net.setInput(blob);
                net.forward();
            }
            r.push_back((double)b * iters / (now() - t));
        }
        med[bi] = median(r);
        if (b == 64) {
            lo64 = *std::min_element(r.begin(), r.end());
            hi64 = *std::max_element(r.begin(), r.end());
        }
    }
    std::printf("{\"opencv_version\": \"%s\", \"opencv_threads\": %d, \"opencv_dnn_vs_matchnet_max_abs_diff\": %.3g, "
                "\"descriptor_max_abs\": %.3g, \"opencv_dnn_b1_patches_per_s\": %.1f, "
                "\"opencv_dnn_b64_patches_per_s\": %.1f, \"opencv_dnn_b64_min\": %.1f, \"opencv_dnn_b64_max\": %.1f, "
                "\"opencv_dnn_b256_patches_per_s\": %.1f}\n",
                CV_VERSION, cv::getNumThreads(), maxerr, scale, med[0], med[1], lo64, hi64, med[2]);
    mn_model_free(m);
    return 0;
}

/*
 * fuzz_image.cc - libFuzzer target: the decoding behind mn_image_load()
 * (TurboJPEG for JPEG, the PNG chunk check, OpenCV imgcodecs for the rest)
 * on arbitrary bytes, fed from memory to the same function the file path
 * uses, inside the same exception guard.
 *
 * Invariants: a failure leaves the image zeroed, returns IO, FORMAT,
 * INVALID_ARGUMENT or OUT_OF_MEMORY and leaves an "mn_image_load(): "
 * message; a success gives width, height > 0, stride >= width and
 * pixels that can all be read.
 *
 * Like libjpeg-turbo's own fuzzers, inputs that declare more than 2^22
 * pixels are not decoded: a 200 kB file can legitimately ask for the
 * library's limit of 2^28 pixels, which is slow and large, not a bug.
 * The cap is the library's own override, MATCHNET_MAX_IMAGE_PIXELS, so
 * the header readers that enforce it for every format are fuzzed too (an
 * image over it that got decoded is an invariant violation); OpenCV's
 * codecs get the same cap through OPENCV_IO_MAX_IMAGE_PIXELS as a second
 * line.
 */
#include "../../plugin/src/c_api.cpp"

#include <opencv2/core/utils/logger.hpp>

#include <cstdint>
#include <cstdlib>

namespace {

constexpr uint64_t kFuzzMaxPixels = uint64_t(1) << 22;

[[noreturn]] void violated(const char *what, mn_status st)
{
    std::fprintf(stderr, "fuzz_image: invariant violated: %s (status %s, message '%s')\n", what,
                 mn_status_str(st), mn_last_error());
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    /* Read by OpenCV once, at its first decoding. */
    setenv("OPENCV_IO_MAX_IMAGE_PIXELS", "4194304", 1);
    setenv("MATCHNET_MAX_IMAGE_PIXELS", "4194304", 1);
    /* imdecode's warning per refused input would flood the log. */
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *func = "mn_image_load";
    const std::vector<unsigned char> bytes(data, data + size);
    mn_image im;
    std::memset(&im, 0, sizeof im);
    const mn_status st = guarded(func, MN_ERR_FORMAT, [&] { return image_decode(func, "fuzz", bytes, &im); });
    if (st != MN_OK) {
        if (st != MN_ERR_IO && st != MN_ERR_FORMAT && st != MN_ERR_INVALID_ARGUMENT && st != MN_ERR_OUT_OF_MEMORY)
            violated("unexpected status", st);
        if (im.pixels || im.width || im.height || im.stride)
            violated("image not zeroed after a failure", st);
        if (std::strncmp(mn_last_error(), "mn_image_load(): ", 17) != 0)
            violated("message without the function name", st);
        return 0;
    }
    if (!im.pixels || im.width <= 0 || im.height <= 0 || im.stride < (size_t)im.width)
        violated("bad image after a success", st);
    if ((uint64_t)im.width * (uint64_t)im.height > kFuzzMaxPixels)
        violated("image over the pixel limit", st);
    /* Read every pixel (ASan checks the extent), and keep the sum alive. */
    unsigned sum = 0;
    for (int y = 0; y < im.height; y++)
        for (int x = 0; x < im.width; x++)
            sum += im.pixels[(size_t)y * im.stride + (size_t)x];
    volatile unsigned sink = sum;
    (void)sink;
    mn_image_free(&im);
    return 0;
}

/*
 * image_header.h - image sizes from file headers, before any decoding
 * (internal to libmatchnet_opencv).
 *
 * mn_image_load() and mn_image_probe() refuse images over the pixel limit
 * before a decoder allocates anything for them, whatever the format: a
 * 100-byte BMP, PNM or TIFF header can ask OpenCV for gigabytes. The
 * readers here take the width and height from each format's own header
 * (JPEG through TurboJPEG, in c_api.cpp) and check nothing else: what the
 * decoder would refuse anyway is left to the decoder.
 */
#ifndef MN_PLUGIN_IMAGE_HEADER_H
#define MN_PLUGIN_IMAGE_HEADER_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace mn_plugin {

/* Reads up to n bytes at offset off into buf; returns how many it read
 * (fewer at the end of the file). */
using ByteReader = std::function<size_t(uint64_t off, unsigned char *buf, size_t n)>;

/* The result of reading a header. ok false: error says what is wrong with
 * it ("truncated BMP header", ...), in words that follow the path. */
struct HeaderSize {
    bool ok = false;
    uint64_t width = 0, height = 0;
    std::string format; /* "JPEG", "PNG", "BMP", "PNM", "TIFF", "WebP" */
    std::string error;
};

/* Width and height of a PNG, BMP, PNM, TIFF or WebP file from its header
 * (JPEG is TurboJPEG's job and is not handled here). A format it does not
 * recognise by the first bytes gives ok false with an empty format. */
HeaderSize read_header_size(const ByteReader &read);

/* The largest image, in pixels, mn_image_load() and mn_image_probe()
 * accept: 2^28 unless the environment variable MATCHNET_MAX_IMAGE_PIXELS
 * holds a positive decimal integer (read at each call, so a program may
 * set it before loading). ok false (with error) for a value that is not
 * such a number. */
struct PixelLimit {
    bool ok = true;
    uint64_t pixels = uint64_t(1) << 28;
    std::string error;
};
PixelLimit max_image_pixels();

/* "more than the limit of 268435456 pixels (2^28; MATCHNET_MAX_IMAGE_PIXELS
 * sets it)": the tail of every over-limit message. */
std::string pixel_limit_text(const PixelLimit &limit);

} // namespace mn_plugin

#endif

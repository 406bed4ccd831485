/*
 * c_api.cpp - matchnet/opencv.h: image decoding and resizing, keypoint
 * detection, geometric filtering and drawing for C callers.
 *
 * Every entry point is a thin extern "C" shell around a C++ body run by
 * guarded(), which turns every exception (cv::Exception, std::bad_alloc,
 * anything else) into an mn_status and an mn_last_error() message, so that
 * nothing is thrown into C and nothing is printed.
 */
#include "matchnet/opencv.h"
#include "crc32.h" /* src/crc32.h: the engine's CRC-32, compiled into this library too */
#include "image_header.h"

#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <turbojpeg.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using mn_plugin::PixelLimit;

/* The pixel limit, or a status when MATCHNET_MAX_IMAGE_PIXELS is not a number. */
mn_status pixel_limit(const char *func, PixelLimit &limit)
{
    limit = mn_plugin::max_image_pixels();
    return limit.ok ? MN_OK : mn_error_set(MN_ERR_INVALID_ARGUMENT, func, limit.error.c_str());
}

mn_status over_limit(const char *func, const char *path, uint64_t w, uint64_t h, const PixelLimit &limit)
{
    return mn_error_set(MN_ERR_INVALID_ARGUMENT, func,
                        ("'" + std::string(path) + "' has " + std::to_string(w) + " x " + std::to_string(h) +
                         " pixels, " + mn_plugin::pixel_limit_text(limit)).c_str());
}

mn_status fail(mn_status status, const char *func, const std::string &message)
{
    return mn_error_set(status, func, message.c_str());
}

/* Run body(); map any exception to a status. OpenCV errors other than
 * out-of-memory get cv_status, the likeliest cause for that function. */
template <class Body>
mn_status guarded(const char *func, mn_status cv_status, Body &&body) noexcept
{
    try {
        return body();
    } catch (const cv::Exception &e) {
        if (e.code == cv::Error::StsNoMem)
            return mn_error_set(MN_ERR_OUT_OF_MEMORY, func, "out of memory (OpenCV)");
        try {
            /* e.what() carries OpenCV's file and line; e.err is the message proper. */
            std::string msg = "OpenCV: " + e.err;
            if (!e.func.empty())
                msg += " (in " + e.func + ")";
            return mn_error_set(cv_status, func, msg.c_str());
        } catch (...) {
            return mn_error_set(cv_status, func, "OpenCV error");
        }
    } catch (const std::bad_alloc &) {
        return mn_error_set(MN_ERR_OUT_OF_MEMORY, func, "out of memory");
    } catch (const std::exception &e) {
        return mn_error_set(cv_status, func, e.what());
    } catch (...) {
        return mn_error_set(cv_status, func, "unknown exception");
    }
}

std::string quoted(const char *path)
{
    return std::string("'") + path + "'";
}

/* The whole file, or a status: MN_ERR_IO when it cannot be opened or read. */
mn_status read_whole_file(const char *func, const char *path, std::vector<unsigned char> &bytes)
{
    FILE *f = std::fopen(path, "rb");
    if (!f)
        return fail(MN_ERR_IO, func, "cannot open " + quoted(path) + ": " + std::strerror(errno));
    bytes.clear();
    unsigned char buf[65536];
    size_t got;
    mn_status st = MN_OK;
    try {
        while ((got = std::fread(buf, 1, sizeof buf, f)) > 0)
            bytes.insert(bytes.end(), buf, buf + got);
    } catch (...) {
        std::fclose(f);
        throw;
    }
    if (std::ferror(f)) /* e.g. EISDIR for a directory */
        st = fail(MN_ERR_IO, func, "cannot read " + quoted(path) + ": " + std::strerror(errno));
    std::fclose(f);
    return st;
}

/* Copy a decoded grey cv::Mat into a malloc'ed mn_image. */
mn_status image_from_mat(const char *func, const char *path, const cv::Mat &grey, const PixelLimit &limit,
                         mn_image *out)
{
    if ((uint64_t)grey.rows * (uint64_t)grey.cols > limit.pixels)
        return over_limit(func, path, (uint64_t)grey.cols, (uint64_t)grey.rows, limit);
    const size_t w = (size_t)grey.cols, h = (size_t)grey.rows;
    uint8_t *px = (uint8_t *)std::malloc(w * h > 0 ? w * h : 1);
    if (!px)
        return fail(MN_ERR_OUT_OF_MEMORY, func, "out of memory for " + std::to_string(w * h) + " pixels");
    for (size_t y = 0; y < h; y++)
        std::memcpy(px + y * w, grey.ptr<uint8_t>((int)y), w);
    out->pixels = px;
    out->width = grey.cols;
    out->height = grey.rows;
    out->stride = w;
    return MN_OK;
}

/* Owns a TurboJPEG handle. */
struct TjHandle {
    tjhandle h = tjInitDecompress();
    ~TjHandle()
    {
        if (h)
            tjDestroy(h);
    }
    TjHandle() = default;
    TjHandle(const TjHandle &) = delete;
    TjHandle &operator=(const TjHandle &) = delete;
};

/* Decode a JPEG held in memory. Returns MN_ERR_UNSUPPORTED, with no
 * message, for CMYK/YCCK files, which TurboJPEG cannot turn into grey:
 * the caller hands those to OpenCV. */
mn_status load_jpeg(const char *func, const char *path, const std::vector<unsigned char> &bytes,
                    const PixelLimit &limit, mn_image *out)
{
    TjHandle tj;
    if (!tj.h)
        return fail(MN_ERR_OUT_OF_MEMORY, func, std::string("tjInitDecompress: ") + tjGetErrorStr2(nullptr));
    int w = 0, h = 0, subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj.h, bytes.data(), (unsigned long)bytes.size(), &w, &h, &subsamp, &colorspace) != 0)
        return fail(MN_ERR_FORMAT, func, quoted(path) + ": not a readable JPEG: " + tjGetErrorStr2(tj.h));
    if (w <= 0 || h <= 0)
        return fail(MN_ERR_FORMAT, func, quoted(path) + ": truncated JPEG (no frame header)");
    if ((uint64_t)w * (uint64_t)h > limit.pixels)
        return over_limit(func, path, (uint64_t)w, (uint64_t)h, limit);
    if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)
        return MN_ERR_UNSUPPORTED;
    uint8_t *px = (uint8_t *)std::malloc((size_t)w * (size_t)h);
    if (!px)
        return fail(MN_ERR_OUT_OF_MEMORY, func, "out of memory for " + std::to_string((size_t)w * h) + " pixels");
    /* Warnings (truncated or corrupt data, decoded as grey filler) count as
     * failures: a half-grey image would silently give wrong matches.
     * LIMITSCANS refuses progressive files with absurd scan counts. */
    if (tjDecompress2(tj.h, bytes.data(), (unsigned long)bytes.size(), px, w, w, h, TJPF_GRAY,
                      TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) {
        std::string msg = quoted(path) + ": corrupt or truncated JPEG: " + tjGetErrorStr2(tj.h);
        std::free(px);
        return fail(MN_ERR_FORMAT, func, msg);
    }
    out->pixels = px;
    out->width = w;
    out->height = h;
    out->stride = (size_t)w;
    return MN_OK;
}

uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The IHDR chunk, which must come first: libpng would print its own
 * message for a zero or oversized dimension or an invalid depth. Images
 * over the pixel limit are refused here, before any decompression. */
mn_status check_png_header(const char *func, const char *path, const std::string &type, uint32_t len,
                           const unsigned char *d, const PixelLimit &limit)
{
    if (type != "IHDR" || len != 13)
        return fail(MN_ERR_FORMAT, func, quoted(path) + ": corrupt PNG (no IHDR chunk first)");
    const uint32_t w = be32(d), h = be32(d + 4);
    const int depth = d[8], colour = d[9];
    const bool depth_ok = colour == 0   ? depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16
                          : colour == 3 ? depth == 1 || depth == 2 || depth == 4 || depth == 8
                          : colour == 2 || colour == 4 || colour == 6 ? depth == 8 || depth == 16
                                                                      : false;
    if (w == 0 || h == 0 || w > 0x7FFFFFFFu || h > 0x7FFFFFFFu || !depth_ok || d[10] != 0 || d[11] != 0 ||
        d[12] > 1)
        return fail(MN_ERR_FORMAT, func,
                    quoted(path) + ": corrupt PNG (IHDR: " + std::to_string(w) + " x " + std::to_string(h) +
                        " pixels, colour type " + std::to_string(colour) + ", bit depth " + std::to_string(depth) +
                        ")");
    if ((uint64_t)w * h > limit.pixels)
        return over_limit(func, path, w, h, limit);
    return MN_OK;
}

/* Walk a PNG's chunks (lengths, CRCs, IEND) before OpenCV sees it: libpng,
 * as OpenCV sets it up, prints its errors on stderr, and a truncated or
 * damaged file is the common way to reach them. */
mn_status check_png(const char *func, const char *path, const std::vector<unsigned char> &b, const PixelLimit &limit)
{
    size_t off = 8;
    for (int chunk = 0;; chunk++) {
        if (b.size() - off < 12)
            return fail(MN_ERR_FORMAT, func, quoted(path) + ": truncated PNG (chunk " + std::to_string(chunk) +
                                                 " at byte " + std::to_string(off) + " is cut)");
        const uint32_t len = be32(&b[off]);
        const std::string type(reinterpret_cast<const char *>(&b[off + 4]), 4);
        if (len > 0x7FFFFFFFu || b.size() - off - 12 < len)
            return fail(MN_ERR_FORMAT, func, quoted(path) + ": truncated PNG (chunk " + std::to_string(chunk) +
                                                 " needs " + std::to_string((uint64_t)len + 12) + " bytes at byte " +
                                                 std::to_string(off) + ", file has " + std::to_string(b.size()) + ")");
        if (mn_crc32(&b[off + 4], (size_t)len + 4) != be32(&b[off + 8 + len]))
            return fail(MN_ERR_FORMAT, func, quoted(path) + ": corrupt PNG (chunk " + std::to_string(chunk) +
                                                 " has a wrong CRC)");
        if (chunk == 0) {
            mn_status st = check_png_header(func, path, type, len, &b[off + 8], limit);
            if (st != MN_OK)
                return st;
        }
        off += 12 + (size_t)len;
        if (type == "IEND")
            return MN_OK;
    }
}

/* JPEG, PNG, BMP, PNM (P1-P6), TIFF or WebP, by the file's first bytes. */
bool allowed_format(const std::vector<unsigned char> &b)
{
    /* OpenCV asks its decoders in its own order, and GDCM's claims any file
     * with "DICM" at offset 128 - whatever its first bytes say (a "P4" file
     * with it aborted in GDCM, found by fuzz_image). */
    if (b.size() >= 132 && std::memcmp(b.data() + 128, "DICM", 4) == 0)
        return false;
    auto starts = [&](const char *sig, size_t n) { return b.size() >= n && std::memcmp(b.data(), sig, n) == 0; };
    if (starts("\xFF\xD8\xFF", 3) || starts("\x89PNG\r\n\x1A\n", 8) || starts("BM", 2) ||
        starts("II*\0", 4) || starts("MM\0*", 4))
        return true;
    if (b.size() >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6')
        return true;
    return b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 && std::memcmp(b.data() + 8, "WEBP", 4) == 0;
}

/* Decode an image file's bytes to grey; path only names the file in
 * messages. Sets *out only when it succeeds. Kept apart from the file
 * reading so that tests/fuzz/fuzz_image.cc can feed it bytes directly. */
mn_status image_decode(const char *func, const char *path, const std::vector<unsigned char> &bytes, mn_image *out)
{
    PixelLimit limit;
    mn_status st = pixel_limit(func, limit);
    if (st != MN_OK)
        return st;
    if (bytes.empty())
        return fail(MN_ERR_FORMAT, func, quoted(path) + " is empty");
    if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
        st = load_jpeg(func, path, bytes, limit, out);
        if (st != MN_ERR_UNSUPPORTED)
            return st;
    }
    static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (bytes.size() >= 8 && std::memcmp(bytes.data(), png_signature, 8) == 0 &&
        (st = check_png(func, path, bytes, limit)) != MN_OK)
        return st;
    /* Only formats on this list reach OpenCV: some of the decoders it is
     * built with abort the process on malformed input (GDCM asserts on a
     * broken DICOM file, found by fuzz_image), and the library must not. */
    if (!allowed_format(bytes))
        return fail(MN_ERR_FORMAT, func,
                    quoted(path) + ": not a supported image format (JPEG, PNG, BMP, PNM, TIFF or WebP)");
    /* Every format's size from its header, before OpenCV allocates for it
     * (a CMYK JPEG, handed over by load_jpeg, was checked there). */
    const mn_plugin::HeaderSize hs = mn_plugin::read_header_size([&](uint64_t off, unsigned char *buf, size_t n) {
        if (n == 0 || off >= bytes.size())
            return (size_t)0;
        n = std::min<uint64_t>(n, bytes.size() - off);
        std::memcpy(buf, bytes.data() + off, n);
        return n;
    });
    if (!hs.format.empty() && !hs.ok)
        return fail(MN_ERR_FORMAT, func, quoted(path) + ": " + hs.error);
    if (hs.ok && hs.width * hs.height > limit.pixels)
        return over_limit(func, path, hs.width, hs.height, limit);
    /* Decode the bytes already read rather than reopening the file, so
     * that the file cannot change between the check and the decoding. */
    cv::Mat grey = cv::imdecode(bytes, cv::IMREAD_GRAYSCALE);
    if (grey.empty())
        return fail(MN_ERR_FORMAT, func, quoted(path) + ": not an image format OpenCV can decode, or corrupt");
    if (grey.type() != CV_8UC1) {
        cv::Mat eight;
        grey.convertTo(eight, CV_8U);
        grey = eight;
    }
    return image_from_mat(func, path, grey, limit, out);
}

mn_status image_load(const char *path, mn_image *out)
{
    static const char *func = "mn_image_load";
    std::vector<unsigned char> bytes;
    mn_status st = read_whole_file(func, path, bytes);
    if (st != MN_OK)
        return st;
    return image_decode(func, path, bytes, out);
}

bool finite_keypoint(const mn_keypoint &k)
{
    return std::isfinite(k.x) && std::isfinite(k.y);
}

/* Checks shared by mn_matches_filter() and mn_matches_draw(). */
mn_status check_matches(const char *func, const mn_keypoint *kp1, size_t n1, const mn_keypoint *kp2, size_t n2,
                        const mn_dmatch *matches, size_t nm)
{
    if (nm > 0 && !matches)
        return fail(MN_ERR_INVALID_ARGUMENT, func, "matches is NULL");
    if (n1 > 0 && !kp1)
        return fail(MN_ERR_INVALID_ARGUMENT, func, "kp1 is NULL");
    if (n2 > 0 && !kp2)
        return fail(MN_ERR_INVALID_ARGUMENT, func, "kp2 is NULL");
    for (size_t k = 0; k < nm; k++) {
        if (matches[k].query >= n1 || matches[k].train >= n2)
            return fail(MN_ERR_INVALID_ARGUMENT, func,
                        "match " + std::to_string(k) + " = (" + std::to_string(matches[k].query) + ", " +
                            std::to_string(matches[k].train) + ") is outside " + std::to_string(n1) + " x " +
                            std::to_string(n2) + " keypoints");
        if (!finite_keypoint(kp1[matches[k].query]) || !finite_keypoint(kp2[matches[k].train]))
            return fail(MN_ERR_INVALID_ARGUMENT, func,
                        "match " + std::to_string(k) + " has a keypoint with a non-finite coordinate");
    }
    return MN_OK;
}

mn_status check_image(const char *func, const char *name, const mn_image *im)
{
    if (!im)
        return fail(MN_ERR_INVALID_ARGUMENT, func, std::string(name) + " is NULL");
    if (im->width < 0 || im->height < 0)
        return fail(MN_ERR_INVALID_ARGUMENT, func,
                    std::string(name) + " has negative size " + std::to_string(im->width) + " x " +
                        std::to_string(im->height));
    if (im->width > 0 && im->height > 0) {
        if (!im->pixels)
            return fail(MN_ERR_INVALID_ARGUMENT, func, std::string(name) + "->pixels is NULL");
        if (im->stride < (size_t)im->width)
            return fail(MN_ERR_INVALID_ARGUMENT, func,
                        std::string(name) + "->stride " + std::to_string(im->stride) + " < width " +
                            std::to_string(im->width));
    }
    return MN_OK;
}

/* A view of the caller's pixels; OpenCV only reads them. */
cv::Mat view(const mn_image *im)
{
    return cv::Mat(im->height, im->width, CV_8UC1, const_cast<uint8_t *>(im->pixels), im->stride);
}

/* Write all bytes to fd; 0 or an errno value. */
int write_all(int fd, const std::vector<unsigned char> &bytes)
{
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t w = write(fd, bytes.data() + done, bytes.size() - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        done += (size_t)w;
    }
    return 0;
}

/* Write bytes to path through a temporary file in the same directory (the
 * directory of the file a symbolic link leads to) and rename(), so that a
 * failure never leaves a half-written picture. The temporary is created
 * with mode 0666 so the result gets the umask's permissions, like a file
 * written directly. Anything but a regular file that exists (/dev/stdout,
 * a pipe) is written in place: rename() would replace the device itself. */
mn_status write_atomically(const char *func, const char *path, const std::vector<unsigned char> &bytes)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        int e = fd < 0 ? errno : write_all(fd, bytes);
        if (fd >= 0 && close(fd) != 0 && e == 0)
            e = errno;
        if (e != 0)
            return fail(MN_ERR_IO, func, "cannot write " + quoted(path) + ": " + std::strerror(e));
        return MN_OK;
    }
    std::string target = path;
    if (char *real = realpath(path, nullptr)) { /* NULL for a new file: path itself */
        target = real;
        std::free(real);
    }
    static std::atomic<unsigned> counter{0};
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        tmp = target + ".tmp." + std::to_string((long)getpid()) + "." + std::to_string(counter++);
        fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        return fail(MN_ERR_IO, func, "cannot create " + quoted(path) + ": " + std::strerror(errno));
    int e = write_all(fd, bytes);
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e == 0 && std::rename(tmp.c_str(), target.c_str()) != 0)
        e = errno;
    if (e != 0) {
        unlink(tmp.c_str());
        return fail(MN_ERR_IO, func, "cannot write " + quoted(path) + ": " + std::strerror(e));
    }
    return MN_OK;
}

/* The matches mn_matches_draw_with() draws, in list order (its comment
 * states the rule): all, or inliers first, each class spread evenly. */
std::vector<size_t> lines_to_draw(const uint8_t *inliers, size_t nm, size_t max_lines)
{
    std::vector<size_t> in, out;
    for (size_t k = 0; k < nm; k++)
        (!inliers || inliers[k] ? in : out).push_back(k);
    if (nm <= max_lines) {
        std::vector<size_t> all(nm);
        for (size_t k = 0; k < nm; k++)
            all[k] = k;
        return all;
    }
    /* nm <= INT_MAX (checked), so (2k + 1) n stays below 2^63. */
    auto spread = [](const std::vector<size_t> &v, size_t m, std::vector<size_t> &dst) {
        const uint64_t n = v.size();
        for (uint64_t k = 0; k < m; k++)
            dst.push_back(v[(size_t)((2 * k + 1) * n / (2 * (uint64_t)m))]);
    };
    const size_t take_in = std::min(in.size(), max_lines);
    std::vector<size_t> chosen;
    spread(in, take_in, chosen);
    spread(out, max_lines - take_in, chosen);
    std::sort(chosen.begin(), chosen.end());
    return chosen;
}

/* The counts line of a drawing; see mn_matches_draw_with(). */
std::string counts_text(size_t n1, size_t n2, size_t nm, size_t ni, size_t drawn)
{
    std::string t = std::to_string(n1) + " + " + std::to_string(n2) + " keypoints, ";
    if (ni < nm)
        t += std::to_string(ni) + " inliers (green) / ";
    t += std::to_string(nm) + (nm == 1 ? " match" : " matches");
    if (drawn < nm)
        t += ", " + std::to_string(drawn) + " drawn";
    return t;
}

/* Write text in the top-left corner of canvas on a darkened box: a font
 * about 1/40 of the picture's height (10 to 28 px), smaller where the line
 * would not fit the width. */
void draw_counts(cv::Mat &canvas, const std::string &text)
{
    const int font = cv::FONT_HERSHEY_SIMPLEX;
    int base = 0;
    const cv::Size unit = cv::getTextSize(text, font, 1.0, 1, &base);
    const double want_px = std::min(28.0, std::max(10.0, canvas.rows / 40.0));
    const int margin = std::max(2, (int)(want_px / 3));
    double scale = want_px / unit.height;
    if (unit.width * scale > canvas.cols - 2 * margin)
        scale = std::max(0.0, (double)(canvas.cols - 2 * margin)) / unit.width;
    if (scale <= 0.05)
        return; /* no room for legible text */
    const cv::Size sz = cv::getTextSize(text, font, scale, 1, &base);
    const cv::Rect box = cv::Rect(0, 0, sz.width + 2 * margin, sz.height + base + 2 * margin) &
                         cv::Rect(0, 0, canvas.cols, canvas.rows);
    cv::Mat roi = canvas(box);
    roi.convertTo(roi, -1, 0.3); /* darkened, still visible underneath */
    cv::putText(canvas, text, cv::Point(margin, margin + sz.height), font, scale, cv::Scalar::all(255), 1,
                cv::LINE_AA);
}

/* mn_matches_draw() and mn_matches_draw_with(); params NULL for the defaults. */
mn_status draw_matches(const char *func, const mn_image *image1, const mn_keypoint *kp1, size_t n1,
                       const mn_image *image2, const mn_keypoint *kp2, size_t n2, const mn_dmatch *matches,
                       size_t nm, const uint8_t *inliers, const mn_draw_params *params, const char *path)
{
    mn_status st;
    if ((st = check_image(func, "image1", image1)) != MN_OK || (st = check_image(func, "image2", image2)) != MN_OK)
        return st;
    if (!path)
        return fail(MN_ERR_INVALID_ARGUMENT, func, "path is NULL");
    const mn_draw_params p = params ? *params : mn_draw_params_default();
    if (!(p.opacity > 0.0f && p.opacity <= 1.0f))
        return fail(MN_ERR_INVALID_ARGUMENT, func, "opacity = " + std::to_string(p.opacity) + " is not in (0, 1]");
    if (nm > (size_t)INT_MAX)
        return fail(MN_ERR_INVALID_ARGUMENT, func, "nm = " + std::to_string(nm) + " is too large");
    if ((st = check_matches(func, kp1, n1, kp2, n2, matches, nm)) != MN_OK)
        return st;
    const int w1 = image1->width, h1 = image1->height, w2 = image2->width, h2 = image2->height;
    if ((int64_t)w1 + w2 > INT_MAX / 3 || std::max(h1, h2) == 0 || w1 + w2 == 0)
        return fail(MN_ERR_INVALID_ARGUMENT, func,
                    "cannot draw " + std::to_string(w1) + " x " + std::to_string(h1) + " beside " +
                        std::to_string(w2) + " x " + std::to_string(h2));
    const char *slash = std::strrchr(path, '/'), *dot = std::strrchr(path, '.');
    if (!dot || (slash && dot < slash) || dot[1] == '\0')
        return fail(MN_ERR_UNSUPPORTED, func, quoted(path) + " has no extension to choose the image format");
    const std::string ext(dot);

    cv::Mat canvas(std::max(h1, h2), w1 + w2, CV_8UC3, cv::Scalar::all(0));
    if (w1 > 0 && h1 > 0)
        cv::cvtColor(view(image1), canvas(cv::Rect(0, 0, w1, h1)), cv::COLOR_GRAY2BGR);
    if (w2 > 0 && h2 > 0)
        cv::cvtColor(view(image2), canvas(cv::Rect(w1, 0, w2, h2)), cv::COLOR_GRAY2BGR);

    /* Everything but the counts goes on a copy blended over the images at
     * the end: where nothing is drawn the copy equals the images, so they
     * stay exactly as they were; elsewhere they show through the lines. */
    cv::Mat marks = canvas.clone();
    /* Like cv::drawMatches: sub-pixel positions with 4 fractional bits. */
    const int shift = 4;
    auto pt = [&](const mn_keypoint &k, int dx) { /* far-off points clamped to stay in int */
        const float x = std::min(std::max(k.x + dx, -1e6f), 1e6f), y = std::min(std::max(k.y, -1e6f), 1e6f);
        return cv::Point(cvRound(x * (1 << shift)), cvRound(y * (1 << shift)));
    };
    const cv::Scalar keypoint_colour(160, 120, 0), green(0, 200, 0), red(0, 0, 230); /* BGR */
    if (p.keypoints) {
        for (size_t i = 0; i < n1; i++)
            if (finite_keypoint(kp1[i]))
                cv::circle(marks, pt(kp1[i], 0), 2 << shift, keypoint_colour, 1, cv::LINE_AA, shift);
        for (size_t i = 0; i < n2; i++)
            if (finite_keypoint(kp2[i]))
                cv::circle(marks, pt(kp2[i], w1), 2 << shift, keypoint_colour, 1, cv::LINE_AA, shift);
    }
    const std::vector<size_t> drawn = lines_to_draw(inliers, nm, p.max_lines);
    for (int pass = 0; pass < 2; pass++) /* outliers first, so that inliers lie on top */
        for (size_t k : drawn) {
            const bool in = !inliers || inliers[k];
            if (in != (pass == 1))
                continue;
            const cv::Scalar &colour = in ? green : red;
            const cv::Point a = pt(kp1[matches[k].query], 0), b = pt(kp2[matches[k].train], w1);
            cv::circle(marks, a, 2 << shift, colour, 1, cv::LINE_AA, shift);
            cv::circle(marks, b, 2 << shift, colour, 1, cv::LINE_AA, shift);
            cv::line(marks, a, b, colour, 1, cv::LINE_AA, shift);
        }
    if (p.opacity < 1.0f)
        cv::addWeighted(marks, p.opacity, canvas, 1.0 - p.opacity, 0.0, canvas);
    else
        canvas = marks;
    if (p.counts) {
        size_t ni = 0;
        for (size_t k = 0; k < nm; k++)
            ni += !inliers || inliers[k];
        draw_counts(canvas, counts_text(n1, n2, nm, ni, drawn.size()));
    }

    std::vector<unsigned char> bytes;
    bool encoded;
    try {
        encoded = cv::imencode(ext, canvas, bytes);
    } catch (const cv::Exception &e) {
        if (e.code == cv::Error::StsNoMem)
            throw;
        encoded = false; /* "could not find encoder for the specified extension" */
    }
    if (!encoded)
        return fail(MN_ERR_UNSUPPORTED, func, "no image encoder for " + quoted(path));
    return write_atomically(func, path, bytes);
}

/* The value a C caller passed for an enum. C allows any int in an enum
 * variable, but in C++ loading one outside the enumerators' range is
 * undefined (UBSan flags it), so read the bytes instead. */
template <class Enum>
long long enum_value(const Enum &e)
{
    typename std::underlying_type<Enum>::type v;
    static_assert(sizeof v == sizeof e, "enum size");
    std::memcpy(&v, &e, sizeof v);
    return (long long)v;
}

} // namespace

extern "C" {

mn_status mn_image_load(const char *path, mn_image *out)
{
    static const char *func = "mn_image_load";
    if (out)
        std::memset(out, 0, sizeof *out);
    if (!path)
        return mn_error_set(MN_ERR_INVALID_ARGUMENT, func, "path is NULL");
    if (!out)
        return mn_error_set(MN_ERR_INVALID_ARGUMENT, func, "out is NULL");
    /* image_load() sets out only when it succeeds, and nothing after that throws. */
    return guarded(func, MN_ERR_FORMAT, [&] { return image_load(path, out); });
}

mn_status mn_image_probe(const char *path, int *width, int *height)
{
    static const char *func = "mn_image_probe";
    if (width)
        *width = 0;
    if (height)
        *height = 0;
    if (!path || !width || !height)
        return mn_error_set(MN_ERR_INVALID_ARGUMENT, func,
                            !path ? "path is NULL" : !width ? "width is NULL" : "height is NULL");
    return guarded(func, MN_ERR_FORMAT, [&]() -> mn_status {
        PixelLimit limit;
        mn_status st = pixel_limit(func, limit);
        if (st != MN_OK)
            return st;
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return fail(MN_ERR_IO, func, "cannot open " + quoted(path) + ": " + std::strerror(errno));
        struct Closer {
            int fd;
            ~Closer() { ::close(fd); }
        } closer{fd};
        struct stat sb;
        if (fstat(fd, &sb) != 0 || S_ISDIR(sb.st_mode))
            return fail(MN_ERR_IO, func, "cannot read " + quoted(path) + ": " +
                                             std::strerror(S_ISDIR(sb.st_mode) ? EISDIR : errno));
        int io_errno = 0;
        auto read = [&](uint64_t off, unsigned char *buf, size_t n) -> size_t {
            size_t got = 0;
            while (got < n) {
                ssize_t r = ::pread(fd, buf + got, n - got, (off_t)(off + got));
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0)
                    io_errno = errno;
                if (r <= 0)
                    break;
                got += (size_t)r;
            }
            return got;
        };
        unsigned char m[3];
        const size_t nm = read(0, m, 3);
        uint64_t w = 0, h = 0;
        if (nm == 3 && m[0] == 0xFF && m[1] == 0xD8 && m[2] == 0xFF) {
            /* The frame header may follow large EXIF blocks: TurboJPEG reads the whole file's worth. */
            std::vector<unsigned char> bytes;
            st = read_whole_file(func, path, bytes);
            if (st != MN_OK)
                return st;
            TjHandle tj;
            if (!tj.h)
                return fail(MN_ERR_OUT_OF_MEMORY, func, std::string("tjInitDecompress: ") + tjGetErrorStr2(nullptr));
            int jw = 0, jh = 0, subsamp = 0, colorspace = 0;
            if (tjDecompressHeader3(tj.h, bytes.data(), (unsigned long)bytes.size(), &jw, &jh, &subsamp,
                                    &colorspace) != 0 || jw <= 0 || jh <= 0)
                return fail(MN_ERR_FORMAT, func, quoted(path) + ": not a readable JPEG header");
            w = (uint64_t)jw;
            h = (uint64_t)jh;
        } else {
            const mn_plugin::HeaderSize hs = mn_plugin::read_header_size(read);
            if (io_errno)
                return fail(MN_ERR_IO, func, "cannot read " + quoted(path) + ": " + std::strerror(io_errno));
            if (nm == 0)
                return fail(MN_ERR_FORMAT, func, quoted(path) + " is empty");
            if (hs.format.empty())
                return fail(MN_ERR_FORMAT, func,
                            quoted(path) + ": not a supported image format (JPEG, PNG, BMP, PNM, TIFF or WebP)");
            if (!hs.ok)
                return fail(MN_ERR_FORMAT, func, quoted(path) + ": " + hs.error);
            w = hs.width;
            h = hs.height;
        }
        if (w * h > limit.pixels || w > INT_MAX || h > INT_MAX)
            return over_limit(func, path, w, h, limit);
        *width = (int)w;
        *height = (int)h;
        return MN_OK;
    });
}

void mn_image_free(mn_image *image)
{
    if (!image)
        return;
    std::free(image->pixels);
    std::memset(image, 0, sizeof *image);
}

mn_status mn_image_resize(const mn_image *src, int width, int height, mn_image *dst)
{
    static const char *func = "mn_image_resize";
    if (!dst)
        return mn_error_set(MN_ERR_INVALID_ARGUMENT, func, "dst is NULL");
    /* Zeroing dst would drop the caller's src, and its pixels with it. */
    if (dst == src)
        return mn_error_set(MN_ERR_INVALID_ARGUMENT, func, "dst is src: resize into another mn_image");
    std::memset(dst, 0, sizeof *dst);
    return guarded(func, MN_ERR_INVALID_ARGUMENT, [&]() -> mn_status {
        mn_status st = check_image(func, "src", src);
        if (st != MN_OK)
            return st;
        if (src->width == 0 || src->height == 0)
            return fail(MN_ERR_INVALID_ARGUMENT, func,
                        "src is empty (" + std::to_string(src->width) + " x " + std::to_string(src->height) + ")");
        if (width < 1 || height < 1)
            return fail(MN_ERR_INVALID_ARGUMENT, func,
                        std::to_string(width) + " x " + std::to_string(height) + " is not a size to resize to");
        PixelLimit limit;
        mn_status lst = pixel_limit(func, limit);
        if (lst != MN_OK)
            return lst;
        if ((uint64_t)width * (uint64_t)height > limit.pixels)
            return fail(MN_ERR_INVALID_ARGUMENT, func,
                        std::to_string(width) + " x " + std::to_string(height) + " is " +
                            mn_plugin::pixel_limit_text(limit));
        const size_t n = (size_t)width * (size_t)height;
        uint8_t *px = (uint8_t *)std::malloc(n);
        if (!px)
            return fail(MN_ERR_OUT_OF_MEMORY, func, "out of memory for " + std::to_string(n) + " pixels");
        try {
            /* cv::resize writes into a destination of the right size and
             * type in place: straight into the caller's new buffer. */
            cv::Mat out(height, width, CV_8UC1, px, (size_t)width);
            cv::resize(view(src), out, out.size(), 0, 0, cv::INTER_AREA);
            CV_Assert(out.data == px);
        } catch (...) {
            std::free(px);
            throw;
        }
        *dst = mn_image{px, width, height, (size_t)width};
        return MN_OK;
    });
}

float mn_detector_scale_factor(mn_detector detector)
{
    switch (enum_value(detector)) {
    case MN_DETECTOR_SIFT: return MN_SCALE_SIFT;
    case MN_DETECTOR_ORB: return MN_SCALE_ORB;
    case MN_DETECTOR_AKAZE: return MN_SCALE_AKAZE;
    }
    return 0.0f;
}

mn_status mn_keypoints_detect(const mn_image *image, mn_detector detector_arg, size_t max_keypoints,
                              mn_keypoint *keypoints, size_t *count)
{
    static const char *func = "mn_keypoints_detect";
    if (count)
        *count = 0;
    return guarded(func, MN_ERR_INVALID_ARGUMENT, [&]() -> mn_status {
        if (!count)
            return fail(MN_ERR_INVALID_ARGUMENT, func, "count is NULL");
        mn_status st = check_image(func, "image", image);
        if (st != MN_OK)
            return st;
        const long long dv = enum_value(detector_arg);
        if (dv != MN_DETECTOR_SIFT && dv != MN_DETECTOR_ORB && dv != MN_DETECTOR_AKAZE)
            return fail(MN_ERR_INVALID_ARGUMENT, func, "unknown detector " + std::to_string(dv));
        const mn_detector detector = (mn_detector)dv;
        if (max_keypoints > 0 && !keypoints)
            return fail(MN_ERR_INVALID_ARGUMENT, func, "keypoints is NULL");
        /* A row or column of pixels has no keypoints, and ORB's and AKAZE's
         * pyramids throw on it. */
        if (max_keypoints == 0 || image->width < 2 || image->height < 2)
            return MN_OK;

        const int nfeatures = (int)std::min<size_t>(max_keypoints, INT_MAX);
        cv::Ptr<cv::Feature2D> det;
        switch (detector) {
        case MN_DETECTOR_SIFT: det = cv::SIFT::create(nfeatures); break;
        case MN_DETECTOR_ORB: det = cv::ORB::create(nfeatures); break;
        case MN_DETECTOR_AKAZE: det = cv::AKAZE::create(); break;
        }
        std::vector<cv::KeyPoint> kps;
        det->detect(view(image), kps);
        /* retainBest() keeps ties with the n-th response, and SIFT in
         * OpenCV 4.6 can return a few more than nfeatures: sort and cut.
         * The stable sort keeps the order deterministic. */
        cv::KeyPointsFilter::retainBest(kps, nfeatures);
        std::stable_sort(kps.begin(), kps.end(),
                         [](const cv::KeyPoint &a, const cv::KeyPoint &b) { return a.response > b.response; });
        if (kps.size() > max_keypoints)
            kps.resize(max_keypoints);
        for (size_t i = 0; i < kps.size(); i++)
            keypoints[i] = mn_keypoint{kps[i].pt.x, kps[i].pt.y, kps[i].size, kps[i].angle};
        *count = kps.size();
        return MN_OK;
    });
}

mn_status mn_matches_filter(mn_geometry geometry_arg, const mn_keypoint *kp1, size_t n1, const mn_keypoint *kp2,
                            size_t n2, const mn_dmatch *matches, size_t nm, double threshold_px, double *model,
                            uint8_t *inliers, size_t *n_inliers)
{
    static const char *func = "mn_matches_filter";
    if (n_inliers)
        *n_inliers = 0;
    if (model)
        std::fill(model, model + 9, 0.0);
    if (inliers && nm > 0)
        std::memset(inliers, 0, nm);
    return guarded(func, MN_ERR_INVALID_ARGUMENT, [&]() -> mn_status {
        if (!n_inliers)
            return fail(MN_ERR_INVALID_ARGUMENT, func, "n_inliers is NULL");
        const long long gv = enum_value(geometry_arg);
        if (gv != MN_GEOMETRY_NONE && gv != MN_GEOMETRY_HOMOGRAPHY && gv != MN_GEOMETRY_FUNDAMENTAL)
            return fail(MN_ERR_INVALID_ARGUMENT, func, "unknown geometry " + std::to_string(gv));
        const mn_geometry geometry = (mn_geometry)gv;
        if (geometry != MN_GEOMETRY_NONE && !(threshold_px > 0.0 && std::isfinite(threshold_px)))
            return fail(MN_ERR_INVALID_ARGUMENT, func,
                        "threshold_px = " + std::to_string(threshold_px) + " is not a positive number");
        if (nm > (size_t)INT_MAX)
            return fail(MN_ERR_INVALID_ARGUMENT, func, "nm = " + std::to_string(nm) + " is too large");
        mn_status st = check_matches(func, kp1, n1, kp2, n2, matches, nm);
        if (st != MN_OK)
            return st;

        if (geometry == MN_GEOMETRY_NONE) {
            if (inliers && nm > 0)
                std::memset(inliers, 1, nm);
            *n_inliers = nm;
            return MN_OK;
        }
        const size_t min_matches = geometry == MN_GEOMETRY_HOMOGRAPHY ? 4 : 8;
        if (nm < min_matches)
            return MN_OK;

        std::vector<cv::Point2f> p1(nm), p2(nm);
        for (size_t k = 0; k < nm; k++) {
            const mn_keypoint &a = kp1[matches[k].query], &b = kp2[matches[k].train];
            p1[k] = cv::Point2f(a.x, a.y);
            p2[k] = cv::Point2f(b.x, b.y);
        }
        std::vector<uint8_t> mask;
        cv::Mat m;
        /* OpenCV's RANSAC seeds its own generator: results are repeatable. */
        if (geometry == MN_GEOMETRY_HOMOGRAPHY)
            m = cv::findHomography(p1, p2, cv::RANSAC, threshold_px, mask, 2000, 0.995);
        else
            m = cv::findFundamentalMat(p1, p2, cv::FM_RANSAC, threshold_px, 0.99, mask);
        /* No model (degenerate input) is a valid outcome: zero inliers. */
        if (m.empty() || m.cols != 3 || m.rows < 3 || mask.size() != nm)
            return MN_OK;
        m.convertTo(m, CV_64F);
        size_t ni = 0;
        for (size_t k = 0; k < nm; k++)
            ni += mask[k] ? 1 : 0;
        if (inliers)
            for (size_t k = 0; k < nm; k++)
                inliers[k] = mask[k] ? 1 : 0;
        if (model)
            for (int r = 0; r < 3; r++) /* F may come with extra solutions below: keep the first */
                for (int c = 0; c < 3; c++)
                    model[r * 3 + c] = m.at<double>(r, c);
        *n_inliers = ni;
        return MN_OK;
    });
}

mn_draw_params mn_draw_params_default(void)
{
    mn_draw_params p;
    p.max_lines = MN_DRAW_MAX_LINES;
    p.keypoints = 0;
    p.counts = 1;
    p.opacity = 0.6f;
    return p;
}

mn_status mn_matches_draw_with(const mn_image *image1, const mn_keypoint *kp1, size_t n1, const mn_image *image2,
                               const mn_keypoint *kp2, size_t n2, const mn_dmatch *matches, size_t nm,
                               const uint8_t *inliers, const mn_draw_params *params, const char *path)
{
    static const char *func = "mn_matches_draw_with";
    return guarded(func, MN_ERR_IO, [&]() -> mn_status {
        return draw_matches(func, image1, kp1, n1, image2, kp2, n2, matches, nm, inliers, params, path);
    });
}

mn_status mn_matches_draw(const mn_image *image1, const mn_keypoint *kp1, size_t n1, const mn_image *image2,
                          const mn_keypoint *kp2, size_t n2, const mn_dmatch *matches, size_t nm,
                          const uint8_t *inliers, const char *path)
{
    static const char *func = "mn_matches_draw";
    return guarded(func, MN_ERR_IO, [&]() -> mn_status {
        return draw_matches(func, image1, kp1, n1, image2, kp2, n2, matches, nm, inliers, nullptr, path);
    });
}

} // extern "C"

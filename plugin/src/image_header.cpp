/*
 * image_header.cpp - image sizes from PNG, BMP, PNM, TIFF and WebP headers
 * (see image_header.h). Layouts: PNG 1.2 (IHDR), Microsoft's BITMAPINFOHEADER
 * family and OS/2's BITMAPCOREHEADER, Netpbm's PBM/PGM/PPM, TIFF 6.0
 * (tags 256 ImageWidth and 257 ImageLength of the first IFD: the page
 * OpenCV decodes), WebP's RIFF container (VP8, VP8L, VP8X chunks).
 */
#include "image_header.h"

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace mn_plugin {
namespace {

uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
uint32_t le24(const unsigned char *p) { return le16(p) | (uint32_t)p[2] << 16; }
uint32_t le32(const unsigned char *p) { return le24(p) | (uint32_t)p[3] << 24; }
uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }
uint32_t be32(const unsigned char *p) { return be16(p) << 16 | be16(p + 2); }

HeaderSize failed(const char *format, const std::string &why)
{
    HeaderSize h;
    h.format = format;
    h.error = why;
    return h;
}

HeaderSize sized(const char *format, uint64_t w, uint64_t h)
{
    HeaderSize r;
    r.format = format;
    if (w == 0 || h == 0) {
        r.error = "corrupt " + r.format + " header (" + std::to_string(w) + " x " + std::to_string(h) + " pixels)";
        return r;
    }
    r.ok = true;
    r.width = w;
    r.height = h;
    return r;
}

/* Exactly n bytes at off, or false. */
bool read_exact(const ByteReader &read, uint64_t off, unsigned char *buf, size_t n)
{
    return read(off, buf, n) == n;
}

HeaderSize png_size(const ByteReader &read)
{
    unsigned char b[24];
    if (!read_exact(read, 0, b, sizeof b))
        return failed("PNG", "truncated PNG header");
    if (std::memcmp(b + 12, "IHDR", 4) != 0)
        return failed("PNG", "corrupt PNG (no IHDR chunk first)");
    return sized("PNG", be32(b + 16), be32(b + 20));
}

HeaderSize bmp_size(const ByteReader &read)
{
    unsigned char b[26];
    size_t got = read(0, b, sizeof b);
    if (got < 18)
        return failed("BMP", "truncated BMP header");
    const uint32_t info = le32(b + 14);
    if (info == 12) { /* BITMAPCOREHEADER: unsigned 16-bit sides */
        if (got < 22)
            return failed("BMP", "truncated BMP header");
        return sized("BMP", le16(b + 18), le16(b + 20));
    }
    if (info < 16 || got < 26)
        return failed("BMP", info < 16 ? "corrupt BMP header (info header of " + std::to_string(info) + " bytes)"
                                       : "truncated BMP header");
    /* Signed: a negative height is a top-down bitmap. */
    const int64_t w = (int32_t)le32(b + 18), h = (int32_t)le32(b + 22);
    if (w <= 0)
        return failed("BMP", "corrupt BMP header (width " + std::to_string(w) + ")");
    return sized("BMP", (uint64_t)w, (uint64_t)(h < 0 ? -h : h));
}

HeaderSize pnm_size(const ByteReader &read)
{
    /* Magic, width, height: a few bytes, unless comments come between. */
    std::vector<unsigned char> b(4096);
    b.resize(read(0, b.data(), b.size()));
    size_t i = 2;
    uint64_t v[2] = {0, 0};
    for (uint64_t &value : v) {
        for (;;) {
            while (i < b.size() && std::isspace(b[i]))
                i++;
            if (i < b.size() && b[i] == '#') {
                while (i < b.size() && b[i] != '\n' && b[i] != '\r')
                    i++;
                continue;
            }
            break;
        }
        if (i == b.size())
            return failed("PNM", b.size() < 4096 ? "truncated PNM header" : "PNM header longer than 4096 bytes");
        if (!std::isdigit(b[i]))
            return failed("PNM", "corrupt PNM header (a size is not a number)");
        int digits = 0;
        for (; i < b.size() && std::isdigit(b[i]); i++)
            if (++digits > 12) /* past any real size; keeps value from overflowing */
                return failed("PNM", "corrupt PNM header (a size of more than 12 digits)");
            else
                value = value * 10 + (uint64_t)(b[i] - '0');
    }
    return sized("PNM", v[0], v[1]);
}

HeaderSize tiff_size(const ByteReader &read)
{
    unsigned char b[8];
    if (!read_exact(read, 0, b, sizeof b))
        return failed("TIFF", "truncated TIFF header");
    const bool le = b[0] == 'I';
    auto u16 = [le](const unsigned char *p) { return le ? le16(p) : be16(p); };
    auto u32 = [le](const unsigned char *p) { return le ? le32(p) : be32(p); };
    const uint64_t ifd = u32(b + 4);
    unsigned char c[2];
    if (ifd < 8 || !read_exact(read, ifd, c, 2))
        return failed("TIFF", "corrupt TIFF (first directory at byte " + std::to_string(ifd) + ", outside the file)");
    const size_t n = u16(c);
    if (n == 0)
        return failed("TIFF", "corrupt TIFF (empty first directory)");
    std::vector<unsigned char> e(n * 12);
    if (!read_exact(read, ifd + 2, e.data(), e.size()))
        return failed("TIFF", "truncated TIFF (first directory of " + std::to_string(n) + " entries is cut)");
    uint64_t side[2] = {0, 0};
    bool seen[2] = {false, false};
    for (size_t k = 0; k < n; k++) {
        const unsigned char *p = &e[k * 12];
        const uint32_t tag = u16(p), type = u16(p + 2), count = u32(p + 4);
        if ((tag != 256 && tag != 257) || count != 1)
            continue;
        /* SHORT and LONG values sit in the entry itself, left-justified. */
        if (type == 3)
            side[tag - 256] = u16(p + 8);
        else if (type == 4)
            side[tag - 256] = u32(p + 8);
        else
            continue;
        seen[tag - 256] = true;
    }
    if (!seen[0] || !seen[1])
        return failed("TIFF", "corrupt TIFF (no image width or length in the first directory)");
    return sized("TIFF", side[0], side[1]);
}

HeaderSize webp_size(const ByteReader &read)
{
    unsigned char b[30];
    if (!read_exact(read, 0, b, sizeof b))
        return failed("WebP", "truncated WebP header");
    const unsigned char *p = b + 20; /* the first chunk's payload */
    if (std::memcmp(b + 12, "VP8 ", 4) == 0) {
        if (p[3] != 0x9D || p[4] != 0x01 || p[5] != 0x2A)
            return failed("WebP", "corrupt WebP (VP8 frame without its start code)");
        return sized("WebP", le16(p + 6) & 0x3FFF, le16(p + 8) & 0x3FFF);
    }
    if (std::memcmp(b + 12, "VP8L", 4) == 0) {
        if (p[0] != 0x2F)
            return failed("WebP", "corrupt WebP (VP8L without its signature)");
        const uint32_t bits = le32(p + 1);
        return sized("WebP", (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1);
    }
    if (std::memcmp(b + 12, "VP8X", 4) == 0)
        return sized("WebP", (uint64_t)le24(p + 4) + 1, (uint64_t)le24(p + 7) + 1);
    return failed("WebP", "corrupt WebP (first chunk is not VP8, VP8L or VP8X)");
}

} // namespace

HeaderSize read_header_size(const ByteReader &read)
{
    unsigned char m[12];
    const size_t got = read(0, m, sizeof m);
    auto starts = [&](const char *sig, size_t n) { return got >= n && std::memcmp(m, sig, n) == 0; };
    if (starts("\x89PNG\r\n\x1A\n", 8))
        return png_size(read);
    if (starts("BM", 2))
        return bmp_size(read);
    if (got >= 2 && m[0] == 'P' && m[1] >= '1' && m[1] <= '6')
        return pnm_size(read);
    if (starts("II*\0", 4) || starts("MM\0*", 4))
        return tiff_size(read);
    if (got >= 12 && std::memcmp(m, "RIFF", 4) == 0 && std::memcmp(m + 8, "WEBP", 4) == 0)
        return webp_size(read);
    return HeaderSize();
}

PixelLimit max_image_pixels()
{
    PixelLimit limit;
    const char *env = std::getenv("MATCHNET_MAX_IMAGE_PIXELS");
    if (!env || !*env)
        return limit;
    uint64_t v = 0;
    bool ok = std::strlen(env) <= 18;
    for (const char *c = env; ok && *c; c++)
        ok = std::isdigit((unsigned char)*c) != 0, v = v * 10 + (uint64_t)(*c - '0');
    if (!ok || v == 0) {
        limit.ok = false;
        limit.error = std::string("MATCHNET_MAX_IMAGE_PIXELS='") + env +
                      "' is not a number of pixels (a positive integer of at most 18 digits)";
        return limit;
    }
    limit.pixels = v;
    return limit;
}

std::string pixel_limit_text(const PixelLimit &limit)
{
    if (limit.pixels == uint64_t(1) << 28)
        return "more than the limit of 268435456 pixels (2^28; MATCHNET_MAX_IMAGE_PIXELS sets it)";
    return "more than the limit of " + std::to_string(limit.pixels) + " pixels (MATCHNET_MAX_IMAGE_PIXELS)";
}

} // namespace mn_plugin

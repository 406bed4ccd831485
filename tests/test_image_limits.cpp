/*
 * test_image_limits.cpp - the pixel limit in every format (issue 15, item 3):
 * mn_image_probe() against mn_image_load() and OpenCV on real files of each
 * format; headers that declare gigapixel images (PNG, JPEG, BMP in both
 * header kinds, PNM, TIFF in both byte orders, WebP VP8X) refused from the
 * header, with the limit's message and before any decoder allocates (the
 * files are a few hundred bytes: a decoder that got them would fail with
 * a format or memory error, not the limit); MATCHNET_MAX_IMAGE_PIXELS
 * lowering and raising the limit and a bad value refused; truncated and
 * corrupt headers. With the programs' paths as arguments (CTest gives
 * them), matchnet-match, matchnet-stitch and matchnet-colmap on such files:
 * the limit's message, a failure status, no output written.
 */
extern "C" {
#include "check.h"
#include "tmp_files.h"
}
#include "matchnet/opencv.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using Bytes = std::vector<uint8_t>;

void le16(Bytes &b, size_t at, uint32_t v)
{
    b[at] = (uint8_t)v, b[at + 1] = (uint8_t)(v >> 8);
}
void le32(Bytes &b, size_t at, uint32_t v)
{
    le16(b, at, v & 0xFFFF), le16(b, at + 2, v >> 16);
}
void be16(Bytes &b, size_t at, uint32_t v)
{
    b[at] = (uint8_t)(v >> 8), b[at + 1] = (uint8_t)v;
}
void be32(Bytes &b, size_t at, uint32_t v)
{
    be16(b, at, v >> 16), be16(b, at + 2, v & 0xFFFF);
}

/* A textured grey image, w x h. */
cv::Mat texture(int w, int h)
{
    cv::Mat m(h, w, CV_8UC1);
    cv::RNG rng(7);
    rng.fill(m, cv::RNG::UNIFORM, 0, 256);
    cv::GaussianBlur(m, m, cv::Size(0, 0), 1.5);
    return m;
}

std::string write_file(const std::string &name, const Bytes &b)
{
    std::string p = tmp_path(name.c_str());
    write_bytes(p.c_str(), b.data(), b.size());
    return p;
}

/* Status and message of mn_image_load, the image freed. */
mn_status load(const std::string &path, int *w = nullptr, int *h = nullptr)
{
    mn_image im;
    mn_status st = mn_image_load(path.c_str(), &im);
    if (w)
        *w = im.width;
    if (h)
        *h = im.height;
    mn_image_free(&im);
    return st;
}

bool says_limit(const char *msg)
{
    return std::strstr(msg, "more than the limit of") != nullptr;
}

/* Real files of each format: probe = load = OpenCV's size. */
void test_real_files()
{
    const cv::Mat img = texture(123, 77);
    const char *exts[] = {".png", ".jpg", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".webp"};
    for (const char *ext : exts) {
        std::string path = tmp_path((std::string("real") + ext).c_str());
        cv::Mat out = img;
        if (std::string(ext) == ".ppm")
            cv::cvtColor(img, out, cv::COLOR_GRAY2BGR);
        std::vector<int> params;
        if (std::string(ext) == ".webp")
            params = {cv::IMWRITE_WEBP_QUALITY, 101}; /* lossless: VP8L */
        CHECK(cv::imwrite(path, out, params), "cv::imwrite %s", path.c_str());
        int pw = -1, ph = -1, lw = -1, lh = -1;
        CHECK_OK(mn_image_probe(path.c_str(), &pw, &ph));
        CHECK_OK(load(path, &lw, &lh));
        CHECK(pw == 123 && ph == 77 && lw == 123 && lh == 77, "%s: probe %d x %d, load %d x %d", ext, pw, ph, lw, lh);
    }
    /* Lossy WebP (VP8) and a top-down BMP (negative height). */
    std::string path = tmp_path("lossy.webp");
    CHECK(cv::imwrite(path, img, {cv::IMWRITE_WEBP_QUALITY, 80}), "lossy webp");
    int w = 0, h = 0;
    CHECK_OK(mn_image_probe(path.c_str(), &w, &h));
    CHECK(w == 123 && h == 77, "lossy webp probe %d x %d", w, h);
    Bytes bmp = {'B', 'M'};
    bmp.resize(54 + 4 * 3, 0);
    le32(bmp, 2, (uint32_t)bmp.size()), le32(bmp, 10, 54), le32(bmp, 14, 40), le32(bmp, 18, 4);
    le32(bmp, 22, (uint32_t)-3), le16(bmp, 26, 1), le16(bmp, 28, 8 * 0 + 24);
    bmp.resize(54 + 12 * 3, 200); /* 4 x 3 pixels, 24 bits: 12 bytes a row */
    path = write_file("topdown.bmp", bmp);
    CHECK_OK(mn_image_probe(path.c_str(), &w, &h));
    CHECK(w == 4 && h == 3, "top-down BMP probe %d x %d", w, h);
    CHECK_OK(load(path, &w, &h));
    CHECK(w == 4 && h == 3, "top-down BMP load %d x %d", w, h);
}

/* Headers declaring huge images, a few hundred bytes each. */
std::vector<std::pair<std::string, Bytes>> huge_headers(uint32_t side)
{
    std::vector<std::pair<std::string, Bytes>> files;
    /* PNG: signature, IHDR with its CRC (the library checks it first). */
    {
        Bytes b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
        b.resize(16 + 13 + 4, 0);
        be32(b, 16, side), be32(b, 20, side);
        b[24] = 8; /* depth 8, grey */
        uint32_t crc = 0xFFFFFFFFu;
        for (size_t i = 12; i < 29; i++) {
            crc ^= b[i];
            for (int k = 0; k < 8; k++)
                crc = crc & 1 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
        be32(b, 29, ~crc);
        static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
        b.insert(b.end(), iend, iend + 12);
        files.push_back({"huge.png", b});
    }
    /* JPEG: a real one with its frame header's sides patched. */
    {
        std::vector<uchar> j;
        cv::imencode(".jpg", texture(16, 16), j);
        Bytes b(j.begin(), j.end());
        for (size_t i = 2; i + 9 < b.size(); i++)
            if (b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC2)) {
                be16(b, i + 5, side & 0xFFFF), be16(b, i + 7, side & 0xFFFF);
                break;
            }
        files.push_back({"huge.jpg", b});
    }
    /* BMP with BITMAPINFOHEADER, and OS/2's BITMAPCOREHEADER (16-bit sides). */
    {
        Bytes b(54 + 64, 0);
        b[0] = 'B', b[1] = 'M';
        le32(b, 2, (uint32_t)b.size()), le32(b, 10, 54), le32(b, 14, 40), le32(b, 18, side), le32(b, 22, side);
        le16(b, 26, 1), le16(b, 28, 24);
        files.push_back({"huge.bmp", b});
        Bytes c(26 + 64, 0);
        c[0] = 'B', c[1] = 'M';
        le32(c, 2, (uint32_t)c.size()), le32(c, 10, 26), le32(c, 14, 12), le16(c, 18, 65535), le16(c, 20, 65535);
        le16(c, 22, 1), le16(c, 24, 24);
        files.push_back({"huge-core.bmp", c});
    }
    /* PNM, with a comment in the header. */
    {
        std::string h = "P5\n# made by test_image_limits\n" + std::to_string(side) + " " + std::to_string(side) +
                        "\n255\n";
        Bytes b(h.begin(), h.end());
        b.resize(b.size() + 64, 7);
        files.push_back({"huge.pgm", b});
    }
    /* TIFF in both byte orders: width and length as LONG, 8-bit grey, strips cut. */
    for (int big = 0; big < 2; big++) {
        Bytes b(8 + 2 + 4 * 12 + 4 + 64, 0);
        auto u16 = [&](size_t at, uint32_t v) { big ? be16(b, at, v) : le16(b, at, v); };
        auto u32 = [&](size_t at, uint32_t v) { big ? be32(b, at, v) : le32(b, at, v); };
        b[0] = b[1] = big ? 'M' : 'I';
        u16(2, 42), u32(4, 8), u16(8, 4);
        const uint32_t tags[4][3] = {{256, 4, side}, {257, 4, side}, {258, 3, 8}, {262, 3, 1}};
        for (int k = 0; k < 4; k++) {
            size_t e = 10 + 12 * (size_t)k;
            u16(e, tags[k][0]), u16(e + 2, tags[k][1]), u32(e + 4, 1);
            tags[k][1] == 3 ? u16(e + 8, tags[k][2]) : u32(e + 8, tags[k][2]);
        }
        files.push_back({big ? "huge-mm.tif" : "huge-ii.tif", b});
    }
    /* WebP VP8X: a 24-bit canvas. */
    {
        Bytes b(30 + 64, 0);
        std::memcpy(&b[0], "RIFF", 4), le32(b, 4, (uint32_t)b.size() - 8), std::memcpy(&b[8], "WEBPVP8X", 8);
        le32(b, 16, 10), b[24] = (uint8_t)(side - 1), b[25] = (uint8_t)((side - 1) >> 8), b[26] = (uint8_t)((side - 1) >> 16);
        b[27] = b[24], b[28] = b[25], b[29] = b[26];
        files.push_back({"huge.webp", b});
    }
    return files;
}

void test_huge_headers()
{
    /* 20000^2 = 4e8: over 2^28, under OpenCV's own 2^30, so only the
     * library's check stands between the header and a 400 MB buffer.
     * 60000 fits JPEG's 16 bits and gives 3.6e9 pixels. */
    for (uint32_t side : {20000u, 60000u}) {
        for (auto &f : huge_headers(side)) {
            std::string path = write_file(f.first, f.second);
            int w = -1, h = -1;
            mn_status st = mn_image_probe(path.c_str(), &w, &h);
            CHECK(st == MN_ERR_INVALID_ARGUMENT && says_limit(mn_last_error()) && w == 0 && h == 0,
                  "probe %s (%u): %s '%s' %d x %d", f.first.c_str(), side, mn_status_str(st), mn_last_error(), w, h);
            st = load(path);
            CHECK(st == MN_ERR_INVALID_ARGUMENT && says_limit(mn_last_error()) &&
                      std::strncmp(mn_last_error(), "mn_image_load(): ", 17) == 0,
                  "load %s (%u): %s '%s'", f.first.c_str(), side, mn_status_str(st), mn_last_error());
        }
    }
}

void test_override()
{
    const cv::Mat img = texture(40, 30); /* 1200 pixels */
    std::vector<std::string> paths;
    for (const char *ext : {".png", ".jpg", ".bmp", ".pgm", ".tif", ".webp"}) {
        paths.push_back(tmp_path((std::string("small") + ext).c_str()));
        CHECK(cv::imwrite(paths.back(), img), "imwrite %s", ext);
    }
    setenv("MATCHNET_MAX_IMAGE_PIXELS", "1199", 1);
    for (auto &p : paths) {
        int w = -1, h = -1;
        mn_status st = mn_image_probe(p.c_str(), &w, &h);
        CHECK(st == MN_ERR_INVALID_ARGUMENT && std::strstr(mn_last_error(), "limit of 1199 pixels"),
              "probe %s under 1199: %s '%s'", p.c_str(), mn_status_str(st), mn_last_error());
        st = load(p);
        CHECK(st == MN_ERR_INVALID_ARGUMENT && std::strstr(mn_last_error(), "limit of 1199 pixels"),
              "load %s under 1199: %s '%s'", p.c_str(), mn_status_str(st), mn_last_error());
    }
    mn_image src = {img.data, img.cols, img.rows, (size_t)img.step}, dst;
    CHECK(mn_image_resize(&src, 40, 30, &dst) == MN_ERR_INVALID_ARGUMENT, "resize to 1200 pixels under 1199");
    setenv("MATCHNET_MAX_IMAGE_PIXELS", "1200", 1);
    for (auto &p : paths) {
        int w = 0, h = 0;
        CHECK_OK(mn_image_probe(p.c_str(), &w, &h));
        CHECK_OK(load(p));
    }
    /* Raised: a 20000^2 BMP header passes the library's check and reaches
     * OpenCV, which refuses the truncated file as a format error. */
    setenv("MATCHNET_MAX_IMAGE_PIXELS", "1000000000", 1);
    auto f = huge_headers(20000)[2];
    std::string p = write_file("raised.bmp", f.second);
    int w = 0, h = 0;
    CHECK_OK(mn_image_probe(p.c_str(), &w, &h));
    CHECK(w == 20000 && h == 20000, "raised probe %d x %d", w, h);
    for (const char *bad : {"abc", "-5", "0", "12x", "1234567890123456789"}) {
        setenv("MATCHNET_MAX_IMAGE_PIXELS", bad, 1);
        mn_status st = load(paths[0]);
        CHECK(st == MN_ERR_INVALID_ARGUMENT && std::strstr(mn_last_error(), "MATCHNET_MAX_IMAGE_PIXELS"),
              "bad value '%s': %s '%s'", bad, mn_status_str(st), mn_last_error());
        st = mn_image_probe(paths[0].c_str(), &w, &h);
        CHECK(st == MN_ERR_INVALID_ARGUMENT, "probe with bad value '%s': %s", bad, mn_status_str(st));
    }
    unsetenv("MATCHNET_MAX_IMAGE_PIXELS");
    setenv("MATCHNET_MAX_IMAGE_PIXELS", "", 1); /* empty: the default */
    CHECK_OK(load(paths[0]));
    unsetenv("MATCHNET_MAX_IMAGE_PIXELS");
}

void test_bad_headers()
{
    struct Case {
        const char *name;
        Bytes bytes;
    };
    Bytes tiff_far = {'I', 'I', 42, 0, 0, 0, 0, 0x10};        /* first IFD past the end */
    Bytes tiff_nosize = {'I', 'I', 42, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0}; /* empty IFD */
    Bytes bmp_short = {'B', 'M', 0, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0};
    Bytes pnm_text = {'P', '5', ' ', 'x', '1', ' ', '2'};
    Bytes pnm_cut = {'P', '6', '\n', '1', '2'};
    Bytes pnm_zero = {'P', '5', ' ', '0', ' ', '9', ' ', '2', '5', '5', '\n', 0};
    Bytes webp_other = {'R', 'I', 'F', 'F', 30, 0, 0, 0, 'W', 'E', 'B', 'P', 'A', 'L', 'P', 'H'};
    webp_other.resize(38, 0);
    Bytes unknown = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0};
    Case cases[] = {{"far.tif", tiff_far}, {"nosize.tif", tiff_nosize}, {"short.bmp", bmp_short},
                    {"text.pgm", pnm_text},  {"cut.ppm", pnm_cut},       {"zero.pgm", pnm_zero},
                    {"alph.webp", webp_other}, {"image.gif", unknown},  {"empty.png", {}}};
    for (auto &c : cases) {
        std::string p = write_file(c.name, c.bytes);
        int w = -1, h = -1;
        mn_status st = mn_image_probe(p.c_str(), &w, &h);
        CHECK(st == MN_ERR_FORMAT && w == 0 && h == 0 && std::strncmp(mn_last_error(), "mn_image_probe(): ", 18) == 0,
              "probe %s: %s '%s'", c.name, mn_status_str(st), mn_last_error());
        st = load(p);
        CHECK(st == MN_ERR_FORMAT, "load %s: %s '%s'", c.name, mn_status_str(st), mn_last_error());
    }
    int w = -1, h = -1;
    CHECK(mn_image_probe(tmp_path("missing.png"), &w, &h) == MN_ERR_IO, "missing file");
    CHECK(mn_image_probe(tmpdir, &w, &h) == MN_ERR_IO, "a directory: %s", mn_last_error());
    CHECK(mn_image_probe(nullptr, &w, &h) == MN_ERR_INVALID_ARGUMENT, "NULL path");
    CHECK(mn_image_probe(tmp_path("x"), nullptr, &h) == MN_ERR_INVALID_ARGUMENT && h == 0, "NULL width");
}

/* Run cmd with stderr to a file; the exit status and what it printed. */
int run(const std::string &cmd, std::string &err)
{
    std::string errfile = tmp_path("stderr.txt");
    int rc = std::system((cmd + " > /dev/null 2> " + errfile).c_str());
    err.clear();
    if (FILE *f = std::fopen(errfile.c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
            err.append(buf, n);
        std::fclose(f);
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

bool exists(const std::string &p)
{
    return access(p.c_str(), F_OK) == 0;
}

void test_programs(const char *match, const char *stitch, const char *colmap)
{
    const std::string ok = tmp_path("ok.png");
    CHECK(cv::imwrite(ok, texture(200, 150)), "imwrite ok.png");
    std::string err;
    for (auto &f : huge_headers(20000)) {
        const std::string huge = write_file(f.first, f.second);
        const std::string json = tmp_path("out.json"), pano = tmp_path("pano.jpg");
        int rc = run(std::string(match) + " -o " + json + " " + ok + " " + huge, err);
        CHECK(rc == 1 && err.find("more than the limit of") != std::string::npos && !exists(json),
              "matchnet-match %s: exit %d, stderr '%s'", f.first.c_str(), rc, err.c_str());
        rc = run(std::string(stitch) + " -o " + pano + " " + ok + " " + huge, err);
        CHECK(rc != 0 && rc < 128 && err.find("more than the limit of") != std::string::npos && !exists(pano),
              "matchnet-stitch %s: exit %d, stderr '%s'", f.first.c_str(), rc, err.c_str());
    }
    /* matchnet-colmap: a folder with one image over the limit, which it
     * skips with the reason, as it skips any unreadable image (COLMAP's
     * feature_extractor does the same), and goes on with the rest. */
    const std::string dir = tmp_path("colmap-images"), db = tmp_path("colmap.db");
    CHECK(mkdir(dir.c_str(), 0755) == 0, "mkdir %s", dir.c_str());
    CHECK(cv::imwrite(dir + "/a.png", texture(200, 150)), "imwrite a.png");
    write_file("colmap-images/b.tif", huge_headers(20000)[5].second);
    int rc = run(std::string(colmap) + " --images " + dir + " --database " + db, err);
    CHECK(rc == 0 && err.find("'b.tif': mn_image_load(): ") != std::string::npos &&
              err.find("more than the limit of") != std::string::npos &&
              err.find("1 unreadable skipped") != std::string::npos,
          "matchnet-colmap: exit %d, stderr '%s'", rc, err.c_str());
}

} // namespace

int main(int argc, char **argv)
{
    std::snprintf(tmpdir, sizeof tmpdir, "/tmp/mn_limits_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        std::perror("mkdtemp");
        return 1;
    }
    unsetenv("MATCHNET_MAX_IMAGE_PIXELS");
    test_real_files();
    test_huge_headers();
    test_override();
    test_bad_headers();
    if (argc == 4)
        test_programs(argv[1], argv[2], argv[3]);
    std::string cmd = std::string("rm -rf ") + tmpdir;
    if (std::system(cmd.c_str()) != 0)
        std::fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary("test_image_limits");
}

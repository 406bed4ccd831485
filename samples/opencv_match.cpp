/*
 * opencv_match.cpp - match two images with MatchNet through OpenCV's own
 * interfaces: a cv::Feature2D for keypoints and descriptors, a
 * cv::DescriptorMatcher scored by the metric network, then a homography
 * by RANSAC.
 *
 *   opencv_match IMAGE1 IMAGE2 [out.png]
 *
 * Prints the keypoint, match and inlier counts; with out.png, also draws
 * the inlier matches.
 */
#include <matchnet/opencv.hpp>

#include <opencv2/calib3d.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv)
{
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: %s IMAGE1 IMAGE2 [out.png]\n", argv[0]);
        return 2;
    }
    cv::Mat img1 = cv::imread(argv[1], cv::IMREAD_GRAYSCALE);
    cv::Mat img2 = cv::imread(argv[2], cv::IMREAD_GRAYSCALE);
    if (img1.empty() || img2.empty()) {
        std::fprintf(stderr, "cannot read %s\n", img1.empty() ? argv[1] : argv[2]);
        return 1;
    }

    try {
        // SIFT keypoints (the 2000 strongest) with MatchNet descriptors, from
        // the default model. One object can serve any number of threads.
        cv::Ptr<matchnet::MatchNet> net = matchnet::MatchNet::create();
        std::vector<cv::KeyPoint> kp1, kp2;
        cv::Mat desc1, desc2;
        net->detectAndCompute(img1, cv::noArray(), kp1, desc1);
        net->detectAndCompute(img2, cv::noArray(), kp2, desc2);

        // Each query's 5 nearest descriptors (L2) scored by the metric network;
        // crossCheck keeps mutual best matches. DMatch::distance = 1 - p(match).
        cv::Ptr<matchnet::MatchNetMatcher> matcher =
            matchnet::MatchNetMatcher::create(cv::String(), 5, /*crossCheck=*/true);
        std::vector<cv::DMatch> best, matches;
        matcher->match(desc1, desc2, best);
        for (const cv::DMatch& m : best)
            if (m.distance <= 0.5f) // probability >= 0.5
                matches.push_back(m);

        // Geometric check: a homography by RANSAC, 3 px.
        std::vector<char> inliers(matches.size(), 0);
        int numInliers = 0;
        if (matches.size() >= 4) {
            std::vector<cv::Point2f> p1, p2;
            for (const cv::DMatch& m : matches) {
                p1.push_back(kp1[m.queryIdx].pt);
                p2.push_back(kp2[m.trainIdx].pt);
            }
            std::vector<uchar> mask;
            cv::Mat H = cv::findHomography(p1, p2, cv::RANSAC, 3.0, mask);
            for (size_t i = 0; i < mask.size() && !H.empty(); i++)
                numInliers += (inliers[i] = mask[i] ? 1 : 0);
        }
        std::printf("keypoints: %zu %zu, matches: %zu, inliers: %d\n", kp1.size(), kp2.size(), matches.size(),
                    numInliers);

        if (argc == 4) {
            cv::Mat canvas;
            cv::drawMatches(img1, kp1, img2, kp2, matches, canvas, cv::Scalar(0, 255, 0), cv::Scalar::all(-1),
                            inliers, cv::DrawMatchesFlags::NOT_DRAW_SINGLE_POINTS);
            if (!cv::imwrite(argv[3], canvas)) {
                std::fprintf(stderr, "cannot write %s\n", argv[3]);
                return 1;
            }
        }
    } catch (const cv::Exception& e) {
        // Failures inside libmatchnet arrive here with mn_last_error()'s message.
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}

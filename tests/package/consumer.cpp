// consumer.cpp - uses matchnet::opencv from an installed prefix.
#include <matchnet/opencv.hpp>

#include <cstdio>

int main()
{
    cv::Ptr<matchnet::MatchNet> net = matchnet::MatchNet::create();
    cv::Ptr<matchnet::MatchNetMatcher> matcher = matchnet::MatchNetMatcher::create();
    std::printf("%s %d, %s\n", net->getDefaultName().c_str(), net->descriptorSize(),
                matcher->isMaskSupported() ? "masks" : "no masks");
    return 0;
}

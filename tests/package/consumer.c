/* consumer.c - links libmatchnet (and, through pkg-config's
 * matchnet-opencv, libmatchnet_opencv) from an installed prefix. */
#include <matchnet.h>
#ifdef USE_OPENCV_PLUGIN
#include <matchnet/opencv.h>
#endif

#include <stdio.h>

int main(void)
{
    mn_model *model = NULL;
    if (mn_model_load_default(&model) != MN_OK) {
        fprintf(stderr, "%s\n", mn_last_error());
        return 1;
    }
    printf("matchnet %s, descriptor %zu", mn_version_string(), mn_model_descriptor_dim(model));
#ifdef USE_OPENCV_PLUGIN
    printf(", SIFT scale factor %g", (double)mn_detector_scale_factor(MN_DETECTOR_SIFT));
#endif
    printf("\n");
    mn_model_free(model);
    return 0;
}

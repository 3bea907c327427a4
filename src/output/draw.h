/* Layer 6, outputs: pictures drawn for people (heatmap colours, point
 * markers) and the file names they are written under. */
#ifndef CS_OUTPUT_DRAW_H
#define CS_OUTPUT_DRAW_H

#include "base/base.h"

/* OpenCV's COLORMAP_JET table in RGB order: lut[level] is what
 * cv2.applyColorMap gives the gray level, channels reversed. */
void cs_jet_table(uint8_t lut[256][3]);

/* Draw point prompts on rgb [height, width, 3] in place, as SAM's demo shows
 * them: a five-pointed star per point, green for label 1 (positive), red for
 * label 0 (negative), outlined in white, sized relative to the image (about
 * 6% of its shorter side across). Stars are clipped at the border; a point
 * outside the image is CS_ERR_ARG. points: n pairs (x, y). */
cs_status cs_draw_points(uint8_t *rgb, int width, int height, const int32_t *points,
                         const uint8_t *labels, int n);

/* File-name stems for arbitrary texts (class names, image names), safe on
 * any file system: ASCII letters, digits, '-' and '_' kept, '.' kept except
 * in front, every other byte '_', at most 100 bytes; an empty stem or one
 * equal to an earlier one gets "_<index>" appended, so stems are unique.
 * out[i] is allocated (free each with cs_free). */
cs_status cs_file_stems(const char *const *texts, int n, char **out);

#endif

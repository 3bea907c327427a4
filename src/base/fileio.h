/* Layer 1: whole-file reads and atomic writes (temporary file + rename, so a
 * failure never leaves a partial output behind). */
#ifndef CS_FILEIO_H
#define CS_FILEIO_H

#include <stdio.h>
#include "base.h"

/* cs_read_file, cs_atomic_file (open, commit, abort) and cs_mkdirs are
 * public (clip_surgery.h). */

#endif

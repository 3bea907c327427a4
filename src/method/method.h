/* Layer 5, method: feature surgery, maps, points, prompt ensembles. The
 * method never knows which vision tower produced the tokens. */
#ifndef CS_METHOD_H
#define CS_METHOD_H

#include "base/base.h"

#endif

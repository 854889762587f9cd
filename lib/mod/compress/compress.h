/* The compression filter: gzip and brotli on the fly for any module's
 * responses (gzip, brotli, gzip_types, gzip_min_length, gzip_comp_level,
 * brotli_comp_level).  docs/core.md says how filters fit the core. */
#ifndef VERBD_MOD_COMPRESS_H
#define VERBD_MOD_COMPRESS_H

#include "route/module.h"

extern const struct verbd_filter verbd_filter_compress;

#endif

/* Layer 3: fetching files over HTTP(S) (libcurl) and SHA-256 (libcrypto). */
#ifndef CS_DOWNLOAD_H
#define CS_DOWNLOAD_H

#include "base/base.h"

/* SHA-256 of bytes as 64 lowercase hex digits. */
void cs_sha256_bytes(const void *data, size_t len, char hex[65]);

/* SHA-256 of a file as 64 lowercase hex digits. */
cs_status cs_sha256_file(const char *path, char hex[65]);

/* Download url to dest through a temporary file beside it; when sha256_hex
 * is given the data must hash to it, else the temporary is removed and the
 * call fails. progress (may be NULL) is called as bytes arrive. */
cs_status cs_download(const char *url, const char *dest, const char *sha256_hex,
                      cs_progress_fn progress, void *ctx);

#endif

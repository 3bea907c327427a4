/* Layer 3: fetching files over HTTP(S) (libcurl) and SHA-256 (libcrypto). */
#ifndef CS_DOWNLOAD_H
#define CS_DOWNLOAD_H

#include "base/base.h"

/* SHA-256 of a file as 64 lowercase hex digits. */
cs_status sha256_file(const char *path, char hex[65]);

/* SHA-256 of a file, memoized in <memo_dir>/hashes (memo_dir NULL: not
 * memoized): one small file per real path holding the file's size, mtime,
 * ctime, inode and device with the digest, trusted only while all five
 * still match, so a replaced or rewritten file is hashed again. A failure
 * to write the memo only costs a rehash next time. */
cs_status sha256_file_memo(const char *path, const char *memo_dir, char hex[65]);

/* Download url to dest through a temporary file beside it; when sha256_hex
 * is given the data must hash to it, else the temporary is removed and the
 * call fails. progress (may be NULL) is called as bytes arrive. */
cs_status download_to_file(const char *url, const char *dest, const char *sha256_hex,
                      cs_progress_fn progress, void *ctx);

#endif

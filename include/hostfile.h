/* netvsc-patch: replacing a file on the host without ever leaving it
 * half-written: write beside it, flush, rename over it, flush the
 * directory. */
#ifndef NETVSC_PATCH_HOSTFILE_H
#define NETVSC_PATCH_HOSTFILE_H

#include "status.h"

/* Create an empty temporary file in the directory of TARGET (so the
 * final rename stays within one filesystem).  *TMP is malloc'd. */
int hostfile_temp_beside (const char *target, char **tmp, struct np_error *err);

/* fsync TMP, give it the permissions of LIKE (if it exists), rename it
 * over TARGET and fsync the directory. */
int hostfile_replace (const char *tmp, const char *target, const char *like,
                      struct np_error *err);

/* Copy SRC to a new file DST (which must not exist), flushed. */
int hostfile_copy (const char *src, const char *dst, struct np_error *err);

/* Byte-compare two files: 0 same, 1 different, -1 error. */
int hostfile_same (const char *a, const char *b);

#endif

/* netvsc-patch: disk image format from the file's own magic bytes.
 *
 * qemu's format probing is never used: a raw image whose first sector
 * happens to look like another format must not be opened as that
 * format (and qemu refuses to write sector 0 of probed raw images). */
#ifndef NETVSC_PATCH_FORMAT_H
#define NETVSC_PATCH_FORMAT_H

#include "status.h"

/* Names as qemu and libguestfs spell them. */
extern const char *const format_names[]; /* NULL-terminated */

/* Validate a --format argument ("vhd" is accepted for "vpc").
 * Returns the canonical name or NULL. */
const char *format_canonical (const char *name);

/* Detect the format of the image at PATH.  Returns the canonical name,
 * or NULL with *err filled in (missing, not a regular file, empty, too
 * small to be a disk, unreadable). */
const char *format_detect (const char *path, struct np_error *err);

/* The format of the open file FD (ST: its fstat), or NULL with errno
 * when it cannot be read. */
struct stat;
const char *format_of_fd (int fd, const struct stat *st);

/* Check that an explicit --format agrees with what the magic says:
 * opening a qcow2 as raw would let the guest's writes corrupt the
 * container.  Returns 0 or -1 with *err filled in. */
int format_check (const char *path, const char *format, struct np_error *err);

#endif

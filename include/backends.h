/* netvsc-patch: the image backends, loaded only when an image is given.
 *
 * image*.c, direct*.c and launchwatch.c (and through them libguestfs,
 * libnbd and libntfs-3g: some 60 shared libraries, about 12 ms of
 * start-up) are built into a private module, netvsc-patch-image.so,
 * that the program dlopen()s by path relative to its own executable:
 * beside it (the build tree: build/) or in ../lib/netvsc-patch/ (after
 * make install).  Hive mode never loads it.  Builds that link those
 * objects into the program itself (unit tests, the sanitizer build, the
 * fuzz targets) use them directly. */
#ifndef NETVSC_PATCH_BACKENDS_H
#define NETVSC_PATCH_BACKENDS_H

#include <stddef.h>

#include "disk.h"
#include "status.h"

#define IMAGE_MODULE_NAME "netvsc-patch-image.so"
#define IMAGE_MODULE_SYMBOL "netvsc_patch_image_module"

/* What the module exports under IMAGE_MODULE_SYMBOL: checked against the
 * program's own version and struct size, so that a module left over
 * from another build is refused instead of called through a table of
 * another shape. */
struct image_module {
  const char *version;             /* NETVSC_PATCH_VERSION */
  size_t backend_size;             /* sizeof (struct disk_backend) */
  const struct disk_backend *appliance;
  const struct disk_backend *direct;
};

/* Load the backends (once per process; any thread).  Returns 0, or -1
 * with a one-line *err (NP_EXIT_RUNTIME) naming the module's path. */
int backends_load (struct np_error *err);

/* After backends_load succeeded: the backend for DIRECT. */
const struct disk_backend *backends_get (int direct);

#endif

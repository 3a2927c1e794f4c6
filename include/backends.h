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
#include "domain.h"
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
  /* what the program needs of libnbd and libvirt outside a backend */
  int (*uri_check_header) (const char *target, const char *format, struct np_error *err);
  int (*domain_lookup) (const char *uri, const char *name, struct domain *out,
                        struct np_error *err);
  int (*direct_file_serves) (const char *path, const char *format, const char *qemu_spec);
};

/* Load the backends (once per process; any thread).  Returns 0, or -1
 * with a one-line *err (NP_EXIT_RUNTIME) naming the module's path. */
int backends_load (struct np_error *err);

/* After backends_load succeeded: the backend for DIRECT. */
const struct disk_backend *backends_get (int direct);

/* The module's other entry points (loading it if need be): as
 * uri_check_header (uri.h) and domain_lookup (domain.h); -1 with *err
 * also when the module cannot be loaded. */
int backends_uri_check_header (const char *target, const char *format,
                               struct np_error *err);
int backends_domain_lookup (const char *uri, const char *name, struct domain *out,
                            struct np_error *err);
/* As direct_file_serves (directfile.h); 0 when the module cannot load. */
int backends_direct_file_serves (const char *path, const char *format, const char *qemu_spec);

#endif

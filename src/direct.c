/* netvsc-patch: the direct backend (qemu-nbd + libntfs-3g): not built
 * yet; --direct is not offered until it is. */
#include <stddef.h>

#include "disk.h"

static struct disk *
direct_open (const struct disk_request *req, struct np_error *err)
{
  np_error_set (err, NP_EXIT_USAGE, "%s: the direct backend is not available", req->path);
  return NULL;
}

const struct disk_backend direct_backend = {
  .name = "direct",
  .open = direct_open,
};

/* netvsc-patch: the image module's one entry point (backends.h). */
#include "backends.h"

const struct image_module netvsc_patch_image_module = {
  .version = NETVSC_PATCH_VERSION,
  .backend_size = sizeof (struct disk_backend),
  .appliance = &appliance_backend,
  .direct = &direct_backend,
};

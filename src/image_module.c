/* netvsc-patch: the image module's one entry point (backends.h). */
#include "backends.h"
#include "directfile.h"
#include "domain.h"
#include "uri.h"

const struct image_module netvsc_patch_image_module = {
  .version = NETVSC_PATCH_VERSION,
  .backend_size = sizeof (struct disk_backend),
  .appliance = &appliance_backend,
  .direct = &direct_backend,
  .uri_check_header = uri_check_header,
  .domain_lookup = domain_lookup,
  .direct_file_serves = direct_file_serves,
};

/* netvsc-patch: the disk's logical sector size for the appliance
 * (disk.h), read as --direct reads the disk: qemu-nbd serves it (the
 * format given, the checked layers), parttable.c decides.  A few tens
 * of milliseconds before a launch of seconds. */
#include "direct-internal.h"

static int
read_disk (void *d, void *buf, size_t len, uint64_t offset, struct np_error *err)
{
  return direct_disk_read (d, buf, len, offset, err);
}

int
disk_sector_size (const struct disk_request *req, unsigned *sector, struct np_error *err)
{
  struct disk_request ro = *req;
  struct disk *dk;
  int r;

  *sector = 512;
  ro.readonly = 1;
  ro.verbose = req->verbose > 1 ? req->verbose : 0;   /* -v: the launch says what it got */
  if ((dk = direct_backend.open (&ro, err)) == NULL)
    return -1;
  r = parttable_sector_size (read_disk, dk, ((struct direct *) dk)->disk_size, sector, err);
  direct_backend.abort (dk);
  return r;
}

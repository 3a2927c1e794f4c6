/* libFuzzer target: partition tables (parttable.c) on arbitrary disk
 * bytes.  The input is the disk; reads past its end are zeros, as the
 * direct backend's reader gives.  Every partition found must lie
 * inside the disk. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parttable.h"

struct mem {
  const uint8_t *data;
  size_t size;
};

static int
mem_read (void *ctx, void *buf, size_t len, uint64_t offset, struct np_error *err)
{
  const struct mem *m = ctx;
  (void) err;
  memset (buf, 0, len);
  if (offset < m->size)
    memcpy (buf, m->data + offset, len < m->size - offset ? len : m->size - offset);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct mem m = { data, size };
  struct part parts[PARTTABLE_MAX];
  struct np_error err;
  unsigned sector;
  size_t n;

  /* unknown sector size, then each one --blocksize can give */
  for (unsigned s = 0; s <= 4096; s = s ? 8 * s : 512) {
    if (parttable_read_sector (mem_read, &m, size, s, parts, PARTTABLE_MAX, &n, &err) == -1)
      abort ();                /* the memory reader never fails */
    if (n > PARTTABLE_MAX)
      abort ();
    for (size_t i = 0; i < n; i++)
      if (parts[i].size == 0 || parts[i].offset >= size || parts[i].size > size - parts[i].offset)
        abort ();
  }
  if (parttable_sector_size (mem_read, &m, size, &sector, &err) == -1 ||
      (sector != 512 && sector != 4096))
    abort ();
  return 0;
}

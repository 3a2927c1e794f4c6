/* netvsc-patch: MBR/EBR/GPT partition tables from raw bytes (see
 * parttable.h).  The rules follow Linux's block/partitions code, so that
 * the direct backend names partitions as libguestfs (the appliance's
 * kernel) does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "parttable.h"

#define SECTOR 512u

struct table {
  parttable_reader read;
  void *ctx;
  uint64_t disk_size;
  struct part *parts;
  size_t max, n;
  unsigned sector;             /* MBR/EBR units: 512, or 4096 if told */
};

/* Add sectors [START, START+N) as DEV; entries starting past the disk are
 * dropped, entries running past it cut, as the kernel does. */
static void
add_part (struct table *t, const char *dev, uint64_t start, uint64_t n, unsigned sector)
{
  struct part *p;
  uint64_t sectors = t->disk_size / sector, off, size;

  if (n == 0 || start >= sectors || t->n == t->max)
    return;
  if (n > sectors - start)
    n = sectors - start;
  off = start * sector;
  size = n * sector;
  p = &t->parts[t->n++];
  snprintf (p->dev, sizeof p->dev, "%s", dev);
  p->offset = off;
  p->size = size;
  p->type = NULL;
}

/* Read LEN bytes at SECTOR number LBA; an address past what 64 bits hold
 * reads as past the end (zeros). */
static int
read_sectors (struct table *t, void *buf, size_t len, uint64_t lba, unsigned sector,
              struct np_error *err)
{
  if (lba > UINT64_MAX / sector) {
    memset (buf, 0, len);
    return 0;
  }
  return t->read (t->ctx, buf, len, lba * sector, err);
}

static int
is_extended (unsigned type)
{
  return type == 0x05 || type == 0x0f || type == 0x85;
}

/* Logical partitions: a chain of EBRs inside the extended partition,
 * numbered from 5 in chain order as Linux does.  Entry addresses are
 * relative to their EBR (data) or to the extended partition (next EBR).
 * A chain that loops ends after 256 links. */
static int
parse_ebr_chain (struct table *t, uint64_t ext_start, uint64_t ext_size, int *next,
                 struct np_error *err)
{
  unsigned char ebr[SECTOR];
  uint64_t this = ext_start, this_size = ext_size;
  unsigned sector = t->sector;

  for (int loops = 0; loops < 256; loops++) {
    const unsigned char *e;
    int i;

    if (read_sectors (t, ebr, sizeof ebr, this, sector, err) == -1)
      return -1;
    if (ebr[510] != 0x55 || ebr[511] != 0xaa)
      return 0;
    for (i = 0; i < 4; i++) {
      char dev[32];
      uint64_t s, n;

      e = ebr + 446 + 16 * i;
      s = get_le32 (e + 8);
      n = get_le32 (e + 12);
      if (n == 0 || is_extended (e[4]))
        continue;
      /* Like Linux, distrust entries 3 and 4 that fall outside. */
      if (i >= 2 && (s + n > this_size || this + s + n > ext_start + ext_size))
        continue;
      snprintf (dev, sizeof dev, "/dev/sda%d", (*next)++);
      add_part (t, dev, this + s, n, sector);
    }
    for (i = 0; i < 4; i++) {
      e = ebr + 446 + 16 * i;
      if (get_le32 (e + 12) && is_extended (e[4]))
        break;
    }
    if (i == 4)
      return 0;
    this = ext_start + get_le32 (e + 8);
    this_size = get_le32 (e + 12);
  }
  return 0;
}

static uint32_t
crc32_le (const unsigned char *p, size_t n)
{
  uint32_t c = 0xffffffffu;

  while (n--) {
    c ^= *p++;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
  }
  return ~c;
}

/* Read and check a GPT header at LBA: 1 with *ENTRIES (malloc'd) holding
 * its checked partition array, 0 if there is no valid header there, -1
 * with *err if the disk cannot be read. */
static int
gpt_read (struct table *t, uint64_t lba, unsigned sector, unsigned char **entries,
          uint32_t *count, uint32_t *esize, struct np_error *err)
{
  unsigned char hdr[4096];
  uint32_t hsize, crc;
  uint64_t bytes;

  *entries = NULL;
  if (read_sectors (t, hdr, sector, lba, sector, err) == -1)
    return -1;
  if (memcmp (hdr, "EFI PART", 8) != 0)
    return 0;
  hsize = get_le32 (hdr + 12);
  if (hsize < 92 || hsize > sector)
    return 0;
  crc = get_le32 (hdr + 16);
  memset (hdr + 16, 0, 4);
  if (crc32_le (hdr, hsize) != crc)
    return 0;
  *count = get_le32 (hdr + 80);
  *esize = get_le32 (hdr + 84);
  if (*esize < 128 || *esize % 8 || *esize > 4096 || *count == 0 || *count > 4096)
    return 0;
  bytes = (uint64_t) *count * *esize;
  *entries = malloc (bytes);
  if (*entries == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  if (read_sectors (t, *entries, bytes, get_le64 (hdr + 72), sector, err) == -1) {
    free (*entries);
    *entries = NULL;
    return -1;
  }
  if (crc32_le (*entries, bytes) != get_le32 (hdr + 88)) {
    free (*entries);
    *entries = NULL;
    return 0;
  }
  return 1;
}

/* GPT: partition N is entry N-1 (unused entries keep their numbers), as
 * Linux numbers them.  The backup header is used if the primary is bad.
 * *FOUND says whether there was a valid GPT. */
static int
parse_gpt (struct table *t, unsigned sector, int *found, struct np_error *err)
{
  static const unsigned char zero[16];
  unsigned char *entries;
  uint32_t count = 0, esize = 0;
  int r;

  *found = 0;
  if (t->disk_size / sector < 2)
    return 0;
  r = gpt_read (t, 1, sector, &entries, &count, &esize, err);
  if (r == 0)
    r = gpt_read (t, t->disk_size / sector - 1, sector, &entries, &count, &esize, err);
  if (r <= 0)
    return r;
  *found = 1;
  for (uint32_t i = 0; i < count; i++) {
    const unsigned char *e = entries + (size_t) i * esize;
    uint64_t first = get_le64 (e + 32), end = get_le64 (e + 40);
    char dev[32];

    if (memcmp (e, zero, 16) == 0 || end < first)
      continue;
    snprintf (dev, sizeof dev, "/dev/sda%u", i + 1);
    add_part (t, dev, first, end - first + 1, sector);
  }
  free (entries);
  return 0;
}

/* Which GPT header a disk of unknown sector size has: 4096 if only the
 * 4096-byte one is valid (primary or backup), else 512. */
static int
detect (struct table *t, unsigned *sector, struct np_error *err)
{
  unsigned char *entries;
  uint32_t count, esize;
  int r = 0;

  *sector = SECTOR;
  for (int i = 0; i < 2 && r == 0; i++) {
    unsigned s = i ? 4096 : SECTOR;
    if (t->disk_size / s < 2)
      continue;
    r = gpt_read (t, 1, s, &entries, &count, &esize, err);
    if (r == 0)
      r = gpt_read (t, t->disk_size / s - 1, s, &entries, &count, &esize, err);
    free (entries);
    if (r == 1)
      *sector = s;
  }
  return r == -1 ? -1 : 0;
}

int
parttable_sector_size (parttable_reader read, void *ctx, uint64_t disk_size,
                       unsigned *sector, struct np_error *err)
{
  struct table t = { read, ctx, disk_size, NULL, 0, 0, SECTOR };
  unsigned char mbr[SECTOR];

  *sector = SECTOR;
  if (read (ctx, mbr, sizeof mbr, 0, err) == -1)
    return -1;
  /* as parttable_read decides: only where it would look for a GPT */
  if (memcmp (mbr + 3, "NTFS    ", 8) == 0)
    return 0;
  if (mbr[510] == 0x55 && mbr[511] == 0xaa) {
    int gpt = 0;
    for (int i = 0; i < 4; i++) {
      const unsigned char *e = mbr + 446 + 16 * i;
      if (e[0] != 0 && e[0] != 0x80)
        return detect (&t, sector, err);
      gpt |= e[4] == 0xee;
    }
    if (!gpt)
      return 0;
  }
  return detect (&t, sector, err);
}

int
parttable_read (parttable_reader read, void *ctx, uint64_t disk_size,
                struct part *parts, size_t max, size_t *n, struct np_error *err)
{
  return parttable_read_sector (read, ctx, disk_size, 0, parts, max, n, err);
}

int
parttable_read_sector (parttable_reader read, void *ctx, uint64_t disk_size, unsigned sector,
                       struct part *parts, size_t max, size_t *n, struct np_error *err)
{
  struct table t = { read, ctx, disk_size, parts, max, 0, sector ? sector : SECTOR };
  unsigned char mbr[SECTOR];
  int mbr_ok, gpt = 0, found = 0, next_logical = 5;

  *n = 0;
  if (read (ctx, mbr, sizeof mbr, 0, err) == -1)
    return -1;
  /* An NTFS boot sector at sector 0 is a filesystem without a partition
   * table, whatever its boot code looks like where an MBR's table
   * would be. */
  if (memcmp (mbr + 3, "NTFS    ", 8) == 0) {
    add_part (&t, "/dev/sda", 0, disk_size / SECTOR, SECTOR);
    *n = t.n;
    return 0;
  }
  mbr_ok = mbr[510] == 0x55 && mbr[511] == 0xaa;
  for (int i = 0; mbr_ok && i < 4; i++) {
    const unsigned char *e = mbr + 446 + 16 * i;
    if (e[0] != 0 && e[0] != 0x80)
      mbr_ok = 0;              /* not a partition table (Linux's test) */
    else if (e[4] == 0xee)
      gpt = 1;
  }
  if (gpt || !mbr_ok) {
    /* A GPT disk with 4 KiB logical sectors has its header at 4096;
     * a sector size given is the only one tried, as the kernel does. */
    if ((sector != 4096 && parse_gpt (&t, SECTOR, &found, err) == -1) ||
        (!found && sector != SECTOR && parse_gpt (&t, 4096, &found, err) == -1))
      return -1;
    if (found) {
      *n = t.n;
      return 0;
    }
  }
  if (mbr_ok && !gpt) {
    for (int i = 0; i < 4; i++) {
      const unsigned char *e = mbr + 446 + 16 * i;
      uint32_t start = get_le32 (e + 8), count = get_le32 (e + 12);
      char dev[32];

      if (e[4] == 0 || count == 0)
        continue;
      found = 1;
      if (is_extended (e[4])) {
        if (parse_ebr_chain (&t, start, count, &next_logical, err) == -1)
          return -1;
        continue;
      }
      snprintf (dev, sizeof dev, "/dev/sda%d", i + 1);
      add_part (&t, dev, start, count, t.sector);
    }
  }
  if (!found)
    add_part (&t, "/dev/sda", 0, disk_size / SECTOR, SECTOR);
  *n = t.n;
  return 0;
}

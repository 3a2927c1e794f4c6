/* Unit tests: partition tables from raw bytes (parttable.c), on disks
 * built in memory. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "parttable.h"

struct mem {
  unsigned char *data;
  size_t size;
  int fail;                     /* reads fail */
};

static int
mem_read (void *ctx, void *buf, size_t len, uint64_t offset, struct np_error *err)
{
  const struct mem *m = ctx;
  if (m->fail)
    return np_error_set (err, NP_EXIT_RUNTIME, "disk.img: cannot read the image");
  memset (buf, 0, len);
  if (offset < m->size)
    memcpy (buf, m->data + offset, len < m->size - offset ? len : m->size - offset);
  return 0;
}

static void
put32 (unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

static void
put64 (unsigned char *p, uint64_t v)
{
  put32 (p, (uint32_t) v);
  put32 (p + 4, (uint32_t) (v >> 32));
}

/* CRC-32 (IEEE) with a table: another way than parttable.c's. */
static uint32_t
crc32_tab (const unsigned char *p, size_t n)
{
  static uint32_t tab[256];
  uint32_t c = 0xffffffffu;

  if (tab[1] == 0)
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t v = i;
      for (int k = 0; k < 8; k++)
        v = v & 1 ? 0xedb88320u ^ (v >> 1) : v >> 1;
      tab[i] = v;
    }
  while (n--)
    c = tab[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static void
mbr_entry (unsigned char *sector, int i, unsigned type, uint32_t start, uint32_t n)
{
  unsigned char *e = sector + 446 + 16 * i;
  e[0] = 0;
  e[4] = (unsigned char) type;
  put32 (e + 8, start);
  put32 (e + 12, n);
  sector[510] = 0x55;
  sector[511] = 0xaa;
}

/* A GPT header at LBA whose 128-byte entries (COUNT of them) are at
 * ENTRIES_LBA; FIRST[i]/LAST[i] (LAST 0: unused entry). */
static void
gpt_put (struct mem *m, unsigned sector, uint64_t lba, uint64_t entries_lba, uint32_t count,
         const uint64_t *first, const uint64_t *last)
{
  unsigned char *h = m->data + lba * sector, *e = m->data + entries_lba * sector;

  memset (e, 0, (size_t) count * 128);
  for (uint32_t i = 0; i < count; i++)
    if (last[i]) {
      memset (e + i * 128, 0xa5, 16);   /* type GUID, anything non-zero */
      put64 (e + i * 128 + 32, first[i]);
      put64 (e + i * 128 + 40, last[i]);
    }
  memset (h, 0, sector);
  memcpy (h, "EFI PART", 8);
  put32 (h + 12, 92);
  put64 (h + 72, entries_lba);
  put32 (h + 80, count);
  put32 (h + 84, 128);
  put32 (h + 88, crc32_tab (e, (size_t) count * 128));
  put32 (h + 16, crc32_tab (h, 92));
}

static struct mem
disk_new (size_t size)
{
  struct mem m = { calloc (1, size), size, 0 };
  ck_assert_ptr_nonnull (m.data);
  return m;
}

static size_t
read_table (struct mem *m, struct part *parts)
{
  struct np_error err;
  size_t n = 99;
  ck_assert_msg (parttable_read (mem_read, m, m->size, parts, PARTTABLE_MAX, &n, &err) == 0,
                 "%s", err.msg);
  return n;
}

START_TEST (test_mbr_with_logicals)
{
  struct mem m = disk_new (64 << 20);
  struct part p[PARTTABLE_MAX];
  size_t n;

  mbr_entry (m.data, 0, 0x07, 2048, 8192);
  mbr_entry (m.data, 1, 0x0f, 10240, 40960);        /* extended */
  mbr_entry (m.data, 2, 0x07, 51200, 4096);
  /* first EBR: a logical at +2048, link to the next EBR at +20480 */
  mbr_entry (m.data + 10240 * 512, 0, 0x07, 2048, 4096);
  mbr_entry (m.data + 10240 * 512, 1, 0x05, 20480, 8192);
  /* second EBR: a logical at +1024 from it */
  mbr_entry (m.data + (10240 + 20480) * 512, 0, 0x07, 1024, 2048);
  n = read_table (&m, p);
  ck_assert_uint_eq (n, 4);
  ck_assert_str_eq (p[0].dev, "/dev/sda1");
  ck_assert_uint_eq (p[0].offset, 2048 * 512);
  ck_assert_uint_eq (p[0].size, 8192 * 512);
  ck_assert_str_eq (p[1].dev, "/dev/sda5");
  ck_assert_uint_eq (p[1].offset, (10240 + 2048) * 512ull);
  ck_assert_str_eq (p[2].dev, "/dev/sda6");
  ck_assert_uint_eq (p[2].offset, (10240 + 20480 + 1024) * 512ull);
  ck_assert_uint_eq (p[2].size, 2048 * 512);
  ck_assert_str_eq (p[3].dev, "/dev/sda3");
  ck_assert_ptr_null (p[0].type);
  free (m.data);
}
END_TEST

START_TEST (test_ebr_loop_ends)
{
  struct mem m = disk_new (16 << 20);
  struct part p[PARTTABLE_MAX];

  mbr_entry (m.data, 0, 0x05, 2048, 16384);
  /* an EBR whose link points at itself */
  mbr_entry (m.data + 2048 * 512, 0, 0x07, 64, 64);
  mbr_entry (m.data + 2048 * 512, 1, 0x05, 0, 16384);
  /* 256 links, one logical each, then the chain is cut */
  ck_assert_uint_eq (read_table (&m, p), PARTTABLE_MAX);
  free (m.data);
}
END_TEST

START_TEST (test_gpt)
{
  struct mem m = disk_new (32 << 20);
  struct part p[PARTTABLE_MAX];
  uint64_t first[4] = { 2048, 0, 6144, 1ull << 60 }, last[4] = { 4095, 0, 12287, (1ull << 60) + 10 };
  uint64_t lastlba = (32 << 20) / 512 - 1;
  size_t n;

  mbr_entry (m.data, 0, 0xee, 1, (uint32_t) lastlba);
  gpt_put (&m, 512, 1, 2, 4, first, last);
  n = read_table (&m, p);
  /* entry 2 unused (numbers kept); entry 4 starts far past the end */
  ck_assert_uint_eq (n, 2);
  ck_assert_str_eq (p[0].dev, "/dev/sda1");
  ck_assert_uint_eq (p[0].offset, 2048 * 512);
  ck_assert_uint_eq (p[0].size, 2048 * 512);
  ck_assert_str_eq (p[1].dev, "/dev/sda3");

  /* primary header damaged: the backup at the last LBA is used */
  first[0] = 4096; last[0] = 5119;
  gpt_put (&m, 512, lastlba, lastlba - 1, 4, first, last);
  m.data[512 + 20] ^= 1;
  n = read_table (&m, p);
  ck_assert_uint_eq (n, 2);
  ck_assert_uint_eq (p[0].offset, 4096 * 512);

  /* both damaged: the protective MBR's own entry is no partition, so
   * the whole disk is the candidate */
  m.data[lastlba * 512 + 20] ^= 1;
  n = read_table (&m, p);
  ck_assert_uint_eq (n, 1);
  ck_assert_str_eq (p[0].dev, "/dev/sda");
  free (m.data);
}
END_TEST

START_TEST (test_gpt_4k)
{
  struct mem m = disk_new (32 << 20);
  struct part p[PARTTABLE_MAX];
  uint64_t first[1] = { 256 }, last[1] = { 8191 };   /* past the end: cut */
  size_t n;

  mbr_entry (m.data, 0, 0xee, 1, 8191);
  gpt_put (&m, 4096, 1, 2, 1, first, last);
  n = read_table (&m, p);
  ck_assert_uint_eq (n, 1);
  ck_assert_uint_eq (p[0].offset, 256 * 4096);
  ck_assert_uint_eq (p[0].size, (8192 - 256) * 4096ull);
  free (m.data);
}
END_TEST

/* A sector size given (--blocksize) is the only one tried, and MBR
 * addresses count in it; parttable_sector_size tells the appliance
 * which one parttable_read would use. */
START_TEST (test_sector_size_given)
{
  struct mem m = disk_new (32 << 20);
  struct part p[PARTTABLE_MAX];
  struct np_error err;
  uint64_t first[1] = { 256 }, last[1] = { 4095 };
  unsigned sector = 0;
  size_t n;

  /* a 4K GPT: found at 4096 by default and when told 4096 ... */
  mbr_entry (m.data, 0, 0xee, 1, 8191);
  gpt_put (&m, 4096, 1, 2, 1, first, last);
  ck_assert_int_eq (parttable_sector_size (mem_read, &m, m.size, &sector, &err), 0);
  ck_assert_uint_eq (sector, 4096);
  ck_assert_int_eq (parttable_read_sector (mem_read, &m, m.size, 4096, p, PARTTABLE_MAX,
                                           &n, &err), 0);
  ck_assert_uint_eq (n, 1);
  ck_assert_uint_eq (p[0].offset, 256 * 4096);
  /* ... not when told 512, as a kernel with 512-byte sectors: the
   * protective MBR's entry is no partition, the whole disk is left */
  ck_assert_int_eq (parttable_read_sector (mem_read, &m, m.size, 512, p, PARTTABLE_MAX,
                                           &n, &err), 0);
  ck_assert_uint_eq (n, 1);
  ck_assert_str_eq (p[0].dev, "/dev/sda");

  /* both headers valid: 512 wins, as parttable_read has it */
  gpt_put (&m, 512, 1, 2, 1, first, last);
  memset (m.data + 4096, 0, 4096);
  gpt_put (&m, 4096, 1, 3, 1, first, last);
  ck_assert_int_eq (parttable_sector_size (mem_read, &m, m.size, &sector, &err), 0);
  ck_assert_uint_eq (sector, 512);

  /* an MBR disk: 512, and told 4096 its addresses are 4K sectors */
  memset (m.data, 0, 16384);
  mbr_entry (m.data, 0, 0x07, 256, 1024);
  ck_assert_int_eq (parttable_sector_size (mem_read, &m, m.size, &sector, &err), 0);
  ck_assert_uint_eq (sector, 512);
  ck_assert_int_eq (parttable_read_sector (mem_read, &m, m.size, 4096, p, PARTTABLE_MAX,
                                           &n, &err), 0);
  ck_assert_uint_eq (n, 1);
  ck_assert_uint_eq (p[0].offset, 256 * 4096);
  ck_assert_uint_eq (p[0].size, 1024 * 4096);
  ck_assert_int_eq (parttable_read_sector (mem_read, &m, m.size, 0, p, PARTTABLE_MAX,
                                           &n, &err), 0);
  ck_assert_uint_eq (p[0].offset, 256 * 512);

  /* read errors are the reader's */
  m.fail = 1;
  ck_assert_int_eq (parttable_sector_size (mem_read, &m, m.size, &sector, &err), -1);
  free (m.data);
}
END_TEST

START_TEST (test_no_table)
{
  struct mem m = disk_new (1 << 20);
  struct part p[PARTTABLE_MAX];
  struct np_error err;
  size_t n;

  /* zeros: the whole disk */
  ck_assert_uint_eq (read_table (&m, p), 1);
  ck_assert_str_eq (p[0].dev, "/dev/sda");
  ck_assert_uint_eq (p[0].size, 1 << 20);
  /* an NTFS boot sector whose boot code looks like an MBR table */
  mbr_entry (m.data, 0, 0x07, 2048, 100);
  memcpy (m.data + 3, "NTFS    ", 8);
  ck_assert_uint_eq (read_table (&m, p), 1);
  ck_assert_str_eq (p[0].dev, "/dev/sda");
  /* a boot flag other than 0/0x80: not a partition table */
  memset (m.data, 0, 512);
  mbr_entry (m.data, 0, 0x07, 2048, 100);
  m.data[446] = 0x12;
  ck_assert_uint_eq (read_table (&m, p), 1);
  ck_assert_str_eq (p[0].dev, "/dev/sda");
  /* a disk smaller than a sector has no candidate */
  m.size = 100;
  ck_assert_uint_eq (read_table (&m, p), 0);
  /* read errors are the reader's */
  m.fail = 1;
  ck_assert_int_eq (parttable_read (mem_read, &m, m.size, p, PARTTABLE_MAX, &n, &err), -1);
  ck_assert_str_eq (err.msg, "disk.img: cannot read the image");
  free (m.data);
}
END_TEST

START_TEST (test_mbr_bounds)
{
  struct mem m = disk_new (1 << 20);       /* 2048 sectors */
  struct part p[PARTTABLE_MAX];

  mbr_entry (m.data, 0, 0x07, 1024, 4096);  /* runs past the end: cut */
  mbr_entry (m.data, 1, 0x07, 4096, 10);    /* starts past the end: dropped */
  mbr_entry (m.data, 2, 0x07, 0xffffffffu, 0xffffffffu);
  ck_assert_uint_eq (read_table (&m, p), 1);
  ck_assert_uint_eq (p[0].offset, 1024 * 512);
  ck_assert_uint_eq (p[0].size, 1024 * 512);
  free (m.data);
}
END_TEST

Suite *
parttable_suite (void)
{
  Suite *s = suite_create ("parttable");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_mbr_with_logicals);
  tcase_add_test (tc, test_ebr_loop_ends);
  tcase_add_test (tc, test_gpt);
  tcase_add_test (tc, test_gpt_4k);
  tcase_add_test (tc, test_sector_size_given);
  tcase_add_test (tc, test_no_table);
  tcase_add_test (tc, test_mbr_bounds);
  suite_add_tcase (s, tc);
  return s;
}

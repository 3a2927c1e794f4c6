/* netvsc-patch: counting a hive from its bytes (regf_count.h).
 *
 * Verification's count, made on the original and on the written hive.
 * Through hivex it cost about 4 ms for a 12 MB SYSTEM hive (a list
 * allocated for every key's values and subkeys, each cell checked
 * again by each call); read here from the bytes, a fraction of that.
 * The written hive is still read back through hivex for the values
 * themselves (apply.c), so two readers agree on it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "regf.h"
#include "regf_count.h"

/* Offsets inside a hive count from the first hive bin, after the base
 * block. */
struct cells {
  const unsigned char *bins;
  size_t len;                   /* bytes of hive bins */
  unsigned char *used;          /* a bit per 4 bytes: an allocated cell starts there */
  unsigned char *seen;          /* a bit per 4 bytes: a key visited there */
  uint32_t *stack;              /* keys to visit */
  size_t depth, cap;
  size_t keys, values;
  /* References still allowed: every list entry (values, subkeys, data
   * segments) takes 4 bytes or more of a cell of its own, so a hive
   * whose lists hold more than its bytes / 4 reuses one.  Without this
   * bound, lists that share a list could make the walk quadratic. */
  size_t budget;
  int spent;                    /* the budget ran out: no lenient count either */
};

/* Take N references from the budget: 0, or -1 (ELOOP) if it runs out. */
static int
spend (struct cells *c, size_t n)
{
  if (n > c->budget) {
    c->spent = 1;
    errno = ELOOP;
    return -1;
  }
  c->budget -= n;
  return 0;
}

#define BIT_TEST(map, off) ((map)[(off) >> 5] & (1u << (((off) >> 2) & 7)))
#define BIT_SET(map, off) ((map)[(off) >> 5] |= (unsigned char) (1u << (((off) >> 2) & 7)))

/* Where the allocated cells start, bin by bin.  A bin without its
 * header, or one that does not fit, ends the walk; a cell whose size
 * cannot be right ends its bin: the cells after it are not indexed, so
 * a reference to them is a fault. */
static void
index_cells (struct cells *c)
{
  size_t bin = 0;

  while (c->len - bin >= 0x20) {
    const unsigned char *h = c->bins + bin;
    uint32_t size = get_le32 (h + 8);
    if (memcmp (h, "hbin", 4) != 0 || size < 0x1000 || size % 0x1000 != 0 ||
        size > c->len - bin)
      return;
    for (size_t at = bin + 0x20; bin + size - at >= 4;) {
      uint32_t raw = get_le32 (c->bins + at);
      uint32_t n = (raw & 0x80000000u) ? 0u - raw : raw;
      if (n < 8 || n % 4 != 0 || n > bin + size - at)
        break;
      if (raw & 0x80000000u)
        BIT_SET (c->used, at);
      at += n;
    }
    bin += size;
  }
}

/* The allocated cell at OFF: its data (after the size) and its data's
 * length; NULL if no allocated cell starts at OFF. */
static const unsigned char *
cell (const struct cells *c, uint32_t off, uint32_t *len)
{
  if (off % 4 != 0 || off >= c->len || !BIT_TEST (c->used, off))
    return NULL;
  /* indexed: the size is negative and the cell inside its bin */
  *len = (0u - get_le32 (c->bins + off)) - 4;
  return c->bins + off + 4;
}

/* The allocated cell at OFF, at least MIN bytes, with signature SIG
 * (NULL: any). */
static const unsigned char *
record (const struct cells *c, uint32_t off, uint32_t min, const char *sig, uint32_t *len)
{
  const unsigned char *p = cell (c, off, len);

  if (p == NULL || *len < min || (sig && memcmp (p, sig, 2) != 0))
    return NULL;
  return p;
}

static int
push (struct cells *c, uint32_t off)
{
  if (c->depth == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 1024;
    uint32_t *s = realloc (c->stack, cap * sizeof *s);
    if (s == NULL)
      return -1;
    c->stack = s;
    c->cap = cap;
  }
  c->stack[c->depth++] = off;
  return 0;
}

/* A value: a "vk" cell, its name inside it, its data inline or in
 * cells. */
static int
value_ok (struct cells *c, uint32_t off)
{
  uint32_t len, dlen, size, data, seglen;
  const unsigned char *vk = record (c, off, 0x14, "vk", &len), *db, *list;

  if (vk == NULL || 0x14u + get_le16 (vk + 2) > len)
    return 0;
  size = get_le32 (vk + 4);
  if (size & 0x80000000u)
    return (size & 0x7fffffffu) <= 4;
  data = get_le32 (vk + 8);
  if (size == 0)
    return 1;
  if (cell (c, data, &dlen) == NULL)
    return 0;
  if (size <= dlen)
    return 1;
  /* larger than its cell: a "db" cell listing the segments */
  db = record (c, data, 8, "db", &dlen);
  if (db == NULL || get_le16 (db + 2) == 0)
    return 0;
  list = record (c, get_le32 (db + 4), 4u * get_le16 (db + 2), NULL, &dlen);
  if (list == NULL || spend (c, get_le16 (db + 2)) == -1)
    return 0;
  for (unsigned i = 0; i < get_le16 (db + 2); i++)
    if (cell (c, get_le32 (list + 4 * i), &seglen) == NULL)
      return 0;
  return 1;
}

/* The subkeys a list holds, pushed, checked as lists first: an "lf",
 * "lh" or "li" list, or (at LEVEL 0) an "ri" list of those.  The number
 * of subkeys found is added to *N.  0, or -1 (errno) on a fault. */
static int
push_list (struct cells *c, uint32_t off, int level, uint32_t *n)
{
  uint32_t len, count, step;
  const unsigned char *l = record (c, off, 4, NULL, &len);

  if (l == NULL) {
    errno = EINVAL;
    return -1;
  }
  count = get_le16 (l + 2);
  if (memcmp (l, "lf", 2) == 0 || memcmp (l, "lh", 2) == 0)
    step = 8;
  else if (memcmp (l, "li", 2) == 0 || (level == 0 && memcmp (l, "ri", 2) == 0))
    step = 4;
  else {
    errno = EINVAL;
    return -1;
  }
  if (4u + count * step > len) {
    errno = EINVAL;
    return -1;
  }
  if (spend (c, count) == -1)
    return -1;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t child = get_le32 (l + 4 + i * step);
    if (l[0] == 'r') {
      if (push_list (c, child, 1, n) == -1)
        return -1;
      continue;
    }
    if (push (c, child) == -1) {
      errno = ENOMEM;
      return -1;
    }
    ++*n;
  }
  return 0;
}

/* Visit the key at OFF: count it and its values, push its subkeys.  0,
 * or -1 with errno on a fault (the key and the values before it stay
 * counted, no subkey pushed). */
static int
visit (struct cells *c, uint32_t off)
{
  uint32_t len, vlen, n_values, n_subkeys, found = 0;
  size_t depth = c->depth;
  int listed;
  const unsigned char *nk = record (c, off, 0x4c, "nk", &len), *list;

  if (nk == NULL || 0x4cu + get_le16 (nk + 0x48) > len) {
    errno = EINVAL;
    return -1;
  }
  if (BIT_TEST (c->seen, off)) {
    errno = ELOOP;
    return -1;
  }
  BIT_SET (c->seen, off);
  c->keys++;
  n_values = get_le32 (nk + 0x24);
  if (n_values) {
    list = n_values <= UINT32_MAX / 4
      ? record (c, get_le32 (nk + REGF_NK_VALUE_LIST_AT), 4 * n_values, NULL, &vlen) : NULL;
    if (list == NULL) {
      errno = EINVAL;
      return -1;
    }
    if (spend (c, n_values) == -1)
      return -1;
    for (uint32_t i = 0; i < n_values; i++) {
      if (!value_ok (c, get_le32 (list + 4 * i))) {
        errno = c->spent ? ELOOP : EINVAL;
        return -1;
      }
      c->values++;
    }
  }
  n_subkeys = get_le32 (nk + 0x14);
  if (n_subkeys == 0)
    return 0;
  listed = push_list (c, get_le32 (nk + 0x1c), 0, &found);
  if (listed == 0 && found != n_subkeys) {
    errno = EINVAL;
    listed = -1;
  }
  if (listed == -1)
    c->depth = depth;          /* none of its subkeys */
  return listed;
}

int
regf_count (const unsigned char *buf, size_t len, int skip_bad, size_t *n_keys,
            size_t *n_values)
{
  struct cells c;
  size_t data;
  int r = 0;

  *n_keys = *n_values = 0;
  if (len < REGF_BASE_BLOCK_SIZE || memcmp (buf, "regf", 4) != 0) {
    errno = EINVAL;
    return -1;
  }
  memset (&c, 0, sizeof c);
  c.bins = buf + REGF_BASE_BLOCK_SIZE;
  c.len = len - REGF_BASE_BLOCK_SIZE;
  /* the bins the base block declares, as hivex reads them */
  data = get_le32 (buf + 0x28);
  if (data < c.len)
    c.len = data;
  c.budget = c.len / 4;
  /* Zeroed by writing, not by calloc: a fresh mapping read before it
   * is written maps the shared zero page, and the write that follows
   * copies it and flushes the TLB of every CPU the process runs on (a
   * cross-CPU interrupt a page, while the census's thread runs beside
   * the main one). */
  c.used = malloc (c.len / 32 + 1);
  c.seen = malloc (c.len / 32 + 1);
  if (c.used == NULL || c.seen == NULL || push (&c, get_le32 (buf + 0x24)) == -1) {
    errno = ENOMEM;
    r = -1;
    goto out;
  }
  memset (c.used, 0, c.len / 32 + 1);
  memset (c.seen, 0, c.len / 32 + 1);
  index_cells (&c);
  while (c.depth > 0) {
    uint32_t off = c.stack[--c.depth];
    if (visit (&c, off) == 0)
      continue;
    /* lenient: past any fault but running out of memory or budget */
    if (!skip_bad || errno == ENOMEM || c.spent) {
      r = -1;
      break;
    }
  }
  *n_keys = c.keys;
  *n_values = c.values;
 out:
  free (c.used);
  free (c.seen);
  free (c.stack);
  return r;
}

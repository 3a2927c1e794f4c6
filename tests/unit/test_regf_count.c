/* Unit tests: verification's count from a hive's bytes (regf_count.h),
 * checked against hivex's own walk (hivex_visit, which decodes every
 * name and value) and on hives broken in known ways. */
#include <errno.h>
#include <fcntl.h>
#include <hivex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "regf_count.h"
#include "unit.h"


/* hivex's strict walk of BUF: 0 with the counts, or -1. */
static int
hivex_counts (const unsigned char *buf, size_t len, size_t *keys, size_t *values)
{
  char path[] = "/tmp/netvsc-unit-regf.XXXXXX";
  int fd = mkstemp (path), r = -1;
  hive_h *h;

  ck_assert_int_ne (fd, -1);
  ck_assert_int_eq (write (fd, buf, len), (ssize_t) len);
  close (fd);
  *keys = *values = 0;
  h = hivex_open (path, 0);
  if (h) {
    r = hivex_visit_count (h, keys, values);
    hivex_close (h);
  }
  unlink (path);
  return r;
}

static const char *fixtures[] = {
  "ws2019", "w2008r2", "multi", "software", "advanced", "split-cs", "regsz",
  "oddtypes", "escapes", "no-netvsc", "no-select", "bad-select",
};

/* Every fixture counts strictly, as many keys and values as hivex
 * visits; so do copies with random words overwritten wherever both
 * accept them (hivex reads names and data, which the count does not, so
 * either may refuse a copy the other accepts). */
START_TEST (test_agrees_with_hivex)
{
  unsigned seed = 11;
  int both = 0;

  for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
    size_t len, k, v, hk, hv;
    unsigned char *buf = file_bytes (fixture_hive (fixtures[i]), &len);

    ck_assert_msg (regf_count (buf, len, 0, &k, &v) == 0, "%s: %s", fixtures[i],
                   strerror (errno));
    ck_assert_int_eq (hivex_counts (buf, len, &hk, &hv), 0);
    ck_assert_msg (k == hk && v == hv, "%s: %zu/%zu, hivex %zu/%zu", fixtures[i], k, v,
                   hk, hv);
    for (int m = 0; m < 40; m++) {
      unsigned char *copy = malloc (len);
      int r, hr;
      ck_assert_ptr_nonnull (copy);
      memcpy (copy, buf, len);
      for (int j = 0; j < 4; j++) {
        seed = seed * 1103515245 + 12345;
        put_le32 (copy + 4096 + ((seed >> 4) % (len - 4100)) / 4 * 4, seed * 2654435761u);
      }
      r = regf_count (copy, len, 0, &k, &v);
      hr = hivex_counts (copy, len, &hk, &hv);
      if (r == 0 && hr == 0) {
        both++;
        ck_assert_msg (k == hk && v == hv, "%s mutation %d: %zu/%zu, hivex %zu/%zu",
                       fixtures[i], m, k, v, hk, hv);
      }
      free (copy);
    }
    free (buf);
  }
  ck_assert_int_gt (both, 50);
}
END_TEST

/* The bytes of a key: the "nk" record of the node hivex calls NODE (a
 * file offset). */
#define NK(buf, node) ((buf) + (node) + 4)

struct scene {
  unsigned char *buf;
  size_t len;
  hive_h *h;
  char path[64];
  hive_node_h root;
};

static void
scene_open (struct scene *s, const char *fixture)
{
  s->buf = file_bytes (fixture_hive (fixture), &s->len);
  snprintf (s->path, sizeof s->path, "%s", fixture_hive (fixture));
  s->h = hivex_open (fixture_hive (fixture), 0);
  ck_assert_ptr_nonnull (s->h);
  s->root = hivex_root (s->h);
}

static void
scene_close (struct scene *s)
{
  hivex_close (s->h);
  free (s->buf);
}

/* A key with subkeys and one of its subkeys that has none. */
static void
parent_and_leaf (struct scene *s, hive_node_h *parent, hive_node_h *leaf)
{
  hive_node_h *kids = hivex_node_children (s->h, s->root);

  ck_assert_ptr_nonnull (kids);
  *parent = s->root;
  for (;;) {
    hive_node_h *next;
    ck_assert_msg (kids[0] != 0, "no leaf found");
    next = hivex_node_children (s->h, kids[0]);
    ck_assert_ptr_nonnull (next);
    if (next[0] == 0) {
      *leaf = kids[0];
      free (next);
      free (kids);
      return;
    }
    *parent = kids[0];
    free (kids);
    kids = next;
  }
}

/* The "vk" record of a value at or below NODE whose data is in a cell. */
static unsigned char *
value_in_a_cell (struct scene *s, hive_node_h node)
{
  hive_value_h *vals = hivex_node_values (s->h, node);
  hive_node_h *kids;
  unsigned char *found = NULL;

  for (size_t j = 0; vals && vals[j] && !found; j++) {
    uint32_t size = get_le32 (NK (s->buf, vals[j]) + 4);
    if (!(size & 0x80000000u) && size > 4)
      found = NK (s->buf, vals[j]);
  }
  free (vals);
  kids = found ? NULL : hivex_node_children (s->h, node);
  for (size_t i = 0; kids && kids[i] && !found; i++)
    found = value_in_a_cell (s, kids[i]);
  free (kids);
  return found;
}

static void
assert_fault (const struct scene *s, int want_errno, const char *what)
{
  size_t k, v;

  errno = 0;
  ck_assert_msg (regf_count (s->buf, s->len, 0, &k, &v) == -1, "%s: counted", what);
  ck_assert_msg (errno == want_errno, "%s: %s", what, strerror (errno));
}

/* A key whose subkey list is its parent's: it is its own subkey.  The
 * strict count says ELOOP; the lenient one skips the keys reached again
 * and counts the hive as it was. */
START_TEST (test_cycle)
{
  struct scene s;
  hive_node_h parent, leaf;
  size_t k0, v0, k, v;

  scene_open (&s, "ws2019");
  ck_assert_int_eq (regf_count (s.buf, s.len, 0, &k0, &v0), 0);
  parent_and_leaf (&s, &parent, &leaf);
  memcpy (NK (s.buf, leaf) + 0x14, NK (s.buf, parent) + 0x14, 4);  /* nr_subkeys */
  memcpy (NK (s.buf, leaf) + 0x1c, NK (s.buf, parent) + 0x1c, 4);  /* subkey list */
  assert_fault (&s, ELOOP, "cycle");
  ck_assert_int_eq (regf_count (s.buf, s.len, 1, &k, &v), 0);
  ck_assert_uint_eq (k, k0);
  ck_assert_uint_eq (v, v0);
  scene_close (&s);
}
END_TEST

START_TEST (test_faults)
{
  struct scene s;
  hive_node_h parent, leaf;
  size_t k, v;

  /* a key's name longer than its cell */
  scene_open (&s, "ws2019");
  parent_and_leaf (&s, &parent, &leaf);
  put_le32 (NK (s.buf, leaf) + 0x48, 0xfff0);
  assert_fault (&s, EINVAL, "name past the cell");
  /* lenient: the key is skipped, the rest counted */
  ck_assert_int_eq (regf_count (s.buf, s.len, 1, &k, &v), 0);
  scene_close (&s);

  /* one subkey more than the list holds */
  scene_open (&s, "ws2019");
  put_le32 (NK (s.buf, s.root) + 0x14, get_le32 (NK (s.buf, s.root) + 0x14) + 1);
  assert_fault (&s, EINVAL, "subkey count");
  scene_close (&s);

  /* a subkey list that is a key */
  scene_open (&s, "ws2019");
  parent_and_leaf (&s, &parent, &leaf);
  put_le32 (NK (s.buf, parent) + 0x1c, (uint32_t) leaf - 4096);
  assert_fault (&s, EINVAL, "list is a key");
  scene_close (&s);

  /* an "ri" list whose entries are keys, not lists */
  scene_open (&s, "ws2019");
  {
    uint32_t list = get_le32 (NK (s.buf, s.root) + 0x1c);
    memcpy (s.buf + 4096 + list + 4, "ri", 2);
  }
  assert_fault (&s, EINVAL, "ri of keys");
  scene_close (&s);

  /* a value's data larger than its cell, which is not a "db" */
  scene_open (&s, "ws2019");
  {
    unsigned char *vk = value_in_a_cell (&s, s.root);
    ck_assert_msg (vk != NULL, "no value with its data in a cell");
    put_le32 (vk + 4, 0x7ff000);
  }
  assert_fault (&s, EINVAL, "data past its cell");
  scene_close (&s);

  /* the root is not a key */
  scene_open (&s, "ws2019");
  put_le32 (s.buf + 0x24, 0x7ffffff0);
  assert_fault (&s, EINVAL, "root offset");
  scene_close (&s);

  /* not a hive */
  scene_open (&s, "ws2019");
  memcpy (s.buf, "regx", 4);
  assert_fault (&s, EINVAL, "signature");
  scene_close (&s);
}
END_TEST

/* Lists that share a list: a key whose "ri" list names one subkey list
 * 60,000 times.  Counting each would take the walk far past the number
 * of references the hive's bytes can hold: the budget stops it, in both
 * counts. */
START_TEST (test_shared_lists)
{
  struct scene s;
  size_t k, v, big, n = 60000;
  unsigned char *buf;
  uint32_t sub, kids, bin;

  scene_open (&s, "ws2019");
  sub = get_le32 (NK (s.buf, s.root) + 0x1c);
  kids = get_le32 (NK (s.buf, s.root) + 0x14);
  /* a new hive bin at the end holding the "ri" list */
  bin = (uint32_t) (s.len - 4096);
  big = ((0x20 + 8 + 4 * n) + 0xfff) & ~(size_t) 0xfff;
  buf = realloc (s.buf, s.len + big);
  ck_assert_ptr_nonnull (buf);
  s.buf = buf;
  memset (buf + s.len, 0, big);
  memcpy (buf + s.len, "hbin", 4);
  put_le32 (buf + s.len + 4, bin);
  put_le32 (buf + s.len + 8, (uint32_t) big);
  put_le32 (buf + s.len + 0x20, (uint32_t) -(int32_t) (big - 0x20));
  memcpy (buf + s.len + 0x24, "ri", 2);
  buf[s.len + 0x26] = (unsigned char) (n & 0xff);
  buf[s.len + 0x27] = (unsigned char) (n >> 8);
  for (size_t i = 0; i < n; i++)
    put_le32 (buf + s.len + 0x28 + 4 * i, sub);
  put_le32 (buf + 0x28, (uint32_t) (s.len + big - 4096));
  s.len += big;
  put_le32 (NK (buf, s.root) + 0x1c, bin + 0x20);
  put_le32 (NK (buf, s.root) + 0x14, (uint32_t) (kids * n));
  assert_fault (&s, ELOOP, "shared lists");
  errno = 0;
  ck_assert_int_eq (regf_count (s.buf, s.len, 1, &k, &v), -1);
  ck_assert_int_eq (errno, ELOOP);
  scene_close (&s);
}
END_TEST

/* Every cut of a hive short of its end: no read past the bytes given
 * (the sanitizer build of these tests would see one), a fault or a
 * count. */
START_TEST (test_truncated)
{
  size_t len, k, v;
  unsigned char *buf = file_bytes (fixture_hive ("w2008r2"), &len);

  for (size_t cut = 0; cut < len; cut += cut < 4200 ? 1 : 61) {
    unsigned char *part = malloc (cut ? cut : 1);
    ck_assert_ptr_nonnull (part);
    memcpy (part, buf, cut);
    errno = 0;
    if (regf_count (part, cut, 0, &k, &v) == -1)
      ck_assert_int_ne (errno, 0);
    regf_count (part, cut, 1, &k, &v);
    free (part);
  }
  free (buf);
}
END_TEST

Suite *
regf_count_suite (void)
{
  Suite *s = suite_create ("regf_count");
  TCase *tc = tcase_create ("count");

  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_agrees_with_hivex);
  tcase_add_test (tc, test_cycle);
  tcase_add_test (tc, test_faults);
  tcase_add_test (tc, test_shared_lists);
  tcase_add_test (tc, test_truncated);
  suite_add_tcase (s, tc);
  return s;
}

/* Unit tests: base block, control sets and adapter enumeration on the
 * suite's own fixture hives. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "hive.h"
#include "hive_count.h"
#include "match.h"

static void
poke32 (const char *path, off_t off, uint32_t v)
{
  int fd = open (path, O_RDWR);
  unsigned char b[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24 };

  ck_assert_int_ne (fd, -1);
  ck_assert_int_eq (pwrite (fd, b, 4, off), 4);
  close (fd);
}

START_TEST (test_base_block_clean)
{
  struct base_block bb;
  struct np_error err;

  ck_assert_msg (hive_read_base_block (fixture_hive ("ws2019"), &bb, &err) == 0, "%s", err.msg);
  ck_assert (!base_block_is_dirty (&bb));
  ck_assert_uint_eq (bb.seq_primary, bb.seq_secondary);
  ck_assert_uint_eq (bb.checksum, bb.checksum_computed);
}
END_TEST

START_TEST (test_base_block_dirty)
{
  char *copy = fixture_copy ("ws2019");
  struct base_block bb;
  struct np_error err;
  char why[128];

  /* secondary sequence number behind: Windows would replay the logs */
  poke32 (copy, 8, 0x655);
  poke32 (copy, 4, 0x656);
  ck_assert_int_eq (hive_read_base_block (copy, &bb, &err), 0);
  ck_assert (base_block_is_dirty (&bb));
  base_block_describe (&bb, why, sizeof why);
  ck_assert_str_eq (why, "sequence numbers differ (0x656 / 0x655)");

  /* equal sequence numbers but a wrong checksum */
  poke32 (copy, 8, 0x656);
  poke32 (copy, 508, 0x12345678);
  ck_assert_int_eq (hive_read_base_block (copy, &bb, &err), 0);
  ck_assert (base_block_is_dirty (&bb));
  base_block_describe (&bb, why, sizeof why);
  ck_assert_ptr_nonnull (strstr (why, "checksum is wrong"));
  unlink (copy);
  free (copy);
}
END_TEST

START_TEST (test_not_a_hive)
{
  struct base_block bb;
  struct np_error err;
  char *copy = fixture_copy ("ws2019");

  ck_assert_int_eq (hive_read_base_block ("/etc/passwd", &bb, &err), -1);
  ck_assert_ptr_nonnull (strstr (err.msg, "not a registry hive"));
  ck_assert_int_eq (hive_read_base_block ("/nonexistent", &bb, &err), -1);
  ck_assert_ptr_nonnull (strstr (err.msg, "/nonexistent: cannot open"));
  poke32 (copy, 28, 1);         /* file type 1: a transaction log */
  ck_assert_int_eq (hive_read_base_block (copy, &bb, &err), -1);
  ck_assert_ptr_nonnull (strstr (err.msg, "not a primary hive file"));
  unlink (copy);
  free (copy);
}
END_TEST

static void
control_sets_of (const char *fixture, const char *arg, struct control_sets *cs,
                 int expect_ok, struct np_error *err)
{
  struct hive hv;
  struct cs_request req = { CS_SELECTED, 0 };

  if (arg)
    ck_assert_int_eq (cs_request_parse (arg, &req), 0);
  ck_assert_msg (hive_open (&hv, fixture_hive (fixture), 0, err) == 0, "%s", err->msg);
  ck_assert_int_eq (hive_control_sets (&hv, &req, cs, err), expect_ok ? 0 : -1);
  hive_close (&hv);
}

START_TEST (test_control_sets)
{
  struct control_sets cs;
  struct np_error err;

  control_sets_of ("ws2019", NULL, &cs, 1, &err);
  ck_assert_uint_eq (cs.n, 1);
  ck_assert_str_eq (cs.v[0].name, "ControlSet001");
  ck_assert_str_eq (cs.v[0].why, "current, default");
  control_sets_free (&cs);

  control_sets_of ("split-cs", NULL, &cs, 1, &err);
  ck_assert_uint_eq (cs.n, 2);
  ck_assert_str_eq (cs.v[0].name, "ControlSet002");
  ck_assert_str_eq (cs.v[0].why, "current");
  ck_assert_str_eq (cs.v[1].name, "ControlSet001");
  ck_assert_str_eq (cs.v[1].why, "default");
  control_sets_free (&cs);

  control_sets_of ("split-cs", "current", &cs, 1, &err);
  ck_assert_uint_eq (cs.n, 1);
  ck_assert_str_eq (cs.v[0].name, "ControlSet002");
  control_sets_free (&cs);

  control_sets_of ("split-cs", "default", &cs, 1, &err);
  ck_assert_uint_eq (cs.n, 1);
  ck_assert_str_eq (cs.v[0].name, "ControlSet001");
  control_sets_free (&cs);

  control_sets_of ("split-cs", "all", &cs, 1, &err);
  ck_assert_uint_eq (cs.n, 3);
  control_sets_free (&cs);

  control_sets_of ("split-cs", "3", &cs, 1, &err);
  ck_assert_uint_eq (cs.n, 1);
  ck_assert_str_eq (cs.v[0].name, "ControlSet003");
  control_sets_free (&cs);

  control_sets_of ("split-cs", "ControlSet001", &cs, 1, &err);
  ck_assert_str_eq (cs.v[0].name, "ControlSet001");
  control_sets_free (&cs);

  control_sets_of ("split-cs", "7", &cs, 0, &err);
  ck_assert_ptr_nonnull (strstr (err.msg, "ControlSet007 does not exist"));
  control_sets_free (&cs);
}
END_TEST

START_TEST (test_control_set_errors)
{
  struct control_sets cs;
  struct np_error err;
  struct cs_request req;

  control_sets_of ("no-select", NULL, &cs, 0, &err);
  ck_assert_ptr_nonnull (strstr (err.msg, "no Select key"));
  ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);
  control_sets_free (&cs);
  /* but an explicit set works without Select */
  control_sets_of ("no-select", "all", &cs, 1, &err);
  ck_assert_uint_eq (cs.n, 1);
  control_sets_free (&cs);

  control_sets_of ("bad-select", NULL, &cs, 0, &err);
  ck_assert_ptr_nonnull (strstr (err.msg, "Select\\Current points at ControlSet005, which does not exist"));
  control_sets_free (&cs);

  ck_assert_int_eq (cs_request_parse ("0", &req), -1);
  ck_assert_int_eq (cs_request_parse ("1000", &req), -1);
  ck_assert_int_eq (cs_request_parse ("x", &req), -1);
  ck_assert_int_eq (cs_request_parse ("-1", &req), -1);
  ck_assert_int_eq (cs_request_parse ("", &req), -1);
}
END_TEST

/* Enumerate FIXTURE's adapters in the selected control sets with SPEC. */
static void
enumerate (const char *fixture, const char *cs_arg, const char *spec,
           struct adapter_list *list)
{
  struct hive hv;
  struct control_sets cs;
  struct cs_request req = { CS_SELECTED, 0 };
  struct match_spec m;
  struct np_error err;
  const char *why;

  if (cs_arg)
    ck_assert_int_eq (cs_request_parse (cs_arg, &req), 0);
  ck_assert_int_eq (match_parse (spec, &m, &why), 0);
  ck_assert_msg (hive_open (&hv, fixture_hive (fixture), 0, &err) == 0, "%s", err.msg);
  ck_assert_msg (hive_control_sets (&hv, &req, &cs, &err) == 0, "%s", err.msg);
  ck_assert_msg (adapters_enumerate (&hv, &cs, &m, &(struct request) { .n = 0 }, 0, list, &err) == 0, "%s", err.msg);
  control_sets_free (&cs);
  hive_close (&hv);
}

/* "0001,0011" for the matched instances. */
static void
matched_indexes (const struct adapter_list *l, char *buf, size_t len)
{
  buf[0] = '\0';
  for (size_t i = 0; i < l->n; i++)
    if (l->v[i].matched)
      snprintf (buf + strlen (buf), len - strlen (buf), "%s%s:%s", buf[0] ? "," : "",
                l->v[i].control_set + 10, l->v[i].index);
}

START_TEST (test_enumerate)
{
  struct adapter_list l;
  char got[256];

  enumerate ("ws2019", NULL, "netvsc", &l);
  matched_indexes (&l, got, sizeof got);
  ck_assert_str_eq (got, "001:0001");
  ck_assert_ptr_nonnull (strstr (l.v[1].desc, "Hyper-V"));
  ck_assert (!l.v[1].receive.present);
  for (size_t i = 0; i < l.n; i++)  /* "Properties" is not an instance */
    ck_assert_uint_eq (strlen (l.v[i].index), 4);
  adapters_free (&l);

  enumerate ("w2008r2", NULL, "netvsc", &l);
  matched_indexes (&l, got, sizeof got);
  ck_assert_str_eq (got, "001:0007");
  adapters_free (&l);

  enumerate ("multi", NULL, "netvsc", &l);
  matched_indexes (&l, got, sizeof got);
  ck_assert_str_eq (got, "001:0001,001:0011");
  adapters_free (&l);

  enumerate ("multi", NULL, "service:e1000", &l);
  matched_indexes (&l, got, sizeof got);
  ck_assert_str_eq (got, "001:0003");
  adapters_free (&l);

  enumerate ("split-cs", NULL, "netvsc", &l);
  matched_indexes (&l, got, sizeof got);
  ck_assert_str_eq (got, "002:0002,001:0001");
  adapters_free (&l);

  enumerate ("split-cs", "all", "netvsc", &l);
  matched_indexes (&l, got, sizeof got);
  ck_assert_str_eq (got, "001:0001,002:0002,003:0001");
  adapters_free (&l);

  enumerate ("no-netvsc", NULL, "netvsc", &l);
  matched_indexes (&l, got, sizeof got);
  ck_assert_str_eq (got, "");
  ck_assert_uint_gt (l.n, 0);
  adapters_free (&l);

  enumerate ("regsz", NULL, "netvsc", &l);
  for (size_t i = 0; i < l.n; i++)
    if (l.v[i].matched) {
      ck_assert (l.v[i].receive.present);
      ck_assert (!l.v[i].receive.is_dword);
      ck_assert_int_eq (l.v[i].receive.type, hive_t_REG_SZ);
      ck_assert_str_eq (l.v[i].receive.text, "1024");
      ck_assert (l.v[i].send.is_dword);
      ck_assert_uint_eq (l.v[i].send.dword, 0x400);
    }
  adapters_free (&l);
}
END_TEST

/* The count a writable open makes alongside (hive_count.h) is the one
 * the census would make on the handle itself: strict, else lenient,
 * the same numbers; on the fixtures and on copies of ws2019 with bytes
 * of their cells overwritten (most of those still open with hivex, and
 * some then only count leniently or not at all). */
static void
census_rule (const char *path, int *r, int *skip_bad, size_t *keys, size_t *values)
{
  *skip_bad = 0;
  *r = hive_count_file (path, 0, keys, values);
  if (*r == -1) {
    *skip_bad = 1;
    *r = hive_count_file (path, 1, keys, values);
  }
}

START_TEST (test_count_alongside)
{
  const char *names[] = { "ws2019", "w2008r2", "multi", "software", "advanced" };
  unsigned seed = 7;
  int lenient = 0, failed = 0;

  for (size_t i = 0; i < sizeof names / sizeof *names + 60; i++) {
    char *copy = fixture_copy (i < 5 ? names[i] : "ws2019");
    struct hive hv;
    struct np_error err;
    int r1, r2, sb1 = -1, sb2 = -1;
    size_t k1 = 0, v1 = 0, k2 = 0, v2 = 0;

    if (i >= 5) {
      off_t size;
      int fd = open (copy, O_RDONLY);
      ck_assert_int_ne (fd, -1);
      size = lseek (fd, 0, SEEK_END);
      close (fd);
      for (int j = 0; j < 6; j++) {
        seed = seed * 1103515245 + 12345;
        poke32 (copy, 4096 + (off_t) ((seed >> 4) % (unsigned) (size - 4100)) / 4 * 4,
                seed * 2654435761u);
      }
    }
    if (hive_open (&hv, copy, 1, &err) == -1) {
      ck_assert_ptr_null (hv.census);   /* its thread was waited for */
      unlink (copy);
      free (copy);
      continue;
    }
    ck_assert_ptr_nonnull (hv.census);
    r1 = hive_count_finish (hv.census, &sb1, &k1, &v1);
    hv.census = NULL;
    ck_assert_int_eq (hive_count_finish (NULL, &sb1, &k1, &v1), -1);
    ck_assert_int_eq (errno, 0);
    census_rule (copy, &r2, &sb2, &k2, &v2);
    if (r1 == 0) {
      ck_assert_int_eq (sb1, sb2);
      ck_assert_uint_eq (k1, k2);
      ck_assert_uint_eq (v1, v2);
      lenient += sb1;
      if (i < 5)
        ck_assert_msg (sb1 == 0 && k1 > 5 && v1 > 5, "%s: %zu keys, %zu values", names[i], k1, v1);
    }
    else
      failed++;
    hive_close (&hv);
    unlink (copy);
    free (copy);
  }
  /* the mutations reached the census's lenient count */
  ck_assert_msg (lenient > 0, "lenient %d, failed %d", lenient, failed);
}
END_TEST

/* A writable open that is closed without its count being taken (a run
 * with nothing to write) waits for the thread: nothing leaks, and a
 * read-only open starts none. */
START_TEST (test_count_not_taken)
{
  char *copy = fixture_copy ("ws2019");
  struct hive hv;
  struct np_error err;

  ck_assert_msg (hive_open (&hv, copy, 1, &err) == 0, "%s", err.msg);
  hive_close (&hv);
  ck_assert_ptr_null (hv.census);
  ck_assert_msg (hive_open (&hv, copy, 0, &err) == 0, "%s", err.msg);
  ck_assert_ptr_null (hv.census);
  hive_close (&hv);
  unlink (copy);
  free (copy);
}
END_TEST

static uint32_t
peek32 (const char *path, off_t off)
{
  unsigned char b[4];
  int fd = open (path, O_RDONLY);

  ck_assert_int_ne (fd, -1);
  ck_assert_int_eq (pread (fd, b, 4, off), 4);
  close (fd);
  return (uint32_t) b[0] | (uint32_t) b[1] << 8 | (uint32_t) b[2] << 16 | (uint32_t) b[3] << 24;
}

/* ws2019's Hyper-V adapter key, in a fresh copy made broken by BREAK
 * (file offsets of the key's record, its value list's entries, and its
 * first value whose data is in a cell); hive_values_rewritable's result
 * and errno. */
struct values_scene {
  const char *path;
  off_t nk, list;               /* the key's "nk" data, its list's entries */
  off_t vk;                     /* a value whose data is in a cell: its "vk" data */
};

static void
values_case (void (*broken) (const struct values_scene *), int want, int want_errno)
{
  char *copy = fixture_copy ("ws2019");
  struct hive hv;
  struct np_error err;
  struct values_scene sc = { copy, 0, 0, 0 };
  hive_node_h node;
  hive_value_h *values;

  ck_assert_msg (hive_open (&hv, copy, 0, &err) == 0, "%s", err.msg);
  node = hive_lookup (&hv, hivex_root (hv.h), "ControlSet001\\" NET_CLASS_PATH "\\0001");
  ck_assert (node != 0);
  sc.nk = (off_t) node + 4;
  sc.list = 4096 + (off_t) peek32 (copy, sc.nk + 0x28) + 4;
  values = hivex_node_values (hv.h, node);
  ck_assert_ptr_nonnull (values);
  for (size_t i = 0; values[i] && sc.vk == 0; i++) {
    uint32_t len = peek32 (copy, (off_t) values[i] + 4 + 4);
    if (!(len & 0x80000000u) && len > 4)
      sc.vk = (off_t) values[i] + 4;
  }
  ck_assert (sc.vk != 0);
  free (values);
  hive_close (&hv);
  if (broken)
    broken (&sc);
  ck_assert_msg (hive_open (&hv, copy, 0, &err) == 0, "%s", err.msg);
  errno = 0;
  ck_assert_int_eq (hive_values_rewritable (&hv, node), want);
  if (want == -1)
    ck_assert_int_eq (errno, want_errno);
  hive_close (&hv);
  unlink (copy);
  free (copy);
}

/* what tests/crash-hive.py does: the list's first value twice */
static void
value_twice (const struct values_scene *sc)
{
  poke32 (sc->path, sc->list + 4, peek32 (sc->path, sc->list));
}

static void
data_is_the_list (const struct values_scene *sc)
{
  poke32 (sc->path, sc->vk + 8, peek32 (sc->path, sc->nk + 0x28));
}

static void
data_is_the_key (const struct values_scene *sc)
{
  poke32 (sc->path, sc->vk + 8, (uint32_t) (sc->nk - 4 - 4096));
}

static void
data_nowhere (const struct values_scene *sc)
{
  poke32 (sc->path, sc->vk + 8, 0x7ffffff0);
}

/* libhivex frees a key's value list, values and data one by one when it
 * rewrites them, and aborts on a cell freed twice: hive_values_rewritable
 * says beforehand (apply_plan refuses then). */
START_TEST (test_values_rewritable)
{
  values_case (NULL, 0, 0);
  values_case (value_twice, -1, EINVAL);
  values_case (data_is_the_list, -1, EINVAL);
  values_case (data_is_the_key, -1, EINVAL);
  values_case (data_nowhere, -1, EINVAL);
}
END_TEST

Suite *
hive_suite (void)
{
  Suite *s = suite_create ("hive");
  TCase *tc = tcase_create ("read");

  tcase_add_test (tc, test_base_block_clean);
  tcase_add_test (tc, test_base_block_dirty);
  tcase_add_test (tc, test_not_a_hive);
  tcase_add_test (tc, test_control_sets);
  tcase_add_test (tc, test_control_set_errors);
  tcase_add_test (tc, test_enumerate);
  tcase_add_test (tc, test_count_alongside);
  tcase_add_test (tc, test_count_not_taken);
  tcase_add_test (tc, test_values_rewritable);
  suite_add_tcase (s, tc);
  return s;
}

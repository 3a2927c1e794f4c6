/* netvsc-patch unit tests: runner. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "hostfile.h"

const char *
fixture_hive (const char *name)
{
  static char path[4096];
  const char *dir = getenv ("FIXTURES");

  snprintf (path, sizeof path, "%s/hives/%s.hive", dir ? dir : "build/fixtures", name);
  return path;
}

unsigned char *
file_bytes (const char *path, size_t *size)
{
  FILE *f = fopen (path, "rb");
  unsigned char *buf;
  long n;

  ck_assert_msg (f != NULL, "%s: %s (run the unit tests from the top directory)", path,
                 strerror (errno));
  ck_assert_int_eq (fseek (f, 0, SEEK_END), 0);
  n = ftell (f);
  ck_assert_int_ge (n, 0);
  rewind (f);
  buf = malloc ((size_t) n + 1);
  ck_assert_ptr_nonnull (buf);
  ck_assert_uint_eq (fread (buf, 1, (size_t) n, f), (size_t) n);
  buf[n] = '\0';
  fclose (f);
  if (size)
    *size = (size_t) n;
  return buf;
}

struct visit_counts {
  size_t keys, values;
};

static int
count_node (hive_h *h, void *opaque, hive_node_h node, const char *name)
{
  (void) h; (void) node; (void) name;
  ((struct visit_counts *) opaque)->keys++;
  return 0;
}

static int
count_value (hive_h *h, void *opaque, hive_node_h node, hive_value_h value, hive_type t,
             size_t len, const char *key, const char *data)
{
  (void) h; (void) node; (void) value; (void) t; (void) len; (void) key; (void) data;
  ((struct visit_counts *) opaque)->values++;
  return 0;
}

int
hivex_visit_count (hive_h *h, size_t *keys, size_t *values)
{
  struct visit_counts c = { 0, 0 };
  struct hivex_visitor v = { .node_start = count_node, .value_any = count_value };
  int r = hivex_visit (h, &v, sizeof v, &c, 0);

  *keys = c.keys;
  *values = c.values;
  return r;
}

char *
fixture_copy (const char *name)
{
  char *tmp = strdup ("/tmp/netvsc-unit.XXXXXX");
  struct np_error err;
  int fd = mkstemp (tmp);

  ck_assert_int_ne (fd, -1);
  close (fd);
  unlink (tmp);
  ck_assert_msg (hostfile_copy (fixture_hive (name), tmp, &err) == 0, "%s", err.msg);
  return tmp;
}

int
main (void)
{
  SRunner *sr = srunner_create (size_suite ());
  int failed;

  srunner_add_suite (sr, format_suite ());
  srunner_add_suite (sr, match_suite ());
  srunner_add_suite (sr, hive_suite ());
  srunner_add_suite (sr, plan_suite ());
  srunner_add_suite (sr, replay_suite ());
  srunner_add_suite (sr, defer_suite ());
  srunner_add_suite (sr, ndi_suite ());
  srunner_add_suite (sr, guestdefer_suite ());
  srunner_add_suite (sr, parttable_suite ());
  srunner_add_suite (sr, escape_suite ());
  srunner_add_suite (sr, layers_suite ());
  srunner_add_suite (sr, winvol_suite ());
  srunner_add_suite (sr, status_suite ());
  srunner_add_suite (sr, utf16_suite ());
  srunner_add_suite (sr, domain_suite ());
  srunner_add_suite (sr, uri_suite ());
  srunner_add_suite (sr, bitlocker_suite ());
  srunner_add_suite (sr, regf_count_suite ());
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* netvsc-patch unit tests: runner. */
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

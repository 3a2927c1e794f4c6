/* Unit tests: the error record and the one place context is added to
 * a message (status.c). */
#include <string.h>

#include "unit.h"
#include "status.h"

START_TEST (test_context)
{
  struct np_error e;

  /* a backend's message starts with the image: the guest path goes after it */
  np_error_set (&e, NP_EXIT_RUNTIME, "img.vhd: cannot create the directory");
  np_error_context (&e, "img.vhd", "/Windows/x.ini");
  ck_assert_str_eq (e.msg, "img.vhd: /Windows/x.ini: cannot create the directory");
  ck_assert_int_eq (e.code, NP_EXIT_RUNTIME);
  /* already named: unchanged */
  np_error_context (&e, "img.vhd", "/Windows/x.ini");
  ck_assert_str_eq (e.msg, "img.vhd: /Windows/x.ini: cannot create the directory");
  /* a library's message without the image */
  np_error_set (&e, NP_EXIT_UNSAFE, "No space left on device");
  np_error_context (&e, "img.vhd", "/a");
  ck_assert_str_eq (e.msg, "img.vhd: /a: No space left on device");
  ck_assert_int_eq (e.code, NP_EXIT_UNSAFE);
}
END_TEST

START_TEST (test_wrap_append_clear)
{
  struct np_error e;

  np_error_set (&e, NP_EXIT_UNSAFE, "/tmp/x/SYSTEM: LOG1 holds 3 of 9 dirty pages");
  ck_assert_int_eq (np_error_wrap (&e, "/tmp/x/SYSTEM", "refused (%s): ", "dirty"), -1);
  ck_assert_str_eq (e.msg, "/tmp/x/SYSTEM: refused (dirty): LOG1 holds 3 of 9 dirty pages");
  ck_assert_int_eq (e.code, NP_EXIT_UNSAFE);
  np_error_append (&e, " (%d)", 4);
  ck_assert_str_eq (e.msg, "/tmp/x/SYSTEM: refused (dirty): LOG1 holds 3 of 9 dirty pages (4)");
  np_error_clear (&e);
  ck_assert_int_eq (e.code, NP_EXIT_OK);
  ck_assert_str_eq (e.msg, "");
  /* appending never runs past the record */
  memset (e.msg, 'a', sizeof e.msg - 1);
  e.msg[sizeof e.msg - 1] = '\0';
  np_error_append (&e, "; %s", "more");
  ck_assert_uint_eq (strlen (e.msg), sizeof e.msg - 1);
}
END_TEST

START_TEST (test_rename)
{
  struct np_error e;

  np_error_set (&e, NP_EXIT_RUNTIME, "/tmp/n.1/SYSTEM: bad; /tmp/n.1/SYSTEM again");
  np_error_rename (&e, "/tmp/n.1/SYSTEM", "win.vhd:/dev/sda2:/Windows/System32/config/SYSTEM");
  ck_assert_str_eq (e.msg, "win.vhd:/dev/sda2:/Windows/System32/config/SYSTEM: bad; "
                    "win.vhd:/dev/sda2:/Windows/System32/config/SYSTEM again");
  /* absent, or empty FROM: unchanged */
  np_error_rename (&e, "/nowhere", "x");
  np_error_rename (&e, "", "x");
  ck_assert (strncmp (e.msg, "win.vhd:", 8) == 0);
  /* a long replacement is cut at the record's size */
  {
    char big[2000];
    memset (big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    np_error_set (&e, NP_EXIT_RUNTIME, "T: x");
    np_error_rename (&e, "T", big);
    ck_assert_uint_eq (strlen (e.msg), sizeof e.msg - 1);
  }
}
END_TEST

Suite *
status_suite (void)
{
  Suite *s = suite_create ("status");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_context);
  tcase_add_test (tc, test_wrap_append_clear);
  tcase_add_test (tc, test_rename);
  suite_add_tcase (s, tc);
  return s;
}

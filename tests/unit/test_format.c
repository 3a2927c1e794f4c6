/* Unit tests: format detection by magic. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "format.h"

/* Write a SIZE-byte file with MAGIC at offset AT (AT < 0: from the end). */
static char *
make_file (size_t size, const char *magic, size_t mlen, long at)
{
  char *path = strdup ("/tmp/netvsc-fmt.XXXXXX");
  int fd = mkstemp (path);
  char *buf = calloc (1, size ? size : 1);

  ck_assert_int_ne (fd, -1);
  if (magic) {
    size_t off = at >= 0 ? (size_t) at : size - (size_t) -at;
    memcpy (buf + off, magic, mlen);
  }
  ck_assert_int_eq (write (fd, buf, size), (ssize_t) size);
  close (fd);
  free (buf);
  return path;
}

static void
expect_format (char *path, const char *want)
{
  struct np_error err = { 0, "" };
  const char *got = format_detect (path, &err);

  ck_assert_msg (got != NULL, "%s", err.msg);
  ck_assert_str_eq (got, want);
  unlink (path);
  free (path);
}

START_TEST (test_magics)
{
  expect_format (make_file (65536, "vhdxfile", 8, 0), "vhdx");
  expect_format (make_file (65536, "QFI\xfb", 4, 0), "qcow2");
  expect_format (make_file (65536, "KDMV", 4, 0), "vmdk");
  expect_format (make_file (4096, "# Disk DescriptorFile", 21, 0), "vmdk");
  expect_format (make_file (65536, "conectix", 8, 0), "vpc");      /* dynamic */
  expect_format (make_file (65536, "conectix", 8, -512), "vpc");   /* fixed */
  expect_format (make_file (65536, "conectix", 8, -511), "vpc");   /* old fixed */
  expect_format (make_file (65536, "QED\0", 4, 0), "qed");
  expect_format (make_file (65536, "\x7f\x10\xda\xbe", 4, 0x40), "vdi");
  expect_format (make_file (65536, NULL, 0, 0), "raw");
  /* An MBR with a raw disk's usual signature is raw. */
  expect_format (make_file (65536, "\x55\xaa", 2, 510), "raw");
}
END_TEST

START_TEST (test_bad_files)
{
  struct np_error err = { 0, "" };
  char *empty = make_file (0, NULL, 0, 0);
  char *tiny = make_file (100, NULL, 0, 0);

  ck_assert_ptr_null (format_detect (empty, &err));
  ck_assert_ptr_nonnull (strstr (err.msg, "empty file"));
  ck_assert_ptr_nonnull (strstr (err.msg, empty));
  ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);

  ck_assert_ptr_null (format_detect (tiny, &err));
  ck_assert_ptr_nonnull (strstr (err.msg, "too small"));

  ck_assert_ptr_null (format_detect ("/tmp", &err));
  ck_assert_ptr_nonnull (strstr (err.msg, "is a directory"));

  ck_assert_ptr_null (format_detect ("/nonexistent/disk.vhd", &err));
  ck_assert_ptr_nonnull (strstr (err.msg, "No such file"));
  unlink (empty);
  unlink (tiny);
  free (empty);
  free (tiny);
}
END_TEST

START_TEST (test_format_names)
{
  struct np_error err = { 0, "" };
  char *qcow = make_file (65536, "QFI\xfb", 4, 0);
  char *raw = make_file (65536, NULL, 0, 0);

  ck_assert_str_eq (format_canonical ("vhd"), "vpc");
  ck_assert_str_eq (format_canonical ("vhdx"), "vhdx");
  ck_assert_str_eq (format_canonical ("VHD"), "vpc");
  ck_assert_str_eq (format_canonical ("QCOW2"), "qcow2");
  ck_assert_str_eq (format_canonical ("VDI"), "vdi");
  ck_assert_str_eq (format_canonical ("qed"), "qed");
  ck_assert_ptr_null (format_canonical ("iso"));

  ck_assert_int_eq (format_check (qcow, "qcow2", &err), 0);
  ck_assert_int_eq (format_check (qcow, "raw", &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_USAGE);
  ck_assert_ptr_nonnull (strstr (err.msg, "which is qcow2"));
  ck_assert_int_eq (format_check (raw, "vhdx", &err), -1);
  ck_assert_ptr_nonnull (strstr (err.msg, "no vhdx header"));
  unlink (qcow);
  unlink (raw);
  free (qcow);
  free (raw);
}
END_TEST

Suite *
format_suite (void)
{
  Suite *s = suite_create ("format");
  TCase *tc = tcase_create ("detect");

  tcase_add_test (tc, test_magics);
  tcase_add_test (tc, test_bad_files);
  tcase_add_test (tc, test_format_names);
  suite_add_tcase (s, tc);
  return s;
}

/* Unit tests: BitLocker volume headers and the keys given for them
 * (bitlocker.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "bitlocker.h"

START_TEST (test_signature)
{
  unsigned char b[512];
  /* BitLocker To Go's GUID 4967d63b-2e29-4ad8-8399-f6a339e3d001 */
  static const unsigned char togo[16] = { 0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a,
                                          0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01 };

  memset (b, 0, sizeof b);
  memcpy (b, "\xeb\x58\x90-FVE-FS-", 11);
  ck_assert_int_eq (bitlocker_signature (b, sizeof b), 1);
  memcpy (b, "\xeb\x52\x90", 3);                        /* Vista's jump */
  ck_assert_int_eq (bitlocker_signature (b, sizeof b), 1);
  ck_assert_int_eq (bitlocker_signature (b, 511), 0);   /* short read */
  memcpy (b + 3, "NTFS    ", 8);
  ck_assert_int_eq (bitlocker_signature (b, sizeof b), 0);
  /* To Go on FAT: the OEM id alone is a plain FAT volume */
  memcpy (b, "\xeb\x58\x90MSWIN4.1", 11);
  ck_assert_int_eq (bitlocker_signature (b, sizeof b), 0);
  memcpy (b + 424, togo, 16);
  ck_assert_int_eq (bitlocker_signature (b, sizeof b), 1);
  b[424 + 15] = 0;                                      /* the fixed-disk GUID */
  ck_assert_int_eq (bitlocker_signature (b, sizeof b), 0);
}
END_TEST

START_TEST (test_selectors)
{
  struct keystore ks = { NULL, 0 };
  struct np_error err = { 0, "" };
  char file[] = "/tmp/netvsc-key.XXXXXX";
  const char *k[4];
  int fd = mkstemp (file);

  ck_assert_int_ne (fd, -1);
  ck_assert_int_eq (write (fd, "111111-222222\r\nsecond line\n", 27), 27);
  close (fd);
  ck_assert_int_eq (keystore_add_selector (&ks, "/dev/sda2:key:pa:ss", &err), 0);
  {
    char sel[64];
    snprintf (sel, sizeof sel, "/dev/sda3:file:%s", file);
    ck_assert_int_eq (keystore_add_selector (&ks, sel, &err), 0);
  }
  ck_assert_uint_eq (keystore_find (&ks, "/dev/sda2", k, 4), 1);
  ck_assert_str_eq (k[0], "pa:ss");                     /* colons belong to the key */
  ck_assert_uint_eq (keystore_find (&ks, "/dev/sda3", k, 4), 1);
  ck_assert_str_eq (k[0], "111111-222222");             /* first line, CRLF gone */
  ck_assert_uint_eq (keystore_find (&ks, "/dev/sda1", k, 4), 0);

  /* bad selectors: usage errors that never show a key */
  ck_assert_int_eq (keystore_add_selector (&ks, "/dev/sda2:pass:s3cret", &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_USAGE);
  ck_assert_ptr_null (strstr (err.msg, "s3cret"));
  ck_assert_int_eq (keystore_add_selector (&ks, "/dev/sda2", &err), -1);
  ck_assert_int_eq (keystore_add_selector (&ks, ":key:x", &err), -1);
  ck_assert_int_eq (keystore_add_selector (&ks, "/dev/sda2:key:", &err), -1);
  ck_assert_int_eq (keystore_add_selector (&ks, "/dev/sda2:file:/nonexistent/k", &err), -1);
  ck_assert_str_eq (err.msg, "--key /dev/sda2:file:/nonexistent/k: No such file or directory");
  unlink (file);

  /* scrubbing: every occurrence, keys shorter than "***" too */
  ck_assert_int_eq (keystore_add_selector (&ks, "/dev/sda4:key:ab", &err), 0);
  snprintf (err.msg, sizeof err.msg, "bad pa:ss, really pa:ss; ab");
  keystore_scrub (&ks, &err);
  ck_assert_str_eq (err.msg, "bad ***, really ***; ***");
  keystore_free (&ks);
  ck_assert_uint_eq (ks.n, 0);
}
END_TEST

START_TEST (test_stream)
{
  struct keystore ks = { NULL, 0 };
  struct np_error err = { 0, "" };
  const char *k[4];
  int p[2];

  ck_assert_int_eq (pipe (p), 0);
  ck_assert_int_eq (write (p[1], "first\n\nsecond\r\nthird", 20), 20);
  close (p[1]);
  ck_assert_int_eq (keystore_add_selector (&ks, "/dev/sda2:key:named", &err), 0);
  ck_assert_int_eq (keystore_add_stream (&ks, p[0], &err), 0);
  close (p[0]);
  /* a device with its own key gets that one; others every stdin key */
  ck_assert_uint_eq (keystore_find (&ks, "/dev/sda2", k, 4), 1);
  ck_assert_str_eq (k[0], "named");
  ck_assert_uint_eq (keystore_find (&ks, "/dev/sda1", k, 4), 3);
  ck_assert_str_eq (k[0], "first");
  ck_assert_str_eq (k[1], "second");
  ck_assert_str_eq (k[2], "third");
  keystore_free (&ks);

  /* nothing on stdin: a usage error */
  ck_assert_int_eq (pipe (p), 0);
  close (p[1]);
  ck_assert_int_eq (keystore_add_stream (&ks, p[0], &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_USAGE);
  ck_assert_str_eq (err.msg, "--keys-from-stdin: no key on standard input");
  close (p[0]);
  keystore_free (&ks);
}
END_TEST

Suite *
bitlocker_suite (void)
{
  Suite *s = suite_create ("bitlocker");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_signature);
  tcase_add_test (tc, test_selectors);
  tcase_add_test (tc, test_stream);
  suite_add_tcase (s, tc);
  return s;
}

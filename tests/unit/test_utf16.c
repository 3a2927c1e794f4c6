/* Unit tests: UTF-16LE <-> UTF-8 (utf16.c), strict both ways. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "utf16.h"

/* Convert IN (LEN bytes) one way; return its result, *OUT the bytes. */
static int
to8 (const char *in, size_t len, struct strbuf *out)
{
  memset (out, 0, sizeof *out);
  errno = 0;
  return utf16le_to_utf8 ((const unsigned char *) in, len, out);
}

static int
to16 (const char *in, size_t len, struct strbuf *out)
{
  memset (out, 0, sizeof *out);
  errno = 0;
  return utf8_to_utf16le ((const unsigned char *) in, len, out);
}

START_TEST (test_round_trip)
{
  /* ASCII, 2-byte (é), 3-byte (€) and 4-byte (U+1F600, a surrogate pair) */
  static const char u8[] = "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  static const char u16[] = "A\0\xe9\0\xac\x20\x3d\xd8\x00\xde";
  struct strbuf b;

  ck_assert_int_eq (to16 (u8, sizeof u8 - 1, &b), 0);
  ck_assert_uint_eq (b.len, sizeof u16 - 1);
  ck_assert (memcmp (b.p, u16, b.len) == 0);
  free (b.p);
  ck_assert_int_eq (to8 (u16, sizeof u16 - 1, &b), 0);
  ck_assert_uint_eq (b.len, sizeof u8 - 1);
  ck_assert (memcmp (b.p, u8, b.len) == 0);
  free (b.p);
  /* the edges of each length, and nothing at all */
  ck_assert_int_eq (to16 ("\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf", 10, &b), 0);
  ck_assert (memcmp (b.p, "\x7f\0\xff\x07\xff\xff\xff\xdb\xff\xdf", 10) == 0);
  free (b.p);
  ck_assert_int_eq (to16 ("", 0, &b), 0);
  ck_assert_uint_eq (b.len, 0);
  free (b.p);
}
END_TEST

START_TEST (test_bad_utf16)
{
  struct strbuf b;

  /* odd length */
  ck_assert_int_eq (to8 ("A\0B", 3, &b), -1);
  ck_assert_int_eq (errno, EINVAL);
  free (b.p);
  /* a low surrogate alone */
  ck_assert_int_eq (to8 ("\x00\xdc" "A\0", 4, &b), -1);
  ck_assert_int_eq (errno, EINVAL);
  free (b.p);
  /* a high surrogate at the end, and before a non-surrogate */
  ck_assert_int_eq (to8 ("A\0\x3d\xd8", 4, &b), -1);
  free (b.p);
  ck_assert_int_eq (to8 ("\x3d\xd8" "A\0", 4, &b), -1);
  free (b.p);
  /* two high surrogates */
  ck_assert_int_eq (to8 ("\x3d\xd8\x3d\xd8", 4, &b), -1);
  free (b.p);
  /* a NUL character */
  ck_assert_int_eq (to8 ("A\0\0\0", 4, &b), -1);
  ck_assert_int_eq (errno, EINVAL);
  free (b.p);
}
END_TEST

START_TEST (test_bad_utf8)
{
  static const char *const bad[] = {
    "\x80",                     /* a stray continuation byte */
    "\xc0\xaf",                 /* overlong '/' */
    "\xe0\x80\xaf",             /* overlong, 3 bytes */
    "\xf0\x80\x80\xaf",         /* overlong, 4 bytes */
    "\xc3",                     /* truncated */
    "\xe2\x82",                 /* truncated */
    "\xed\xa0\x80",             /* an encoded surrogate (U+D800) */
    "\xf4\x90\x80\x80",         /* above U+10FFFF */
    "\xc3\x41",                 /* a lead byte before ASCII */
    "\xff",
  };
  struct strbuf b;

  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    ck_assert_msg (to16 (bad[i], strlen (bad[i]), &b) == -1, "case %zu accepted", i);
    ck_assert_int_eq (errno, EINVAL);
    free (b.p);
  }
}
END_TEST

START_TEST (test_decode)
{
  uint32_t cp = 0;

  ck_assert_uint_eq (utf8_decode ((const unsigned char *) "\xe2\x82\xac", 3, &cp), 3);
  ck_assert_uint_eq (cp, 0x20ac);
  /* cut by LEN, or by a C string's NUL when LEN is SIZE_MAX */
  ck_assert_uint_eq (utf8_decode ((const unsigned char *) "\xe2\x82\xac", 2, &cp), 0);
  ck_assert_uint_eq (utf8_decode ((const unsigned char *) "\xe2\x82", SIZE_MAX, &cp), 0);
  ck_assert_uint_eq (utf8_decode ((const unsigned char *) "", 0, &cp), 0);
  ck_assert_uint_eq (utf8_decode ((const unsigned char *) "\xf4\x8f\xbf\xbf", SIZE_MAX, &cp), 4);
  ck_assert_uint_eq (cp, 0x10ffff);
  ck_assert_uint_eq (utf8_decode ((const unsigned char *) "\xc1\xbf", SIZE_MAX, &cp), 0);
}
END_TEST

Suite *
utf16_suite (void)
{
  Suite *s = suite_create ("utf16");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_round_trip);
  tcase_add_test (tc, test_bad_utf16);
  tcase_add_test (tc, test_bad_utf8);
  tcase_add_test (tc, test_decode);
  suite_add_tcase (s, tc);
  return s;
}

/* Unit tests: escape.c, the one rule for printing guest data and names. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "unit.h"
#include "escape.h"

static const char *
text (const char *s)
{
  static char buf[256];
  return esc_str (buf, sizeof buf, s, ESC_TEXT);
}

START_TEST (test_escape_text)
{
  ck_assert_str_eq (text ("Microsoft Hyper-V Network Adapter"),
                    "Microsoft Hyper-V Network Adapter");
  ck_assert_str_eq (text ("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  ck_assert_str_eq (text ("a\x1b[31mb\x07\r\n\t\b\v\f\x7f\x01"),
                    "a\\x1b[31mb\\a\\r\\n\\t\\b\\v\\f\\x7f\\x01");
  /* C1 as code points; U+00A0 is not a control */
  ck_assert_str_eq (text ("\xc2\x9b" "1m \xc2\x80 \xc2\xa0"), "\\u009b1m \\u0080 \xc2\xa0");
  /* a backslash stays in text */
  ck_assert_str_eq (text ("ControlSet001\\Control"), "ControlSet001\\Control");
  /* invalid UTF-8: stray continuation, overlong, surrogate, > U+10FFFF,
   * truncated at the end, 0xff */
  ck_assert_str_eq (text ("\x80x"), "\\x80x");
  ck_assert_str_eq (text ("\xc0\xaf"), "\\xc0\\xaf");
  ck_assert_str_eq (text ("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  ck_assert_str_eq (text ("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
  ck_assert_str_eq (text ("ab\xe2\x82"), "ab\\xe2\\x82");
  ck_assert_str_eq (text ("\xff\xfe"), "\\xff\\xfe");
  ck_assert_str_eq (text (NULL), "(null)");
}
END_TEST

START_TEST (test_escape_truncation)
{
  char buf[8];

  ck_assert_str_eq (esc_str (buf, sizeof buf, "1234567", ESC_TEXT), "1234567");
  ck_assert_str_eq (esc_str (buf, sizeof buf, "12345678", ESC_TEXT), "1234...");
  /* an escape is never cut in half */
  ck_assert_str_eq (esc_str (buf, sizeof buf, "12\x1b" "45678", ESC_TEXT), "12...");
  /* nor a character */
  ck_assert_str_eq (esc_str (buf, sizeof buf, "123\xe2\x82\xac" "5678", ESC_TEXT), "123...");
  ck_assert_str_eq (esc_str (buf, 3, "12345", ESC_TEXT), "..");
}
END_TEST

/* The JSON file-name rule undone: \\ and \xNN. */
static size_t
undo (const char *s, unsigned char *out)
{
  size_t n = 0;

  while (*s) {
    if (s[0] == '\\' && s[1] == '\\') {
      out[n++] = '\\';
      s += 2;
    }
    else if (s[0] == '\\' && s[1] == 'x') {
      char hex[3] = { s[2], s[3], 0 };
      out[n++] = (unsigned char) strtoul (hex, NULL, 16);
      s += 4;
    }
    else
      out[n++] = (unsigned char) *s++;
  }
  return n;
}

/* Any bytes: the name form is valid UTF-8 that Jansson takes, and gives
 * the bytes back; the text form has no control character left. */
START_TEST (test_escape_round_trip)
{
  unsigned seed = 13;
  static const unsigned char pool[] = { 'a', '\\', 'x', '1', 0x1b, 0x07, 0x7f, 0x80, 0x9b,
                                        0xc2, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xed, 0xa0,
                                        0xf0, 0x9f, 0xf4, 0x90, 0xff, '\n', ' ' };

  for (int round = 0; round < 5000; round++) {
    unsigned char raw[24], back[24 * 4];
    size_t len = (size_t) (rand_r (&seed) % 23);
    char *name, *shown;
    json_t *j;

    for (size_t i = 0; i < len; i++)
      raw[i] = pool[rand_r (&seed) % sizeof pool];
    raw[len] = '\0';
    name = esc_dup ((char *) raw, ESC_BACKSLASH);
    ck_assert_ptr_nonnull (name);
    ck_assert (esc_utf8_valid (name));
    j = json_string (name);
    ck_assert_ptr_nonnull (j);
    json_decref (j);
    ck_assert_uint_eq (undo (name, back), len);
    ck_assert (memcmp (back, raw, len) == 0);
    shown = esc_dup ((char *) raw, ESC_TEXT);
    ck_assert (esc_utf8_valid (shown));
    for (const unsigned char *p = (unsigned char *) shown; *p; p++) {
      ck_assert (*p >= 0x20 && *p != 0x7f);
      ck_assert (!(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f));
    }
    free (name);
    free (shown);
  }
}
END_TEST

Suite *
escape_suite (void)
{
  Suite *s = suite_create ("escape");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_escape_text);
  tcase_add_test (tc, test_escape_truncation);
  tcase_add_test (tc, test_escape_round_trip);
  tcase_set_timeout (tc, 60);    /* thousands of random names, on a loaded machine too */
  suite_add_tcase (s, tc);
  return s;
}

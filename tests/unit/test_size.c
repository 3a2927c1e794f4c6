/* Unit tests: size parsing. */
#include <stdint.h>

#include "unit.h"
#include "size.h"

static const struct {
  const char *in;
  uint32_t kb;
} good[] = {
  { "2048", 2048 }, { "0x800", 2048 }, { "0X800", 2048 }, { "2M", 2048 },
  { "2m", 2048 }, { "2MB", 2048 }, { "2MiB", 2048 }, { "2048K", 2048 },
  { "2048KB", 2048 }, { "2048kib", 2048 }, { "1", 1 }, { "4M", 4096 },
  { "0x2M", 2048 }, { "4194303M", 4194303u * 1024u }, { "4294967295", 4294967295u },
  { "0xffffffff", 4294967295u }, { " 16", 16 },
};

static const char *const bad[] = {
  "", " ", "0", "0x0", "0M", "-1", "-2M", "+5", "abc", "2X", "2G", "1.5M", "0.5",
  "0x", "0xg", "4294967296", "0x100000000", "4194304M", "99999999999999999999999",
  "2 M", "M", "K2", "2MM",
};

START_TEST (test_good_sizes)
{
  uint32_t kb = 0;
  const char *why = NULL;

  ck_assert_msg (size_parse_kb (good[_i].in, &kb, &why) == 0, "'%s' rejected: %s",
                 good[_i].in, why);
  ck_assert_uint_eq (kb, good[_i].kb);
}
END_TEST

START_TEST (test_bad_sizes)
{
  uint32_t kb = 12345;
  const char *why = NULL;

  ck_assert_msg (size_parse_kb (bad[_i], &kb, &why) == -1, "'%s' accepted as %u",
                 bad[_i], kb);
  ck_assert_ptr_nonnull (why);
  ck_assert_uint_eq (kb, 12345);
}
END_TEST

Suite *
size_suite (void)
{
  Suite *s = suite_create ("size");
  TCase *tc = tcase_create ("parse");

  tcase_add_loop_test (tc, test_good_sizes, 0, sizeof good / sizeof good[0]);
  tcase_add_loop_test (tc, test_bad_sizes, 0, sizeof bad / sizeof bad[0]);
  suite_add_tcase (s, tc);
  return s;
}

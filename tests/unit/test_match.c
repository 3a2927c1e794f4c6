/* Unit tests: --match parsing and adapter matching (no hive needed). */
#include <string.h>

#include "unit.h"
#include "match.h"

static struct adapter
adapter (const char *desc, const char *mid, const char *cid, const char *service)
{
  struct adapter a;

  memset (&a, 0, sizeof a);
  a.desc = (char *) desc;
  a.matching_id = (char *) mid;
  a.component_id = (char *) cid;
  a.service = (char *) service;
  return a;
}

static int
matches (const char *spec, struct adapter a)
{
  struct match_spec m;
  const char *why;

  ck_assert_msg (match_parse (spec, &m, &why) == 0, "%s: %s", spec, why);
  return match_adapter (&m, &a);
}

START_TEST (test_netvsc)
{
  const char *id = "vmbus\\{f8615163-df3e-46c5-913f-f2d2f965ed0e}";

  ck_assert (matches ("netvsc", adapter ("Microsoft Hyper-V Network Adapter", id, id, "netvsc")));
  /* 2008 R2 style: upper case id, no ComponentId */
  ck_assert (matches ("netvsc", adapter ("x", "VMBUS\\{F8615163-DF3E-46C5-913F-F2D2F965ED0E}",
                                         NULL, NULL)));
  ck_assert (matches ("netvsc", adapter ("x", NULL, id, NULL)));
  ck_assert (matches ("netvsc", adapter ("x", NULL, NULL, "NetVsc")));
  ck_assert (matches ("NETVSC", adapter ("x", id, NULL, NULL)));
  /* not a prefix or substring match */
  ck_assert (!matches ("netvsc", adapter ("x", "vmbus\\{f8615163-df3e-46c5-913f-f2d2f965ed0e}x",
                                          NULL, "netvsc60x")));
  ck_assert (!matches ("netvsc", adapter ("Intel", "pci\\ven_8086&dev_100f", NULL, "e1000")));
  ck_assert (!matches ("netvsc", adapter (NULL, NULL, NULL, NULL)));
}
END_TEST

START_TEST (test_other_specs)
{
  struct adapter intel = adapter ("Intel(R) PRO/1000 MT Network Connection",
                                  "pci\\ven_8086&dev_100f", "pci\\ven_8086&dev_100f", "E1G60");

  ck_assert (matches ("service:e1g60", intel));
  ck_assert (!matches ("service:e1g", intel));
  ck_assert (matches ("desc:pro/1000", intel));
  ck_assert (!matches ("desc:Realtek", intel));
  ck_assert (matches ("pci\\ven_8086&dev_100f", intel));
  ck_assert (matches ("PCI\\VEN_8086*", intel));
  ck_assert (matches ("id:pci\\ven_8086&dev_1*", intel));
  ck_assert (!matches ("pci\\ven_8086", intel));
  ck_assert (!matches ("pci\\ven_10ec*", intel));
}
END_TEST

START_TEST (test_bad_specs)
{
  struct match_spec m;
  const char *why = NULL;

  ck_assert_int_eq (match_parse ("", &m, &why), -1);
  ck_assert_int_eq (match_parse ("e1000", &m, &why), -1);
  ck_assert_ptr_nonnull (why);
  ck_assert_int_eq (match_parse ("service:", &m, &why), -1);
  ck_assert_int_eq (match_parse ("desc:", &m, &why), -1);
}
END_TEST

Suite *
match_suite (void)
{
  Suite *s = suite_create ("match");
  TCase *tc = tcase_create ("spec");

  tcase_add_test (tc, test_netvsc);
  tcase_add_test (tc, test_other_specs);
  tcase_add_test (tc, test_bad_specs);
  suite_add_tcase (s, tc);
  return s;
}

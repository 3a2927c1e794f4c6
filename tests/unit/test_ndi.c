/* Unit tests: Ndi\Params descriptions, --set planning against them, and
 * values of any type written and read back with plain hivex calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "apply.h"
#include "ndi.h"
#include "plan.h"

#define ADV_CLASS "\\ControlSet001\\Control\\Class\\{4d36e972-e325-11ce-bfc1-08002be10318}\\"

static hive_node_h
instance (struct hive *hv, const char *index)
{
  char path[128];
  snprintf (path, sizeof path, "ControlSet001\\Control\\Class\\"
            "{4d36e972-e325-11ce-bfc1-08002be10318}\\%s", index);
  hive_node_h n = hive_lookup (hv, hivex_root (hv->h), path);
  ck_assert (n != 0);
  return n;
}

static void
check_param (struct hive *hv, const char *index, const char *kw, const char *text,
             int want_ok, const char *want_why)
{
  struct ndi_param p;
  char why[512] = "";

  ck_assert_int_eq (ndi_param_read (hv, instance (hv, index), kw, &p), 0);
  ck_assert_msg ((ndi_check (&p, text, why, sizeof why) == 0) == want_ok,
                 "%s=%s: expected %s (%s)", kw, text, want_ok ? "ok" : "refusal", why);
  if (want_why)
    ck_assert_msg (strstr (why, want_why), "%s=%s: '%s' lacks '%s'", kw, text, why, want_why);
  ndi_param_free (&p);
}

START_TEST (test_ndi_rules)
{
  struct hive hv;
  struct np_error err;
  struct ndi_param p;
  char buf[512];

  ck_assert_msg (hive_open (&hv, fixture_hive ("advanced"), 0, &err) == 0, "%s", err.msg);

  /* int with min, max, step */
  check_param (&hv, "0001", "ReceiveBufferSize", "4096", 1, NULL);
  check_param (&hv, "0001", "ReceiveBufferSize", "256", 1, NULL);
  check_param (&hv, "0001", "ReceiveBufferSize", "65536", 1, NULL);
  check_param (&hv, "0001", "ReceiveBufferSize", "3000", 0, "steps of 256 from 256");
  check_param (&hv, "0001", "ReceiveBufferSize", "0", 0, "out of range 256..65536");
  check_param (&hv, "0001", "ReceiveBufferSize", "65792", 0, "out of range");
  check_param (&hv, "0001", "ReceiveBufferSize", "4k", 0, "not a decimal number");
  check_param (&hv, "0001", "ReceiveBufferSize", "", 0, "not a decimal number");
  /* enum: the value names under Enum (or enum), exactly */
  check_param (&hv, "0001", "*JumboPacket", "9014", 1, NULL);
  check_param (&hv, "0001", "*JumboPacket", "9000", 0, "not one of 1514, 4088, 9014");
  check_param (&hv, "0001", "*JumboPacket", "16128", 0, NULL);   /* the Intel's only */
  check_param (&hv, "0002", "*JumboPacket", "16128", 1, NULL);
  check_param (&hv, "0001", "*RSS", "0", 1, NULL);
  check_param (&hv, "0001", "*RSS", "Enabled", 0, "not one of 0, 1");
  /* word: 16 bits at most, then the driver's max */
  check_param (&hv, "0001", "VlanID", "4094", 1, NULL);
  check_param (&hv, "0001", "VlanID", "4095", 0, "out of range 0..4094");
  check_param (&hv, "0001", "VlanID", "-1", 0, "out of range");
  /* edit: length, optional */
  check_param (&hv, "0001", "NetworkAddress", "02155D000001", 1, NULL);
  check_param (&hv, "0001", "NetworkAddress", "02155D0000011", 0, "longer than 12");
  check_param (&hv, "0001", "NetworkAddress", "", 1, NULL);
  /* dword in base 16: hex digits, with or without 0x */
  check_param (&hv, "0001", "MaxQueues", "a", 1, NULL);
  check_param (&hv, "0001", "MaxQueues", "0x8", 1, NULL);
  check_param (&hv, "0001", "MaxQueues", "b", 0, "out of range 1..10");
  check_param (&hv, "0001", "MaxQueues", "g", 0, "not a hexadecimal number");
  /* signed int */
  check_param (&hv, "0001", "Signed", "-100", 1, NULL);
  check_param (&hv, "0001", "Signed", "-101", 0, "out of range -100..100");
  /* long */
  check_param (&hv, "0002", "ITR", "950", 1, NULL);
  check_param (&hv, "0002", "ITR", "65536", 0, "out of range 0..65535");

  /* descriptions for --list */
  ck_assert_int_eq (ndi_param_read (&hv, instance (&hv, "0001"), "MaxQueues", &p), 0);
  ndi_describe_allowed (&p, buf, sizeof buf);
  ck_assert_str_eq (buf, "0x1..0xa");
  ndi_param_free (&p);
  ck_assert_int_eq (ndi_param_read (&hv, instance (&hv, "0001"), "*RSS", &p), 0);
  ndi_describe_allowed (&p, buf, sizeof buf);
  ck_assert_str_eq (buf, "0 (Disabled), 1 (Enabled)");
  ck_assert_str_eq (p.desc, "Receive Side Scaling");
  ck_assert_str_eq (p.default_value, "1");
  ndi_param_free (&p);
  ck_assert_int_eq (ndi_param_read (&hv, instance (&hv, "0001"), "Legacy", &p), 1);
  ck_assert_int_eq (ndi_param_read (&hv, instance (&hv, "0001"), "NoSuch", &p), 1);

  {
    struct ndi_param *all;
    size_t n;
    ck_assert_int_eq (ndi_params_read_all (&hv, instance (&hv, "0001"), &all, &n), 0);
    ck_assert_uint_eq (n, 8);
    ck_assert_str_eq (all[0].keyword, "*JumboPacket");    /* sorted */
    ck_assert_str_eq (all[7].keyword, "VlanID");
    ndi_params_free (all, n);
  }
  hive_close (&hv);
}
END_TEST

struct setplan {
  struct hive hv;
  struct control_sets cs;
  struct plan plan;
  struct request req;
};

/* Plan "--set" assignments ("NAME=VALUE" or "NAME=VALUE:dword|sz") on a
 * copy of the advanced fixture, for adapters matching SPEC. */
static void
plan_sets (struct setplan *s, const char *path, const char *spec, int force,
           const char *const *sets)
{
  struct cs_request csr = { CS_SELECTED, 0 };
  struct match_spec m;
  struct adapter_list al;
  struct np_error err;
  const char *why;

  memset (s, 0, sizeof *s);
  for (; *sets; sets++) {
    struct request_value *v = &s->req.v[s->req.n++];
    char *copy = strdup (*sets), *eq = strchr (copy, '='), *colon = strrchr (copy, ':');
    *eq = '\0';
    v->name = copy;
    v->text = eq + 1;
    if (colon && colon > eq) {
      *colon = '\0';
      v->type = strcmp (colon + 1, "dword") == 0 ? WANT_DWORD : WANT_SZ;
    }
  }
  s->req.force = force;
  ck_assert_int_eq (match_parse (spec, &m, &why), 0);
  ck_assert_msg (hive_open (&s->hv, path, 1, &err) == 0, "%s", err.msg);
  ck_assert_msg (hive_control_sets (&s->hv, &csr, &s->cs, &err) == 0, "%s", err.msg);
  ck_assert_msg (adapters_enumerate (&s->hv, &s->cs, &m, &s->req, 0, &al, &err) == 0,
                 "%s", err.msg);
  ck_assert_int_eq (plan_build (&s->plan, &al, &s->req), 0);
}

static void
unplan (struct setplan *s)
{
  plan_free (&s->plan);
  control_sets_free (&s->cs);
  hive_close (&s->hv);
  for (size_t i = 0; i < s->req.n; i++)
    free ((char *) s->req.v[i].name);
}

static const struct change *
change_of (const struct setplan *s, const char *index, const char *name)
{
  for (size_t i = 0; i < s->plan.n_changes; i++)
    if (strcmp (s->plan.adapters.v[s->plan.changes[i].adapter].index, index) == 0 &&
        strcmp (s->plan.changes[i].want->name, name) == 0)
      return &s->plan.changes[i];
  ck_abort_msg ("no change for %s %s", index, name);
  return NULL;
}

START_TEST (test_set_plan)
{
  struct setplan s;
  const struct change *c;

  plan_sets (&s, fixture_hive ("advanced"), "netvsc", 0, (const char *const[]) {
      "*JumboPacket=9014", "*RSS=1", "Legacy=7", "NewText=a 'b' \"c\"", "Signed=-5",
      "Forced=12:dword", "AsText=12:sz", NULL });
  ck_assert_uint_eq (s.plan.n_matched, 1);
  c = change_of (&s, "0001", "*JumboPacket");
  ck_assert_int_eq (c->action, CHANGE_UPDATE);        /* REG_SZ stays REG_SZ */
  ck_assert_int_eq (c->type, hive_t_REG_SZ);
  ck_assert_str_eq (c->text, "9014");
  ck_assert_ptr_null (c->refusal);
  ck_assert_ptr_nonnull (c->param);
  c = change_of (&s, "0001", "*RSS");
  ck_assert_int_eq (c->action, CHANGE_KEEP);
  c = change_of (&s, "0001", "Legacy");               /* an existing REG_DWORD stays one */
  ck_assert_int_eq (c->type, hive_t_REG_DWORD);
  ck_assert_int_eq (c->dword, 7);
  ck_assert_int_eq (c->action, CHANGE_UPDATE);
  ck_assert_ptr_null (c->param);
  c = change_of (&s, "0001", "NewText");              /* absent, undescribed: REG_SZ */
  ck_assert_int_eq (c->action, CHANGE_ADD);
  ck_assert_int_eq (c->type, hive_t_REG_SZ);
  ck_assert_str_eq (c->text, "a 'b' \"c\"");
  c = change_of (&s, "0001", "Signed");
  ck_assert_ptr_null (c->refusal);
  ck_assert_str_eq (c->text, "-5");
  c = change_of (&s, "0001", "Forced");
  ck_assert_int_eq (c->type, hive_t_REG_DWORD);
  ck_assert_int_eq (c->dword, 12);
  c = change_of (&s, "0001", "AsText");
  ck_assert_int_eq (c->type, hive_t_REG_SZ);
  ck_assert_uint_eq (s.plan.n_refused, 0);
  ck_assert_uint_eq (s.plan.n_writes, 6);
  unplan (&s);

  /* refusals: counted, and --force only marks the plan */
  plan_sets (&s, fixture_hive ("advanced"), "desc:intel", 0, (const char *const[]) {
      "*JumboPacket=9000", "ITR=70000", NULL });
  ck_assert_uint_eq (s.plan.n_matched, 1);
  ck_assert_uint_eq (s.plan.n_refused, 2);
  ck_assert_int_eq (s.plan.forced, 0);
  ck_assert_ptr_nonnull (strstr (change_of (&s, "0002", "ITR")->refusal, "out of range"));
  unplan (&s);
  plan_sets (&s, fixture_hive ("advanced"), "desc:intel", 1, (const char *const[]) {
      "*JumboPacket=9000", NULL });
  ck_assert_uint_eq (s.plan.n_refused, 1);
  ck_assert_int_eq (s.plan.forced, 1);
  unplan (&s);

  /* a value already in place is never refused: nothing is written */
  plan_sets (&s, fixture_hive ("advanced"), "netvsc", 0, (const char *const[]) {
      "VlanID=0", NULL });
  ck_assert_uint_eq (s.plan.n_refused, 0);
  ck_assert_uint_eq (s.plan.n_writes, 0);
  unplan (&s);
}
END_TEST

START_TEST (test_set_apply)
{
  struct setplan s;
  struct hive_census before;
  struct np_error err;
  char *copy = fixture_copy ("advanced"), out[] = "/tmp/netvsc-adv.XXXXXX";
  int fd = mkstemp (out);
  hive_h *h;
  hive_node_h n;
  hive_value_h v;
  hive_type t;
  size_t len;
  char *str;

  ck_assert_int_ne (fd, -1);
  close (fd);
  plan_sets (&s, copy, "netvsc", 0, (const char *const[]) {
      "*JumboPacket=9014", "Legacy=0x10", "Greeting=h\xc3\xa9llo", "Signed=-5:dword", NULL });
  ck_assert_int_eq (hive_census_take (&s.hv, &s.plan, &before, &err), 0);
  ck_assert_msg (apply_plan (&s.hv, &s.plan, out, &err) == 0, "%s", err.msg);
  ck_assert_msg (verify_written (out, &s.plan, &before, &err) == 0, "%s", err.msg);
  hive_census_free (&before);
  unplan (&s);

  /* read back with hivex alone */
  h = hivex_open (out, 0);
  ck_assert_ptr_nonnull (h);
  n = hivex_root (h);
  const char *parts[] = { "ControlSet001", "Control", "Class",
                          "{4d36e972-e325-11ce-bfc1-08002be10318}", "0001" };
  for (size_t i = 0; i < 5; i++)
    n = hivex_node_get_child (h, n, parts[i]);
  ck_assert (n != 0);
  v = hivex_node_get_value (h, n, "*JumboPacket");
  ck_assert_int_eq (hivex_value_type (h, v, &t, &len), 0);
  ck_assert_int_eq (t, hive_t_REG_SZ);
  ck_assert_uint_eq (len, 10);                        /* "9014" + NUL in UTF-16LE */
  str = hivex_value_string (h, v);
  ck_assert_str_eq (str, "9014");
  free (str);
  v = hivex_node_get_value (h, n, "Greeting");
  str = hivex_value_string (h, v);
  ck_assert_str_eq (str, "h\xc3\xa9llo");
  free (str);
  v = hivex_node_get_value (h, n, "Legacy");
  ck_assert_int_eq (hivex_value_dword (h, v), 0x10);
  v = hivex_node_get_value (h, n, "Signed");
  ck_assert_int_eq (hivex_value_type (h, v, &t, &len), 0);
  ck_assert_int_eq (t, hive_t_REG_DWORD);
  ck_assert_uint_eq ((uint32_t) hivex_value_dword (h, v), 0xfffffffbu);
  hivex_close (h);
  unlink (out);
  unlink (copy);
  free (copy);
}
END_TEST

Suite *
ndi_suite (void)
{
  Suite *s = suite_create ("ndi");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_ndi_rules);
  tcase_add_test (tc, test_set_plan);
  tcase_add_test (tc, test_set_apply);
  suite_add_tcase (s, tc);
  return s;
}

/* Unit tests: plans, and applying them to copies of fixture hives.
 * Results are read back with plain hivex calls, not our helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "unit.h"
#include "apply.h"
#include "plan.h"

struct loaded {
  struct hive hv;
  struct control_sets cs;
  struct plan plan;
  struct request req;
};

static void
load (struct loaded *l, const char *path, const char *spec, int remove,
      uint32_t rx, uint32_t tx)
{
  struct cs_request csr = { CS_SELECTED, 0 };
  struct match_spec m;
  struct adapter_list al;
  struct np_error err;
  const char *why;

  memset (l, 0, sizeof *l);
  l->req.v[0] = (struct request_value) { .name = VALUE_RECEIVE, .remove = remove,
                                         .is_size = 1, .kb = rx };
  l->req.v[1] = (struct request_value) { .name = VALUE_SEND, .remove = remove,
                                         .is_size = 1, .kb = tx };
  l->req.n = 2;
  ck_assert_int_eq (match_parse (spec, &m, &why), 0);
  ck_assert_msg (hive_open (&l->hv, path, 1, &err) == 0, "%s", err.msg);
  ck_assert_msg (hive_control_sets (&l->hv, &csr, &l->cs, &err) == 0, "%s", err.msg);
  ck_assert_msg (adapters_enumerate (&l->hv, &l->cs, &m, &l->req, 0, &al, &err) == 0, "%s", err.msg);
  ck_assert_int_eq (plan_build (&l->plan, &al, &l->req), 0);
}

static void
unload (struct loaded *l)
{
  plan_free (&l->plan);
  control_sets_free (&l->cs);
  hive_close (&l->hv);
}

static enum change_action
action_of (const struct plan *p, const char *index, const char *name)
{
  for (size_t i = 0; i < p->n_changes; i++)
    if (strcmp (p->adapters.v[p->changes[i].adapter].index, index) == 0 &&
        strcmp (p->changes[i].want->name, name) == 0)
      return p->changes[i].action;
  ck_abort_msg ("no change for %s %s", index, name);
  return CHANGE_KEEP;
}

START_TEST (test_plan_actions)
{
  struct loaded l;

  load (&l, fixture_hive ("multi"), "netvsc", 0, 0x800, 0x800);
  ck_assert_uint_eq (l.plan.n_matched, 2);
  ck_assert_uint_eq (l.plan.n_changes, 4);
  ck_assert_int_eq (action_of (&l.plan, "0001", VALUE_RECEIVE), CHANGE_ADD);
  ck_assert_int_eq (action_of (&l.plan, "0011", VALUE_RECEIVE), CHANGE_KEEP);
  ck_assert_int_eq (action_of (&l.plan, "0011", VALUE_SEND), CHANGE_ADD);
  ck_assert_uint_eq (l.plan.n_writes, 3);
  unload (&l);

  load (&l, fixture_hive ("regsz"), "netvsc", 0, 0x800, 0x400);
  ck_assert_int_eq (action_of (&l.plan, "0001", VALUE_RECEIVE), CHANGE_RETYPE);
  ck_assert_int_eq (action_of (&l.plan, "0001", VALUE_SEND), CHANGE_KEEP);
  unload (&l);

  load (&l, fixture_hive ("regsz"), "netvsc", 0, 0x800, 0x800);
  ck_assert_int_eq (action_of (&l.plan, "0001", VALUE_SEND), CHANGE_UPDATE);
  unload (&l);

  load (&l, fixture_hive ("regsz"), "netvsc", 1, 0, 0);
  ck_assert_int_eq (action_of (&l.plan, "0001", VALUE_RECEIVE), CHANGE_DELETE);
  ck_assert_int_eq (action_of (&l.plan, "0001", VALUE_SEND), CHANGE_DELETE);
  unload (&l);

  load (&l, fixture_hive ("ws2019"), "netvsc", 1, 0, 0);
  ck_assert_uint_eq (l.plan.n_writes, 0);     /* nothing to remove */
  unload (&l);

  load (&l, fixture_hive ("no-netvsc"), "netvsc", 0, 0x800, 0x800);
  ck_assert_uint_eq (l.plan.n_matched, 0);
  ck_assert_uint_eq (l.plan.n_changes, 0);
  ck_assert_uint_gt (l.plan.adapters.n, 0);
  unload (&l);
}
END_TEST

/* Read a value straight through hivex. */
static int
read_dword (const char *path, const char *index, const char *name, int32_t *out,
            hive_type *type)
{
  hive_h *h = hivex_open (path, 0);
  hive_node_h n;
  hive_value_h v;
  size_t len;
  const char *parts[] = { "ControlSet001", "Control", "Class",
                          "{4d36e972-e325-11ce-bfc1-08002be10318}", index };
  int found = 0;

  ck_assert_ptr_nonnull (h);
  n = hivex_root (h);
  for (size_t i = 0; i < 5 && n; i++)
    n = hivex_node_get_child (h, n, parts[i]);
  ck_assert (n != 0);
  v = hivex_node_get_value (h, n, name);
  if (v) {
    ck_assert_int_eq (hivex_value_type (h, v, type, &len), 0);
    if (*type == hive_t_REG_DWORD)
      *out = hivex_value_dword (h, v);
    found = 1;
  }
  hivex_close (h);
  return found;
}

static char *
temp_name (void)
{
  char *t = strdup ("/tmp/netvsc-out.XXXXXX");
  int fd = mkstemp (t);

  ck_assert_int_ne (fd, -1);
  close (fd);
  return t;
}

START_TEST (test_apply_and_verify)
{
  struct loaded l;
  struct hive_census before;
  struct np_error err;
  char *out = temp_name ();
  int32_t v = 0;
  hive_type t;

  load (&l, fixture_hive ("regsz"), "netvsc", 0, 0x1000, 0x800);
  ck_assert_int_eq (hive_census_take (&l.hv, &l.plan, &before, &err), 0);
  /* the adapter's key is the one copied, whole */
  ck_assert_uint_eq (before.n_touched, 1);
  ck_assert_int_eq (before.touched[0].readable, 1);
  ck_assert_uint_gt (before.touched[0].n, 2);
  ck_assert_msg (apply_plan (&l.hv, &l.plan, out, &err) == 0, "%s", err.msg);
  ck_assert_msg (verify_written (out, &l.plan, &before, &err) == 0, "%s", err.msg);
  /* the original's count (made alongside) was strict */
  ck_assert_int_eq (before.skip_bad, 0);
  ck_assert_ptr_null (before.counting);

  ck_assert (read_dword (out, "0001", VALUE_RECEIVE, &v, &t));
  ck_assert_int_eq (t, hive_t_REG_DWORD);
  ck_assert_int_eq (v, 0x1000);
  ck_assert (read_dword (out, "0001", VALUE_SEND, &v, &t));
  ck_assert_int_eq (v, 0x800);
  /* the source hive file is untouched */
  ck_assert (read_dword (fixture_hive ("regsz"), "0001", VALUE_RECEIVE, &v, &t));
  ck_assert_int_eq (t, hive_t_REG_SZ);

  /* verification notices a hive that does not hold the plan's values */
  ck_assert_str_eq (l.plan.changes[0].want->name, VALUE_RECEIVE);
  l.plan.changes[0].dword = 0x2000;
  ck_assert_int_eq (verify_written (out, &l.plan, &before, &err), -1);
  ck_assert_ptr_nonnull (strstr (err.msg, "verification failed"));
  /* ... or has lost a value */
  before.values++;
  l.plan.changes[0].dword = 0x1000;
  ck_assert_int_eq (verify_written (out, &l.plan, &before, &err), -1);
  ck_assert_ptr_nonnull (strstr (err.msg, "keys and"));
  before.values--;
  ck_assert_msg (verify_written (out, &l.plan, &before, &err) == 0, "%s", err.msg);
  /* ... or another value of the adapter's key differs from the original:
   * the copy is made to differ here, the file is what it is */
  {
    struct census_key *k = &before.touched[0];
    struct census_value *other = NULL;
    for (size_t i = 0; other == NULL && i < k->n; i++)
      if (strcasecmp (k->v[i].name, VALUE_RECEIVE) != 0 &&
          strcasecmp (k->v[i].name, VALUE_SEND) != 0 && k->v[i].len > 0)
        other = &k->v[i];
    ck_assert_ptr_nonnull (other);
    other->data[0] ^= 1;
    ck_assert_int_eq (verify_written (out, &l.plan, &before, &err), -1);
    ck_assert_msg (strstr (err.msg, "was changed") != NULL, "%s", err.msg);
    other->data[0] ^= 1;
    /* ... or the key holds a value the original did not */
    k->n--;
    ck_assert_int_eq (verify_written (out, &l.plan, &before, &err), -1);
    ck_assert_msg (strstr (err.msg, "values, expected") != NULL, "%s", err.msg);
    k->n++;
  }
  ck_assert_msg (verify_written (out, &l.plan, &before, &err) == 0, "%s", err.msg);
  hive_census_free (&before);
  unload (&l);
  unlink (out);
  free (out);
}
END_TEST

START_TEST (test_apply_remove)
{
  struct loaded l;
  struct hive_census before;
  struct np_error err;
  char *out = temp_name ();
  int32_t v = 0;
  hive_type t;

  load (&l, fixture_hive ("regsz"), "netvsc", 1, 0, 0);
  ck_assert_int_eq (hive_census_take (&l.hv, &l.plan, &before, &err), 0);
  ck_assert_msg (apply_plan (&l.hv, &l.plan, out, &err) == 0, "%s", err.msg);
  ck_assert_msg (verify_written (out, &l.plan, &before, &err) == 0, "%s", err.msg);
  hive_census_free (&before);
  ck_assert (!read_dword (out, "0001", VALUE_RECEIVE, &v, &t));
  ck_assert (!read_dword (out, "0001", VALUE_SEND, &v, &t));
  /* the adapter's other values survive */
  {
    hive_h *h = hivex_open (out, 0);
    hive_node_h n = hivex_root (h);
    const char *parts[] = { "ControlSet001", "Control", "Class",
                            "{4d36e972-e325-11ce-bfc1-08002be10318}", "0001" };
    for (size_t i = 0; i < 5; i++)
      n = hivex_node_get_child (h, n, parts[i]);
    ck_assert (hivex_node_get_value (h, n, "DriverDesc") != 0);
    ck_assert (hivex_node_get_value (h, n, "MatchingDeviceId") != 0);
    hivex_close (h);
  }
  unload (&l);
  unlink (out);
  free (out);
}
END_TEST

Suite *
plan_suite (void)
{
  Suite *s = suite_create ("plan");
  TCase *tc = tcase_create ("plan+apply");

  tcase_add_test (tc, test_plan_actions);
  tcase_add_test (tc, test_apply_and_verify);
  tcase_add_test (tc, test_apply_remove);
  suite_add_tcase (s, tc);
  return s;
}

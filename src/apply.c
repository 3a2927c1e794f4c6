/* netvsc-patch: applying and verifying a plan. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apply.h"

int
hive_census_take (struct hive *hv, struct hive_census *c, struct np_error *err)
{
  c->skip_bad = 0;
  if (hive_walk_all (hv, 0, &c->keys, &c->values) == 0)
    return 0;
  /* Real hives can hold oddities hivex's strict walk rejects; then the
   * comparison is made between two lenient walks. */
  c->skip_bad = 1;
  if (hive_walk_all (hv, 1, &c->keys, &c->values) == 0)
    return 0;
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: the hive is damaged: %s",
                       hv->path, strerror (errno ? errno : EINVAL));
}

int
apply_plan (struct hive *hv, const struct plan *p, const char *out_path,
            struct np_error *err)
{
  for (size_t i = 0; i < p->n_changes; i++) {
    const struct change *c = &p->changes[i];
    const struct adapter *a = &p->adapters.v[c->adapter];
    int r = 0;

    switch (c->action) {
    case CHANGE_KEEP:
      continue;
    case CHANGE_DELETE:
      r = hive_delete_value (hv, a->node, c->want->name);
      break;
    case CHANGE_ADD: case CHANGE_UPDATE: case CHANGE_RETYPE:
      if (c->type == hive_t_REG_DWORD)
        r = hive_set_dword (hv, a->node, c->want->name, c->dword);
      else
        r = hive_set_string (hv, a->node, c->want->name, c->text);
      break;
    }
    if (r == -1)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot set %s\\%s\\%s\\%s: %s",
                           hv->path, a->control_set, NET_CLASS_PATH, a->index,
                           c->want->name, strerror (errno));
  }
  if (hivex_commit (hv->h, out_path, 0) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot write the patched hive: %s",
                         out_path, strerror (errno));
  return 0;
}

static int
verify_change (struct hive *hv, const struct plan *p, const struct change *c,
               struct np_error *err)
{
  const struct adapter *a = &p->adapters.v[c->adapter];
  hive_node_h cs = hivex_node_get_child (hv->h, hivex_root (hv->h), a->control_set);
  hive_node_h node = cs ? hive_lookup (hv, cs, NET_CLASS_PATH) : 0;
  struct value_state vs;
  int ok;

  if (node)
    node = hivex_node_get_child (hv->h, node, a->index);
  if (node == 0)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: verification failed: %s\\%s\\%s is missing",
                         hv->path, a->control_set, NET_CLASS_PATH, a->index);
  if (hive_value_state (hv, node, c->want->name, &vs) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: verification failed: cannot read %s",
                         hv->path, c->want->name);
  if (c->want->remove)
    ok = !vs.present;
  else if (c->type == hive_t_REG_DWORD)
    ok = vs.is_dword && vs.dword == c->dword;
  else
    ok = vs.present && vs.type == hive_t_REG_SZ && strcmp (vs.text, c->text) == 0;
  value_state_free (&vs);
  if (!ok)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: verification failed: %s\\%s %s does not hold the new value",
                         hv->path, a->control_set, a->index, c->want->name);
  return 0;
}

int
verify_written (const char *out_path, const struct plan *p,
                const struct hive_census *before, struct np_error *err)
{
  struct base_block bb;
  struct hive hv = { NULL, out_path };
  size_t keys, values, want_values = before->values;
  int r = -1;

  if (hive_read_base_block (out_path, &bb, err) == -1)
    return -1;
  if (base_block_is_dirty (&bb)) {
    char why[128];
    base_block_describe (&bb, why, sizeof why);
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: verification failed: written hive is not clean: %s",
                         out_path, why);
  }
  if (hive_open (&hv, out_path, 0, err) == -1)
    return -1;

  for (size_t i = 0; i < p->n_changes; i++) {
    if (p->changes[i].action == CHANGE_ADD)
      want_values++;
    else if (p->changes[i].action == CHANGE_DELETE)
      want_values--;
  }
  if (hive_walk_all (&hv, before->skip_bad, &keys, &values) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME,
                  "%s: verification failed: the written hive does not read back: %s",
                  out_path, strerror (errno ? errno : EINVAL));
    goto out;
  }
  if (keys != before->keys || values != want_values) {
    np_error_set (err, NP_EXIT_RUNTIME,
                  "%s: verification failed: %zu keys and %zu values, expected %zu and %zu",
                  out_path, keys, values, before->keys, want_values);
    goto out;
  }
  for (size_t i = 0; i < p->n_changes; i++)
    if (verify_change (&hv, p, &p->changes[i], err) == -1)
      goto out;
  r = 0;

 out:
  hive_close (&hv);
  return r;
}

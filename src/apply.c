/* netvsc-patch: applying and verifying a plan. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apply.h"
#include "hive_count.h"

/* Copy every value of NODE into K (k->readable = 0 if one cannot be
 * read).  -1 only when out of memory. */
static int
snapshot_key (hive_h *h, hive_node_h node, struct census_key *k)
{
  hive_value_h *values = hivex_node_values (h, node);
  size_t n = 0;

  k->readable = 0;
  if (values == NULL)
    return errno == ENOMEM ? -1 : 0;
  while (values[n])
    n++;
  k->v = calloc (n ? n : 1, sizeof *k->v);
  if (k->v == NULL) {
    free (values);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    struct census_value *cv = &k->v[k->n];
    cv->name = hivex_value_key (h, values[i]);
    if (cv->name == NULL)
      goto unreadable;
    errno = 0;
    cv->data = hivex_value_value (h, values[i], &cv->type, &cv->len);
    if (cv->data == NULL && (cv->len > 0 || errno != 0)) {
      free (cv->name);
      cv->name = NULL;
      goto unreadable;
    }
    k->n++;
  }
  k->readable = 1;
 unreadable:
  free (values);
  return 0;
}

static void
census_key_free (struct census_key *k)
{
  for (size_t i = 0; i < k->n; i++) {
    free (k->v[i].name);
    free (k->v[i].data);
  }
  free (k->v);
  k->v = NULL;
  k->n = 0;
}

void
hive_census_free (struct hive_census *c)
{
  hive_count_discard (c->counting);
  c->counting = NULL;
  for (size_t i = 0; i < c->n_touched; i++)
    census_key_free (&c->touched[i]);
  free (c->touched);
  c->touched = NULL;
  c->n_touched = 0;
}

/* The census's count of PATH made here; its failure's message. */
static int
count_here (const char *path, int *skip_bad, size_t *keys, size_t *values,
            struct np_error *err)
{
  if (hive_count_census (path, skip_bad, keys, values) == 0)
    return 0;
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: the hive is damaged: %s",
                       path, strerror (errno));
}

/* The original's count, made by the thread hive_open started: waited
 * for only when verification needs it.  Should it have failed, the
 * original is counted here, which gives the error its message. */
static int
census_counted (struct hive_census *c, struct np_error *err)
{
  int r;

  if (c->counting == NULL)
    return 0;
  r = hive_count_finish (c->counting, &c->skip_bad, &c->keys, &c->values);
  c->counting = NULL;
  if (r == 0)
    return 0;
  return count_here (c->path, &c->skip_bad, &c->keys, &c->values, err);
}

int
hive_census_take (struct hive *hv, const struct plan *p, struct hive_census *c,
                  struct np_error *err)
{
  c->touched = NULL;
  c->n_touched = 0;
  c->path = hv->path;
  c->counting = hv->census;
  hv->census = NULL;
  if (c->counting == NULL && count_here (hv->path, &c->skip_bad, &c->keys, &c->values, err) == -1)
    return -1;
  c->touched = calloc (p->n_changes ? p->n_changes : 1, sizeof *c->touched);
  if (c->touched == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  for (size_t i = 0; i < p->n_changes; i++) {
    const struct change *ch = &p->changes[i];
    size_t j = c->n_touched;
    if (!plan_first_write_to_key (p, i))
      continue;
    c->touched[j].adapter = ch->adapter;
    c->n_touched++;
    if (snapshot_key (hv->h, p->adapters.v[ch->adapter].node, &c->touched[j]) == -1) {
      hive_census_free (c);
      return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    }
  }
  return 0;
}

int
apply_plan (struct hive *hv, const struct plan *p, const char *out_path,
            struct np_error *err)
{
  /* Each key written to, checked before anything changes: libhivex
   * aborts on a key whose values it cannot free one by one. */
  for (size_t i = 0; i < p->n_changes; i++) {
    const struct adapter *a = &p->adapters.v[p->changes[i].adapter];
    if (!plan_first_write_to_key (p, i))
      continue;
    if (hive_values_rewritable (hv, a->node) == -1)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s\\%s\\%s: the key's values are damaged "
                           "(%s): nothing written", hv->path, a->control_set, NET_CLASS_PATH,
                           a->index, errno == EINVAL ? "a cell named twice among them, or "
                           "a value or its data not a cell" : strerror (errno));
  }
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

/* The key the plan's adapter A is, in HV (written), or 0. */
static hive_node_h
adapter_key (struct hive *hv, const struct adapter *a)
{
  hive_node_h cs = hivex_node_get_child (hv->h, hivex_root (hv->h), a->control_set);
  hive_node_h node = cs ? hive_lookup (hv, cs, NET_CLASS_PATH) : 0;

  return node ? hivex_node_get_child (hv->h, node, a->index) : 0;
}

/* Is NAME one the plan writes (adds, updates, retypes, deletes) in the
 * key of adapter A? */
static int
planned (const struct plan *p, size_t a, const char *name)
{
  for (size_t i = 0; i < p->n_changes; i++) {
    const struct change *c = &p->changes[i];
    if (c->adapter != a || c->action == CHANGE_KEEP || strcasecmp (c->want->name, name) != 0)
      continue;
    return 1;
  }
  return 0;
}

/* Read back every value of a key the plan wrote to: each one it did not
 * plan must be there with the same name, type and data, and there must
 * be no other (the planned ones are verify_change's). */
static int
verify_key (struct hive *hv, const struct plan *p, const struct census_key *k,
            struct np_error *err)
{
  const struct adapter *a = &p->adapters.v[k->adapter];
  hive_node_h node = adapter_key (hv, a);
  struct census_key now = { k->adapter, 0, NULL, 0 };
  long want = (long) k->n;
  int r = -1;

  if (!k->readable)
    return 0;
  if (node == 0)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: verification failed: %s\%s\%s is missing",
                         hv->path, a->control_set, NET_CLASS_PATH, a->index);
  if (snapshot_key (hv->h, node, &now) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  if (!now.readable) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: verification failed: the values of %s\%s "
                  "do not read back", hv->path, a->control_set, a->index);
    goto out;
  }
  /* the plan's names counted once each, whether or not present before */
  for (size_t i = 0; i < p->n_changes; i++) {
    const struct change *c = &p->changes[i];
    if (c->adapter == k->adapter && c->action != CHANGE_KEEP)
      want += c->action == CHANGE_ADD ? 1 : c->action == CHANGE_DELETE ? -1 : 0;
  }
  for (size_t i = 0; i < k->n; i++) {
    const struct census_value *was = &k->v[i];
    const struct census_value *is = NULL;
    if (planned (p, k->adapter, was->name))
      continue;
    for (size_t j = 0; is == NULL && j < now.n; j++)
      if (strcmp (now.v[j].name, was->name) == 0)
        is = &now.v[j];
    if (is == NULL || is->type != was->type || is->len != was->len ||
        (was->len && memcmp (is->data, was->data, was->len) != 0)) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: verification failed: %s\%s %s %s",
                    hv->path, a->control_set, a->index, was->name,
                    is ? "was changed" : "is missing");
      goto out;
    }
  }
  if ((long) now.n != want) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: verification failed: %s\%s holds %zu values, "
                  "expected %ld", hv->path, a->control_set, a->index, now.n, want);
    goto out;
  }
  r = 0;
 out:
  census_key_free (&now);
  return r;
}

int
verify_written (const char *out_path, const struct plan *p,
                struct hive_census *before, struct np_error *err)
{
  struct base_block bb;
  struct hive hv = { NULL, out_path, NULL };
  size_t keys, values, want_values;
  int r = -1;

  if (census_counted (before, err) == -1)
    return -1;
  want_values = before->values;
  if (hive_read_base_block (out_path, &bb, err) == -1)
    return -1;
  if (base_block_is_dirty (&bb)) {
    char why[128];
    base_block_describe (&bb, why, sizeof why);
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: verification failed: written hive is not clean: %s",
                         out_path, why);
  }
  for (size_t i = 0; i < p->n_changes; i++) {
    if (p->changes[i].action == CHANGE_ADD)
      want_values++;
    else if (p->changes[i].action == CHANGE_DELETE)
      want_values--;
  }
  /* counted (mapped, then unmapped) before hivex maps it for the
   * values: the two mappings are not held at once */
  if (hive_count_file (out_path, before->skip_bad, &keys, &values) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: verification failed: the written hive does not read back: %s",
                         out_path, strerror (errno ? errno : EINVAL));
  if (keys != before->keys || values != want_values)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: verification failed: %zu keys and %zu values, expected %zu and %zu",
                         out_path, keys, values, before->keys, want_values);
  if (hive_open (&hv, out_path, 0, err) == -1)
    return -1;
  for (size_t i = 0; i < p->n_changes; i++)
    if (verify_change (&hv, p, &p->changes[i], err) == -1)
      goto out;
  for (size_t i = 0; i < before->n_touched; i++)
    if (verify_key (&hv, p, &before->touched[i], err) == -1)
      goto out;
  r = 0;

 out:
  hive_close (&hv);
  return r;
}

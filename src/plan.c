/* netvsc-patch: building the plan. */
#include <stdlib.h>
#include <string.h>

#include "plan.h"

static const struct value_state *
old_value (const struct adapter *a, const char *name)
{
  return strcmp (name, VALUE_RECEIVE) == 0 ? &a->receive : &a->send;
}

static enum change_action
decide (const struct value_state *old, const struct request_value *want)
{
  if (want->remove)
    return old->present ? CHANGE_DELETE : CHANGE_KEEP;
  if (!old->present)
    return CHANGE_ADD;
  if (!old->is_dword)
    return CHANGE_RETYPE;
  return old->dword == want->kb ? CHANGE_KEEP : CHANGE_UPDATE;
}

int
plan_build (struct plan *p, struct adapter_list *adapters,
            const struct request *req)
{
  memset (p, 0, sizeof *p);
  p->adapters = *adapters;
  adapters->v = NULL;
  adapters->n = 0;

  for (size_t i = 0; i < p->adapters.n; i++)
    if (p->adapters.v[i].matched)
      p->n_matched++;
  if (p->n_matched == 0)
    return 0;

  p->changes = calloc (p->n_matched * req->n, sizeof *p->changes);
  if (p->changes == NULL)
    return -1;
  for (size_t i = 0; i < p->adapters.n; i++) {
    const struct adapter *a = &p->adapters.v[i];
    if (!a->matched)
      continue;
    for (size_t j = 0; j < req->n; j++) {
      struct change *c = &p->changes[p->n_changes++];
      c->adapter = i;
      c->want = &req->v[j];
      c->old = old_value (a, req->v[j].name);
      c->action = decide (c->old, c->want);
      if (c->action != CHANGE_KEEP)
        p->n_writes++;
    }
  }
  return 0;
}

void
plan_free (struct plan *p)
{
  adapters_free (&p->adapters);
  free (p->changes);
  p->changes = NULL;
  p->n_changes = p->n_writes = p->n_matched = 0;
}

const char *
change_action_name (enum change_action a)
{
  switch (a) {
  case CHANGE_ADD: return "add";
  case CHANGE_UPDATE: return "update";
  case CHANGE_RETYPE: return "retype";
  case CHANGE_DELETE: return "delete";
  case CHANGE_KEEP: return "unchanged";
  }
  return "?";
}

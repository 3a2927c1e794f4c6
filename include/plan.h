/* netvsc-patch: the plan, i.e. what must differ between the hive and
 * the request.  Dry-run, --check, --list, JSON and the real write are
 * all views of one plan, so they cannot disagree. */
#ifndef NETVSC_PATCH_PLAN_H
#define NETVSC_PATCH_PLAN_H

#include <stdint.h>

#include "match.h"

/* What the user asked for: each buffer value to set, or to remove. */
struct request_value {
  const char *name;           /* VALUE_RECEIVE or VALUE_SEND */
  int remove;                 /* delete the value (driver default) */
  uint32_t kb;                /* when setting */
};
struct request {
  struct request_value v[2];
  size_t n;
};

enum change_action {
  CHANGE_ADD,        /* value absent: create it */
  CHANGE_UPDATE,     /* REG_DWORD with another number */
  CHANGE_RETYPE,     /* a value of another type: replace it */
  CHANGE_DELETE,     /* --remove: delete it */
  CHANGE_KEEP,       /* already as requested */
};

struct change {
  size_t adapter;                /* index into plan.adapters */
  const struct request_value *want;
  const struct value_state *old; /* borrowed from the adapter */
  enum change_action action;
};

struct plan {
  struct adapter_list adapters;  /* every network instance seen */
  struct change *changes;        /* for matched adapters only */
  size_t n_changes;
  size_t n_matched;
  size_t n_writes;               /* changes that are not CHANGE_KEEP */
};

/* Build the plan: takes ownership of ADAPTERS.  Returns 0 or -1 (out
 * of memory). */
int plan_build (struct plan *p, struct adapter_list *adapters,
                const struct request *req);
void plan_free (struct plan *p);

const char *change_action_name (enum change_action a);

#endif

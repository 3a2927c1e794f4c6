/* netvsc-patch: the plan, i.e. what must differ between the hive and
 * the request.  Dry-run, --check, --list, JSON and the real write are
 * all views of one plan, so they cannot disagree. */
#ifndef NETVSC_PATCH_PLAN_H
#define NETVSC_PATCH_PLAN_H

#include <stdint.h>

#include "match.h"
#include "ndi.h"
#include "request.h"

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
  const struct ndi_param *param; /* the driver's description, or NULL */
  enum change_action action;
  /* The value to write (unless want->remove). */
  hive_type type;                /* hive_t_REG_DWORD or hive_t_REG_SZ */
  uint32_t dword;
  char *text;                    /* REG_SZ data; also the DWORD as checked */
  /* Ndi\Params does not allow it: the reason.  Refused unless
   * request.force, and then written with a warning. */
  char *refusal;
};

struct plan {
  struct adapter_list adapters;  /* every network instance seen */
  struct change *changes;        /* for matched adapters only */
  size_t n_changes;
  size_t n_matched;
  size_t n_writes;               /* changes that are not CHANGE_KEEP */
  size_t n_refused;              /* changes whose value the driver refuses */
  int forced;                    /* and --force writes them anyway */
};

/* Build the plan: takes ownership of ADAPTERS.  For each matched
 * adapter and requested keyword: the type and data to write, checked
 * against the driver's Ndi\Params when it describes the keyword.
 * Returns 0 or -1 (out of memory). */
int plan_build (struct plan *p, struct adapter_list *adapters,
                const struct request *req);
void plan_free (struct plan *p);

const char *change_action_name (enum change_action a);

/* Is change I the first of P's writes (not CHANGE_KEEP) to its adapter's
 * key?  For what is done once for each key written to. */
int plan_first_write_to_key (const struct plan *p, size_t i);

#endif

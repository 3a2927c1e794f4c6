/* netvsc-patch: carrying out a plan on an open hive, and proving the
 * result before anything replaces the original. */
#ifndef NETVSC_PATCH_APPLY_H
#define NETVSC_PATCH_APPLY_H

#include "hive.h"
#include "plan.h"

/* Shape of the hive before changes: what verification compares with. */
struct hive_census {
  int skip_bad;         /* the original only walks with HIVEX_VISIT_SKIP_BAD */
  size_t keys, values;
};
int hive_census_take (struct hive *hv, struct hive_census *c, struct np_error *err);

/* Make the plan's changes in HV (opened writable) and commit the
 * result to OUT_PATH (a new file; HV's own file is not touched). */
int apply_plan (struct hive *hv, const struct plan *p, const char *out_path,
                struct np_error *err);

/* Reopen OUT_PATH and check it: clean base block, every key and value
 * readable and as many as BEFORE plus the plan's additions, and each
 * change of the plan visible.  Returns 0 or -1. */
int verify_written (const char *out_path, const struct plan *p,
                    const struct hive_census *before, struct np_error *err);

#endif

/* netvsc-patch: carrying out a plan on an open hive, and proving the
 * result before anything replaces the original. */
#ifndef NETVSC_PATCH_APPLY_H
#define NETVSC_PATCH_APPLY_H

#include "hive.h"
#include "plan.h"

/* One value of a key the plan writes to, as it was. */
struct census_value {
  char *name;
  hive_type type;
  size_t len;
  char *data;
};
/* Every value of a key the plan writes to, as it was (readable == 0:
 * some value of it could not be read; then only the planned values are
 * checked there). */
struct census_key {
  size_t adapter;       /* index into the plan's adapters */
  int readable;
  struct census_value *v;
  size_t n;
};

/* Shape of the hive before changes: what verification compares with. */
struct hive_count_job;
struct hive_census {
  int skip_bad;         /* the original is only counted with skip_bad
                           (hive_count_file) */
  size_t keys, values;
  struct hive_count_job *counting;  /* keys, values and skip_bad, still
                                       being counted (hive_count.h) */
  const char *path;     /* the original, should that count fail */
  struct census_key *touched;
  size_t n_touched;
};
/* Copy every value of each key P writes to, and count the keys and
 * values of HV's file (hive_count_file: no names or value data read): the
 * count its writable open started in a thread (hive_count.h) is taken
 * over, to be waited for by verify_written; without one, HV is counted
 * here. */
int hive_census_take (struct hive *hv, const struct plan *p, struct hive_census *c,
                      struct np_error *err);
void hive_census_free (struct hive_census *c);

/* Make the plan's changes in HV (opened writable) and commit the
 * result to OUT_PATH (a new file; HV's own file is not touched). */
int apply_plan (struct hive *hv, const struct plan *p, const char *out_path,
                struct np_error *err);

/* Reopen OUT_PATH and check it (after waiting for BEFORE's count):
 * clean base block; the structure
 * (hive_count_file) sound with as many keys as BEFORE and as many
 * values plus the plan's additions minus its deletions; each change of
 * the plan visible; every other value of each key the plan wrote to
 * read back whole and identical to BEFORE's copy, and no value more or
 * less there.  Returns 0 or -1. */
int verify_written (const char *out_path, const struct plan *p,
                    struct hive_census *before, struct np_error *err);

#endif

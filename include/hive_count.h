/* netvsc-patch: counting a hive's keys and values, checking its
 * structure, for verification (apply.h): the original's count is
 * compared with the written hive's. */
#ifndef NETVSC_PATCH_HIVE_COUNT_H
#define NETVSC_PATCH_HIVE_COUNT_H

#include <stddef.h>

#include "hive.h"

/* Count the keys and values reachable from the root, checking the
 * structure without decoding names or reading value data: every key is
 * a valid "nk" cell reached once (no cycle, no key shared by two
 * parents), its subkey and value lists are valid, every value is a
 * valid "vk" cell whose data is inline (at most 4 bytes) or in a valid
 * allocated cell.  Fails (errno) on the first fault, or with SKIP_BAD
 * skips the rest of a faulty key and its subkeys, as HIVEX_VISIT_SKIP_BAD
 * does.  About a third of hive_walk_all's time: names are UTF-16 and
 * their decoding (iconv) is what costs. */
int hive_count_structure (struct hive *hv, int skip_bad, size_t *n_keys, size_t *n_values);

/* A count made by a thread of its own, on a read-only open of PATH (a
 * mapping of the page cache, not a copy), while the caller does
 * something else with the same file:
 *  - the census (apply.h): hivex's writable open copies the whole file
 *    (12 MB for a real SYSTEM) before anything can be counted; the
 *    original is counted meanwhile.  Both opens are made under the
 *    hive's lock; were the file to differ between them, the counts would
 *    differ from the written hive's and verification would refuse it.
 *  - verification: the written hive is counted while the changes are
 *    read back from another open of it.
 * Each takes about a quarter of a hive-mode run off its path, for the
 * CPU time of one more hivex open (hivex's handles are not shared
 * between threads: each thread opens its own). */
struct hive_count_job;

/* What to count: HIVE_COUNT_CENSUS is the census's rule (strict, else
 * lenient); 0 or 1 is hive_count_structure's SKIP_BAD. */
#define HIVE_COUNT_CENSUS (-1)

/* Start counting PATH; NULL when no thread can be made (the caller then
 * counts itself). */
struct hive_count_job *hive_count_start (const char *path, int mode);

/* Wait for JOB (NULL is allowed) and free it: 0 with the counts
 * (*SKIP_BAD: whether the lenient count was the one that succeeded), or
 * -1 with errno (0 when there was no job or the file did not open:
 * the caller then counts itself, which gives the error its message). */
int hive_count_finish (struct hive_count_job *job, int *skip_bad, size_t *n_keys,
                       size_t *n_values);

#endif

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

/* The original's count, made while the hive is read for patching.
 * hivex's writable open copies the whole file (12 MB for a real SYSTEM)
 * before anything can be counted; a read-only open of the same file (a
 * mapping of the page cache, no copy) can be counted by a second thread
 * meanwhile: a quarter of a hive-mode run, off its path.  Both opens
 * are made under the hive's lock; were the file to differ between them,
 * the counts would differ from the written hive's and verification
 * would refuse the write. */

/* Start counting PATH in a thread (HV->census), or set HV->census to
 * NULL when no thread can be made. */
void hive_count_start (struct hive *hv, const char *path);

/* Wait for HV's count: 0 with the counts (SKIP_BAD when only a lenient
 * count succeeded: strict first, as the census does), or -1 when there
 * is none or it failed; the caller then counts HV itself (which also
 * gives an error its message). */
int hive_count_take (struct hive *hv, int *skip_bad, size_t *n_keys, size_t *n_values);

#endif

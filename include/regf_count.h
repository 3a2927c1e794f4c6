/* netvsc-patch: a hive's keys and values counted from its bytes, the
 * structure checked on the way, for verification (hive_count.h). */
#ifndef NETVSC_PATCH_REGF_COUNT_H
#define NETVSC_PATCH_REGF_COUNT_H

#include <stddef.h>

/* Count the keys and values reachable from the root of the hive in BUF
 * (LEN bytes: the whole file), checking what every one of them stands
 * on, without reading names or value data:
 *  - the cells: those the hive bins hold, walked bin by bin; every
 *    offset followed must be the start of an allocated one, whose size
 *    holds what is read from it;
 *  - every key: an "nk" cell reached once (no cycle, no key shared by
 *    two parents), its name inside the cell; its subkey list an "lf",
 *    "lh" or "li" list, or an "ri" list of those, holding as many keys
 *    as the key says it has; its value list holding as many values;
 *  - every value: a "vk" cell, its name inside the cell, its data
 *    inline (at most 4 bytes) or a cell that holds it, or a "db" cell
 *    whose segments are cells.
 * 0, or -1 with errno (EINVAL: not a hive, or a fault; ELOOP: a key
 * reached twice; ENOMEM) at the first fault.  With SKIP_BAD, as
 * hivex's HIVEX_VISIT_SKIP_BAD: a key reached twice is skipped, and a
 * faulty key stays counted with the values read before its fault, its
 * subkeys not visited.  Reads nothing outside BUF, whatever its bytes. */
int regf_count (const unsigned char *buf, size_t len, int skip_bad, size_t *n_keys,
                size_t *n_values);

#endif

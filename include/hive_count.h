/* netvsc-patch: counting a hive's keys and values, checking its
 * structure, for verification (apply.h): the original's count is
 * compared with the written hive's. */
#ifndef NETVSC_PATCH_HIVE_COUNT_H
#define NETVSC_PATCH_HIVE_COUNT_H

#include <stddef.h>

/* Count the keys and values of the hive file PATH reachable from its
 * root, checking its structure (regf_count.h: from the bytes, not
 * through hivex; the file mapped, not copied).  0, or -1 with errno on
 * the first fault, or with SKIP_BAD past faulty keys, as
 * HIVEX_VISIT_SKIP_BAD does. */
int hive_count_file (const char *path, int skip_bad, size_t *n_keys, size_t *n_values);

/* The census's rule: a strict count, else a lenient one (*SKIP_BAD set
 * when that is the one that succeeded).  0, or -1 with errno. */
int hive_count_census (const char *path, int *skip_bad, size_t *n_keys, size_t *n_values);

/* The census's count (apply.h), made by a thread of its own on a
 * mapping of the hive while hivex's writable open copies the whole
 * file (12 MB for a real SYSTEM) into memory, and waited for only when
 * verification compares: a few milliseconds of a hive-mode run off its
 * path.  Both reads are made under the hive's
 * lock; were the file to differ between them, the counts would differ
 * from the written hive's and verification would refuse the write. */
struct hive_count_job;

/* Start counting PATH by the census's rule (strict, else lenient);
 * NULL when no thread can be made (the caller then counts itself). */
struct hive_count_job *hive_count_start (const char *path);

/* Wait for JOB (NULL is allowed) and free it: 0 with the counts
 * (*SKIP_BAD: whether the lenient count was the one that succeeded), or
 * -1 with errno (0 when there was no job): the caller then counts
 * itself, which gives an error its message. */
int hive_count_finish (struct hive_count_job *job, int *skip_bad, size_t *n_keys,
                       size_t *n_values);

/* Wait for JOB (NULL is allowed), free it, and drop its counts: a count
 * nobody got to compare (nothing was written, or a failure came first). */
void hive_count_discard (struct hive_count_job *job);

#endif

/* netvsc-patch unit tests: one suite per module. */
#ifndef NETVSC_PATCH_UNIT_H
#define NETVSC_PATCH_UNIT_H

#include <check.h>
#include <hivex.h>
#include <stddef.h>

Suite *size_suite (void);
Suite *format_suite (void);
Suite *match_suite (void);
Suite *hive_suite (void);
Suite *plan_suite (void);
Suite *replay_suite (void);
Suite *defer_suite (void);
Suite *ndi_suite (void);
Suite *guestdefer_suite (void);
Suite *parttable_suite (void);
Suite *escape_suite (void);
Suite *layers_suite (void);
Suite *winvol_suite (void);
Suite *status_suite (void);
Suite *utf16_suite (void);
Suite *domain_suite (void);
Suite *uri_suite (void);
Suite *bitlocker_suite (void);
Suite *regf_count_suite (void);

/* Path of fixture hive NAME (built by tests/make-fixture-hives.sh into
 * $FIXTURES/hives) in a static buffer. */
const char *fixture_hive (const char *name);
/* Copy fixture NAME to a fresh temporary file; returns its path
 * (malloc'd). */
char *fixture_copy (const char *name);
/* The whole of file PATH, malloc'd and NUL-terminated, its size in *SIZE
 * (SIZE may be NULL); the test fails if it cannot be read. */
unsigned char *file_bytes (const char *path, size_t *size);
/* Every key and value of H read by hivex_visit (names decoded, value data
 * read), failing on the first damaged one: a count independent of the
 * tool's own.  0 with the counts, or -1. */
int hivex_visit_count (hive_h *h, size_t *keys, size_t *values);

#endif

/* netvsc-patch: what the user sees: human text or JSON, both read off
 * the plan and the outcome. */
#ifndef NETVSC_PATCH_REPORT_H
#define NETVSC_PATCH_REPORT_H

#include <stdio.h>

#include "job.h"

/* The error line (stderr) and the report (stdout) for one target. */
void report_outcome (FILE *fp, const struct options *o, const struct outcome *out);
/* The same, the error line to ERRFP (a contained job renders both into
 * memory: contain.c). */
void report_outcome_to (FILE *fp, FILE *errfp, const struct options *o,
                        const struct outcome *out);
/* Whether a report goes to standard output at all (-q keeps --list,
 * --dry-run and --json output: they are what was asked for). */
int report_prints (const struct options *o);
/* Flush FP after a report: 0, or -1 with WHY ("standard output closed
 * (broken pipe)") when it cannot take it. */
int report_flush (FILE *fp, char *why, size_t len);
/* "schema_version" of every JSON object: raised when a key changes
 * meaning or goes (netvsc-patch(1), JSON OUTPUT). */
#define REPORT_JSON_SCHEMA 1
/* One JSON object on one line. */
void report_json (FILE *fp, const struct options *o, const struct outcome *out);

#endif

/* netvsc-patch: strings from the guest or from file names, made safe to
 * print.  Registry strings, guest paths, file names and library messages
 * can hold any bytes: an escape sequence must not reach the user's
 * terminal, and JSON must stay valid UTF-8.  One rule, in one place:
 *
 *   - valid UTF-8 is kept, printable characters as they are;
 *   - ESC_CONTROL: C0 controls and DEL become C escapes (\a \b \t \n \v
 *     \f \r, else \xNN as \x1b, \x7f), C1 code points (U+0080-U+009F)
 *     become \u0080 .. \u009f;
 *   - ESC_BACKSLASH: a backslash becomes \\ (with it the escaping can be
 *     undone unambiguously: the JSON file-name fields);
 *   - always: each byte that is not part of valid UTF-8 (stray
 *     continuation byte, truncated or overlong sequence, a surrogate,
 *     beyond U+10FFFF) becomes \xNN, lowercase hex. */
#ifndef NETVSC_PATCH_ESCAPE_H
#define NETVSC_PATCH_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

enum {
  ESC_CONTROL = 1,
  ESC_BACKSLASH = 2,
  ESC_TEXT = ESC_CONTROL,      /* what every text line uses */
};

/* S escaped by FLAGS into BUF (LEN bytes, NUL-terminated); an escape or
 * a character is never cut in half, and "..." ends a string that did
 * not fit.  Returns BUF; NULL S gives "(null)". */
const char *esc_str (char *buf, size_t len, const char *s, int flags);
/* The same, malloc'd (NULL: out of memory). */
char *esc_dup (const char *s, int flags);
/* Write S to FP escaped by ESC_TEXT. */
void esc_fputs (const char *s, FILE *fp);
/* printf to FP with the whole formatted text escaped by ESC_TEXT, then
 * a newline: for one-line messages that quote guest data or names. */
void esc_line (FILE *fp, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Whether S is valid UTF-8 throughout. */
int esc_utf8_valid (const char *s);

#endif

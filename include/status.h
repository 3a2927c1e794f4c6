/* netvsc-patch: exit codes and the error record every module fills in.
 *
 * Modules return 0 / -1 (or NULL) and describe the failure in a
 * struct np_error; the caller, which knows the file the user named,
 * prints the single line.  The code travels with the message so that
 * the process exit status is decided where the failure is understood.
 */
#ifndef NETVSC_PATCH_STATUS_H
#define NETVSC_PATCH_STATUS_H

enum np_exit {
  NP_EXIT_OK = 0,          /* patched, or nothing needed */
  NP_EXIT_RUNTIME = 1,     /* cannot open image, no Windows volume, hive unreadable */
  NP_EXIT_USAGE = 2,       /* bad option or value */
  NP_EXIT_NO_ADAPTER = 3,  /* no class instance matched */
  NP_EXIT_UNSAFE = 4,      /* refused: dirty hive, hibernated Windows, ... */
  NP_EXIT_DIFFERS = 5,     /* --check: values not (all) in place; its own code, so
                              that a script tells "needs patching" from a failure */
  NP_EXIT_ENCRYPTED = 6,   /* the Windows volume is encrypted (BitLocker) and no key
                              given opened it: nothing to retry until one is */
};

struct np_error {
  int code;                /* one of enum np_exit */
  char msg[1024];
};

/* Record an error (printf-style).  Returns -1 so callers can
 * `return np_error_set (...)`. */
int np_error_set (struct np_error *err, int code, const char *fmt, ...)
  __attribute__((format (printf, 3, 4)));

/* Fold a possibly multi-line message from a library into one line. */
void np_one_line (char *s);

/* Context is added to a message in one place, here, never by editing
 * its text elsewhere.  SUBJECT is what the user named (an image, a
 * hive); a message may already start with "SUBJECT: ".
 *
 * np_error_context: "SUBJECT: CONTEXT: reason" (a guest path, say),
 * unless the message names CONTEXT already. */
void np_error_context (struct np_error *err, const char *subject, const char *context);
/* Every FROM in the message becomes TO: a temporary file of ours is
 * named as the user's file it stands for. */
void np_error_rename (struct np_error *err, const char *from, const char *to);
/* "SUBJECT: " + the printf-style FMT + the reason (the message without
 * its "SUBJECT: ").  Keeps the code.  Returns -1. */
int np_error_wrap (struct np_error *err, const char *subject, const char *fmt, ...)
  __attribute__((format (printf, 3, 4)));
/* No error (after one was only worth a warning): code and message. */
void np_error_clear (struct np_error *err);
/* The printf-style FMT added at the end of the message. */
void np_error_append (struct np_error *err, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

#endif

/* netvsc-patch: SIGINT/SIGTERM.  The handler only records the signal;
 * the pipeline looks at it between steps, so an interrupted run stops
 * at a point where it knows (and says) whether the target was written.
 * The step that puts the new hive in place runs with the signals
 * blocked: it is never cut in half. */
#ifndef NETVSC_PATCH_INTERRUPT_H
#define NETVSC_PATCH_INTERRUPT_H

void interrupt_install (void);
/* Stop as if SIG had been received (a closed standard output: SIGPIPE),
 * unless a signal came already.  SIGPIPE itself is caught and does
 * nothing: writes to a closed pipe fail with EPIPE. */
void interrupt_note (int sig);
/* The signal received so far (SIGINT, SIGTERM), or 0. */
int interrupt_pending (void);
/* Block (1) or unblock (0) SIGINT and SIGTERM. */
void interrupt_defer (int block);

#endif

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static inline void tmark (const char *what) {
  if (!getenv ("NP_TIMING")) return;
  struct timespec t; clock_gettime (CLOCK_REALTIME, &t);
  fprintf (stderr, "TM %ld %s\n", t.tv_sec * 1000000L + t.tv_nsec / 1000, what);
}

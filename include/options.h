/* netvsc-patch: the parsed command line, the program's only shared state. */
#ifndef NETVSC_PATCH_OPTIONS_H
#define NETVSC_PATCH_OPTIONS_H

#include "hive.h"
#include "match.h"
#include "plan.h"
#include "defer.h"
#include "bitlocker.h"

enum run_mode {
  RUN_PATCH,     /* plan and apply (the default) */
  RUN_DRY,       /* --dry-run: plan and report */
  RUN_CHECK,     /* --check: exit 0 if nothing would change */
  RUN_LIST,      /* --list: show every network instance */
};

struct options {
  enum run_mode mode;
  struct request request;       /* values to set or remove */
  int remove;                   /* --remove (also takes out a --defer action) */
  int defer;                    /* --defer: install the boot-time action */
  struct defer_spec defer_spec; /* what it sets: the request, as the script takes it */
  struct defer_value defer_values[REQUEST_MAX];
  char defer_size_text[REQUEST_MAX][12];  /* buffer sizes as REG_SZ text */
  const char *format;           /* --format, canonical; NULL: detect */
  struct cs_request control_set;
  struct match_spec match;
  const char *root;             /* --root DEVICE */
  const char *hive;             /* --hive FILE: hive mode */
  const char *output;           /* -o FILE (hive mode) */
  const char *backup_dir;       /* --backup DIR */
  int lock_timeout;             /* --lock-timeout S: wait for another run's lock (60) */
  int direct;                   /* --direct: qemu-nbd + libntfs-3g, no appliance */
  char *allow_external[16];     /* --allow-external: real paths (layers.h) */
  int n_allow_external;
  char allow_external_buf[16][4096];
  const char *from;             /* --from LIST */
  int from_nul;                 /* -0/--null: LIST's entries end at NUL bytes */
  int jobs;                     /* -j N; 0: default */
  int isolate;                  /* --isolate: one appliance per image */
  int launch_timeout;           /* --launch-timeout: as in disk_request */
  int no_replay;                /* --no-replay: refuse dirty hives */
  int replay_only;              /* --replay-only: write the recovered hive to -o */
  int json;
  int verbose;
  int quiet;
  char **images;
  int n_images;
  const char *connect;          /* -c URI: libvirt's; NULL: its default */
  const char *domains[256];     /* -d NAME (repeatable): libvirt domains */
  int n_domains;
  int trace;                    /* -x: libguestfs API trace, or the steps (trace.h) */
  unsigned blocksize;           /* --blocksize: 512 or 4096; 0: from the GPT */
  struct keystore keys;         /* --key, --keys-from-stdin (appliance) */
};

#endif

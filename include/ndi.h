/* netvsc-patch: what a driver says of its advanced properties.
 *
 * A network driver's INF describes each advanced keyword it reads under
 * the class instance's Ndi\Params\KEYWORD: its type (int, long, word,
 * dword, enum, edit), default, and for numbers min, max and step, for
 * enums the allowed values under an Enum subkey, for text a maximum
 * length.  Windows' Advanced page offers only those values; we check a
 * --set value against the same rules before writing it. */
#ifndef NETVSC_PATCH_NDI_H
#define NETVSC_PATCH_NDI_H

#include <stddef.h>

#include "hive.h"

enum ndi_type {
  NDI_INT,      /* signed 32 bits */
  NDI_LONG,     /* unsigned 32 bits */
  NDI_WORD,     /* unsigned 16 bits */
  NDI_DWORD,    /* unsigned 32 bits */
  NDI_ENUM,     /* one of the Enum subkey's value names */
  NDI_EDIT,     /* free text, LimitText long at most */
  NDI_OTHER,    /* a type we do not know: not checked */
};

struct ndi_choice {
  char *value;  /* what is stored ("1") */
  char *desc;   /* what the Advanced page shows ("Enabled") */
};

struct ndi_param {
  char *keyword;
  char *desc;            /* ParamDesc */
  char *type_name;       /* as written ("int", "enum"...) */
  enum ndi_type type;
  char *default_value;   /* "default", may be NULL */
  int has_min, has_max, has_step;
  long long min, max, step;
  int base;              /* 10 or 16: how numbers are written */
  long limit_text;       /* edit: maximum length, 0 if none */
  int optional;          /* "Optional"="1": may be left empty */
  struct ndi_choice *choices;
  size_t n_choices;
};

/* Read Ndi\Params\KEYWORD of the class instance NODE.  Returns 0, 1 if
 * the driver does not describe KEYWORD, or -1 with errno. */
int ndi_param_read (struct hive *hv, hive_node_h node, const char *keyword,
                    struct ndi_param *p);
/* Every keyword under Ndi\Params, sorted by name (case-insensitively). */
int ndi_params_read_all (struct hive *hv, hive_node_h node, struct ndi_param **out,
                         size_t *n);
void ndi_param_free (struct ndi_param *p);
void ndi_params_free (struct ndi_param *v, size_t n);

/* Is TEXT a value the driver allows?  0 if so; -1 with the reason in
 * WHY ("not one of 1514, 4088, 9014, 16128"). */
int ndi_check (const struct ndi_param *p, const char *text, char *why, size_t len);
/* The allowed values in a few words: "80..2048 step 8",
 * "0 (Disabled), 1 (Enabled)", "text, at most 15 characters". */
void ndi_describe_allowed (const struct ndi_param *p, char *buf, size_t len);
/* Is the parameter numeric (int, long, word, dword)? */
int ndi_is_numeric (const struct ndi_param *p);

#endif

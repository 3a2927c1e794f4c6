/* netvsc-patch: which network class instances to patch.
 *
 * Adapters are found by what their driver is, never by index: the
 * NNNN under the network class key depends on installation order. */
#ifndef NETVSC_PATCH_MATCH_H
#define NETVSC_PATCH_MATCH_H

#include "hive.h"
#include "ndi.h"
#include "request.h"

/* The network adapter setup class, relative to a control set. */
#define NET_CLASS_PATH "Control\\Class\\{4d36e972-e325-11ce-bfc1-08002be10318}"
/* The Hyper-V synthetic NIC's hardware id (VMBus device class GUID). */
#define NETVSC_DEVICE_ID "vmbus\\{f8615163-df3e-46c5-913f-f2d2f965ed0e}"
#define NETVSC_SERVICE "netvsc"

enum match_kind {
  MATCH_NETVSC,     /* "netvsc": device id or Ndi\Service */
  MATCH_SERVICE,    /* "service:NAME": Ndi\Service equals NAME */
  MATCH_DESC,       /* "desc:TEXT": DriverDesc contains TEXT */
  MATCH_DEVICE_ID,  /* anything else: glob on MatchingDeviceId/ComponentId */
};

struct match_spec {
  enum match_kind kind;
  const char *arg;  /* borrowed from the option string */
};

/* Parse a --match SPEC.  Returns 0, or -1 with a reason in *why. */
int match_parse (const char *spec, struct match_spec *m, const char **why);

struct adapter_value {
  struct value_state now;
  struct ndi_param param;
  int described;
};

/* One instance NNNN under the network class key of one control set. */
struct adapter {
  char control_set[16];
  char index[16];
  hive_node_h node;
  char *desc;               /* DriverDesc */
  char *matching_id;        /* MatchingDeviceId */
  char *component_id;       /* ComponentId */
  char *service;            /* Ndi\Service */
  int matched;
  struct value_state receive, send;  /* the two buffer sizes, always */
  /* Per requested keyword (request.v[i]): its value now, and the
   * driver's description of it (described == 0: none). */
  struct adapter_value *values;
  size_t n_values;
  /* --list: every keyword under Ndi\Params, with its value now. */
  struct ndi_param *advanced;
  struct value_state *advanced_now;
  size_t n_advanced;
};

struct adapter_list {
  struct adapter *v;
  size_t n;
};

int match_adapter (const struct match_spec *m, const struct adapter *a);

/* Read every instance of the network class in each control set of CS,
 * with the values of REQ's keywords it holds now and their Ndi\Params
 * (every Ndi\Params keyword with ADVANCED), and mark those that match M. */
int adapters_enumerate (struct hive *hv, const struct control_sets *cs,
                        const struct match_spec *m, const struct request *req,
                        int advanced, struct adapter_list *out,
                        struct np_error *err);
void adapters_free (struct adapter_list *list);


#endif

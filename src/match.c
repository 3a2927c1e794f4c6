/* netvsc-patch: adapter enumeration and matching. */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "match.h"

int
match_parse (const char *spec, struct match_spec *m, const char **why)
{
  if (spec[0] == '\0') {
    *why = "empty match";
    return -1;
  }
  if (strcasecmp (spec, "netvsc") == 0) {
    m->kind = MATCH_NETVSC;
    m->arg = NULL;
  }
  else if (strncasecmp (spec, "service:", 8) == 0) {
    m->kind = MATCH_SERVICE;
    m->arg = spec + 8;
  }
  else if (strncasecmp (spec, "desc:", 5) == 0) {
    m->kind = MATCH_DESC;
    m->arg = spec + 5;
  }
  else if (strncasecmp (spec, "id:", 3) == 0) {
    m->kind = MATCH_DEVICE_ID;
    m->arg = spec + 3;
  }
  else if (strchr (spec, '\\')) {
    m->kind = MATCH_DEVICE_ID;
    m->arg = spec;
  }
  else {
    *why = "expected netvsc, service:NAME, desc:TEXT or a device id such as pci\\ven_8086&dev_100f";
    return -1;
  }
  if (m->arg && m->arg[0] == '\0') {
    *why = "nothing after the colon";
    return -1;
  }
  return 0;
}

static int
id_matches (const char *pattern, const char *id)
{
  /* Device ids contain backslashes, so they must not escape. */
  return id && fnmatch (pattern, id, FNM_NOESCAPE | FNM_CASEFOLD) == 0;
}

static int
contains_nocase (const char *haystack, const char *needle)
{
  size_t n = strlen (needle);

  if (haystack == NULL)
    return 0;
  for (; *haystack; haystack++)
    if (strncasecmp (haystack, needle, n) == 0)
      return 1;
  return 0;
}

int
match_adapter (const struct match_spec *m, const struct adapter *a)
{
  switch (m->kind) {
  case MATCH_NETVSC:
    return id_matches (NETVSC_DEVICE_ID, a->matching_id) ||
      id_matches (NETVSC_DEVICE_ID, a->component_id) ||
      (a->service && strcasecmp (a->service, NETVSC_SERVICE) == 0);
  case MATCH_SERVICE:
    return a->service && strcasecmp (a->service, m->arg) == 0;
  case MATCH_DESC:
    return contains_nocase (a->desc, m->arg);
  case MATCH_DEVICE_ID:
    return id_matches (m->arg, a->matching_id) || id_matches (m->arg, a->component_id);
  }
  return 0;
}

/* Instance keys are four decimal digits; the class key also holds
 * "Properties" and sometimes other non-instance subkeys. */
static int
is_instance_name (const char *name)
{
  if (strlen (name) != 4)
    return 0;
  for (int i = 0; i < 4; i++)
    if (!isdigit ((unsigned char) name[i]))
      return 0;
  return 1;
}

static int
read_keywords (struct hive *hv, const struct request *req, int advanced,
               struct adapter *a)
{
  a->values = calloc (req->n ? req->n : 1, sizeof *a->values);
  if (a->values == NULL)
    return -1;
  for (size_t i = 0; i < req->n; i++) {
    struct adapter_value *v = &a->values[a->n_values++];
    int r;
    if (hive_value_state (hv, a->node, req->v[i].name, &v->now) == -1 ||
        (r = ndi_param_read (hv, a->node, req->v[i].name, &v->param)) == -1)
      return -1;
    v->described = r == 0;
  }
  if (!advanced)
    return 0;
  if (ndi_params_read_all (hv, a->node, &a->advanced, &a->n_advanced) == -1)
    return -1;
  a->advanced_now = calloc (a->n_advanced ? a->n_advanced : 1, sizeof *a->advanced_now);
  if (a->advanced_now == NULL)
    return -1;
  for (size_t i = 0; i < a->n_advanced; i++)
    if (hive_value_state (hv, a->node, a->advanced[i].keyword, &a->advanced_now[i]) == -1)
      return -1;
  return 0;
}

static int
read_adapter (struct hive *hv, const struct control_set *cs, hive_node_h node,
              const char *name, const struct match_spec *m, const struct request *req,
              int advanced, struct adapter *a)
{
  hive_node_h ndi;

  memset (a, 0, sizeof *a);
  snprintf (a->control_set, sizeof a->control_set, "%s", cs->name);
  snprintf (a->index, sizeof a->index, "%s", name);
  a->node = node;
  a->desc = hive_get_string (hv, node, "DriverDesc");
  a->matching_id = hive_get_string (hv, node, "MatchingDeviceId");
  a->component_id = hive_get_string (hv, node, "ComponentId");
  ndi = hivex_node_get_child (hv->h, node, "Ndi");
  if (ndi)
    a->service = hive_get_string (hv, ndi, "Service");
  a->matched = match_adapter (m, a);
  if (hive_value_state (hv, node, VALUE_RECEIVE, &a->receive) == -1 ||
      hive_value_state (hv, node, VALUE_SEND, &a->send) == -1)
    return -1;
  /* Only matched adapters are planned; --list describes every one. */
  if (a->matched || advanced)
    return read_keywords (hv, a->matched ? req : &(struct request) { .n = 0 }, advanced, a);
  return 0;
}

static void
adapter_free (struct adapter *a)
{
  free (a->desc);
  free (a->matching_id);
  free (a->component_id);
  free (a->service);
  value_state_free (&a->receive);
  value_state_free (&a->send);
  for (size_t i = 0; i < a->n_values; i++) {
    value_state_free (&a->values[i].now);
    ndi_param_free (&a->values[i].param);
  }
  free (a->values);
  for (size_t i = 0; a->advanced_now && i < a->n_advanced; i++)
    value_state_free (&a->advanced_now[i]);
  free (a->advanced_now);
  ndi_params_free (a->advanced, a->n_advanced);
}

int
adapters_enumerate (struct hive *hv, const struct control_sets *cs,
                    const struct match_spec *m, const struct request *req,
                    int advanced, struct adapter_list *out, struct np_error *err)
{
  out->v = NULL;
  out->n = 0;

  for (size_t i = 0; i < cs->n; i++) {
    hive_node_h class = hive_lookup (hv, cs->v[i].node, NET_CLASS_PATH);
    hive_node_h *children;
    size_t n = 0;

    if (class == 0)
      continue;                 /* a control set with no network class */
    children = hivex_node_children (hv->h, class);
    if (children == NULL)
      goto fail;
    while (children[n])
      n++;
    struct adapter *grown = realloc (out->v, (out->n + n + 1) * sizeof *out->v);
    if (grown == NULL) {
      free (children);
      goto fail;
    }
    out->v = grown;
    for (size_t j = 0; j < n; j++) {
      char *name = hivex_node_name (hv->h, children[j]);
      int r = 0;
      if (name == NULL) {
        free (children);
        goto fail;
      }
      if (is_instance_name (name)) {
        r = read_adapter (hv, &cs->v[i], children[j], name, m, req, advanced,
                          &out->v[out->n]);
        out->n++;
      }
      free (name);
      if (r == -1) {
        free (children);
        goto fail;
      }
    }
    free (children);
  }
  return 0;

 fail:
  np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read the network class key: %s",
                hv->path, strerror (errno ? errno : EIO));
  adapters_free (out);
  return -1;
}

void
adapters_free (struct adapter_list *list)
{
  for (size_t i = 0; i < list->n; i++)
    adapter_free (&list->v[i]);
  free (list->v);
  list->v = NULL;
  list->n = 0;
}

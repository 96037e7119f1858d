/*
 * kc_info.h - what the daemon says about itself: the health verdict (for
 * Health, GET /health and the Stats answer). The Stats and ListNamespaces
 * operations (op_stats, op_list_namespaces) are in kc_info.c too; they
 * are declared with every handler in kc_dispatch.h.
 */
#ifndef KC_INFO_H
#define KC_INFO_H

#include "daemon/kc_daemon.h"

/* The health verdict now. */
void info_health(struct server *s, struct health *h);

#endif

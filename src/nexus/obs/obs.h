/* obs/obs.h — nexusd's observability listener (spec nexus §9.1 + ADVISED): /healthz,
 * /readyz (enrolled, breaker closed, a poll succeeded recently) and /metrics. Loopback by
 * default (config observability.listen_addr). It runs on libmicrohttpd's own thread and only
 * reads thread-safe state: the metrics registry and the readiness copy of the daemon. */
#pragma once
#include <stdint.h>

#include "core/error.h"

struct nx_daemon;

int nx_obs_start(struct nx_daemon *d, const char *host, uint16_t port, void **out, err_t *err);
void nx_obs_stop(void *obs);

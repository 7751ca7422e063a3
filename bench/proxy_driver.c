/* bench/proxy_driver.c — nexusd's egress proxy (src/nexus/proxy) alone on a TCP port, for
 * bench/proxy.
 *
 *   bench-proxy-driver --listen IP:PORT --net NET_CAPABILITY_JSON
 *
 * One libuv loop, one nx_proxy built from the capability exactly as a directive's (production
 * options: NULL), listening with nx_proxy_listen_tcp(). Every audit record is serialised to a
 * JSONL line and dropped (what egress_report would do first, without the upload), and counted.
 * Prints {"listening":"IP:PORT"} once it serves; on SIGTERM/SIGINT it closes the proxy and
 * prints {"audit_records":N,...,"bytes_down":N} (the audit count and nx_proxy_stats) before
 * exiting 0. Info-level logs are off (warnings and errors still reach stderr). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/error.h"
#include "core/log.h"
#include "proxy/proxy.h"

typedef struct driver {
        uv_loop_t *loop;
        nx_proxy *proxy;
        uv_signal_t sigterm;
        uv_signal_t sigint;
        uint64_t records;
        size_t record_bytes;
        nx_proxy_stats stats;
} driver;

static void on_audit(void *ud, json_t *record)
{
        driver *d = ud;
        char *line = json_dumps(record, JSON_COMPACT);

        if (line != NULL) {
                d->record_bytes += strlen(line) + 1;
                free(line);
        }
        d->records++;
}

static void on_closed(void *ud)
{
        driver *d = ud;

        d->proxy = NULL;
        uv_close((uv_handle_t *)&d->sigterm, NULL);
        uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
        driver *d = h->data;

        (void)signum;
        if (d->proxy != NULL) {
                nx_proxy_stats_get(d->proxy, &d->stats);
                nx_proxy_close(d->proxy, on_closed, d);
        }
}

int main(int argc, char **argv)
{
        driver d;
        err_t err = ERR_INIT;
        json_error_t jerr;
        json_t *net = NULL;
        const char *listen = NULL, *net_text = NULL;
        char host[64];
        const char *colon;
        char *end = NULL;
        unsigned long port;
        uint16_t bound = 0;
        size_t hl;

        memset(&d, 0, sizeof(d));
        log_set_level(LOG_LEVEL_WARN);
        for (int i = 1; i + 1 < argc; i += 2) {
                if (strcmp(argv[i], "--listen") == 0)
                        listen = argv[i + 1];
                else if (strcmp(argv[i], "--net") == 0)
                        net_text = argv[i + 1];
        }
        if (listen == NULL || net_text == NULL || argc != 5) {
                fprintf(stderr, "usage: bench-proxy-driver --listen IP:PORT --net JSON\n");
                return 2;
        }
        colon = strrchr(listen, ':');
        if (colon == NULL || (hl = (size_t)(colon - listen)) == 0 || hl >= sizeof(host)) {
                fprintf(stderr, "bench-proxy-driver: --listen \"%s\" is not IP:PORT\n", listen);
                return 2;
        }
        memcpy(host, listen, hl);
        host[hl] = '\0';
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno != 0 || *end != '\0' || port > 65535) {
                fprintf(stderr, "bench-proxy-driver: port \"%s\" out of range 0-65535\n",
                        colon + 1);
                return 2;
        }
        net = json_loads(net_text, 0, &jerr);
        if (net == NULL) {
                fprintf(stderr, "bench-proxy-driver: --net: %s\n", jerr.text);
                return 2;
        }
        d.loop = uv_default_loop();
        d.proxy = nx_proxy_new(d.loop, "bench-proxy", net, NULL, on_audit, &d, &err);
        json_decref(net);
        if (d.proxy == NULL) {
                fprintf(stderr, "bench-proxy-driver: %s\n", err.msg);
                return 1;
        }
        if (nx_proxy_listen_tcp(d.proxy, host, (uint16_t)port, &bound, &err) < 0) {
                fprintf(stderr, "bench-proxy-driver: %s\n", err.msg);
                return 1;
        }
        uv_signal_init(d.loop, &d.sigterm);
        uv_signal_init(d.loop, &d.sigint);
        d.sigterm.data = &d;
        d.sigint.data = &d;
        uv_signal_start(&d.sigterm, on_signal, SIGTERM);
        uv_signal_start(&d.sigint, on_signal, SIGINT);
        printf("{\"listening\":\"%s:%u\"}\n", host, (unsigned)bound);
        fflush(stdout);
        uv_run(d.loop, UV_RUN_DEFAULT);
        printf("{\"audit_records\":%" PRIu64 ",\"audit_bytes\":%zu,\"conns\":%" PRIu64
               ",\"allowed\":%" PRIu64 ",\"denied\":%" PRIu64 ",\"rejected\":%" PRIu64
               ",\"bytes_up\":%" PRIu64 ",\"bytes_down\":%" PRIu64 "}\n", d.records,
               d.record_bytes, d.stats.conns, d.stats.allowed, d.stats.denied, d.stats.rejected,
               d.stats.bytes_up, d.stats.bytes_down);
        uv_loop_close(d.loop);
        return 0;
}

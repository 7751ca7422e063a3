/* obs/obs.c — see obs.h. */
#include "obs/obs.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent/daemon.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/str.h"

typedef struct nx_obs {
        struct MHD_Daemon *mhd;
        nx_daemon *d;
} nx_obs;

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *ctype,
                                 const char *text, size_t len)
{
        struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)text,
                                                                 MHD_RESPMEM_MUST_COPY);
        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, "Content-Type", ctype);
        enum MHD_Result ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **req_cls)
{
        nx_obs *o = cls;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return send_text(c, 405, "text/plain", "method not allowed\n", 19);
        if (strcmp(url, "/healthz") == 0)
                return send_text(c, 200, "text/plain", "ok\n", 3);
        if (strcmp(url, "/readyz") == 0) {
                char why[128], body[160];
                bool ok = nx_daemon_ready_cached(o->d, why, sizeof(why));
                int n = str_printf(body, sizeof(body), "%s\n", ok ? "ok" : why);
                return send_text(c, ok ? 200 : 503, "text/plain", body, n > 0 ? (size_t)n : 0);
        }
        if (strcmp(url, "/metrics") == 0) {
                buf out = BUF_INIT(8 << 20);
                err_t err = ERR_INIT;
                enum MHD_Result r;
                if (metrics_render(o->d->metrics, &out, &err) < 0)
                        r = send_text(c, 500, "text/plain", "metrics unavailable\n", 20);
                else
                        r = send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8",
                                      out.data ? out.data : "", out.len);
                buf_free(&out);
                return r;
        }
        return send_text(c, 404, "text/plain", "not found\n", 10);
}

int nx_obs_start(nx_daemon *d, const char *host, uint16_t port, void **out, err_t *err)
{
        nx_obs *o = calloc(1, sizeof(*o));
        if (!o)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        o->d = d;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        socklen_t sl = 0;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
        const char *h = host && *host ? host : "0.0.0.0";
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
                s4->sin_family = AF_INET;
                s4->sin_port = htons(port);
                sl = sizeof(*s4);
        } else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(port);
                sl = sizeof(*s6);
                flags |= MHD_USE_IPv6;
        } else if (strcmp(h, "localhost") == 0) {
                s4->sin_family = AF_INET;
                s4->sin_port = htons(port);
                s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                sl = sizeof(*s4);
        } else {
                free(o);
                return err_set(err, "observability.listen_addr host \"%s\" must be numeric", h);
        }
        (void)sl;
        o->mhd = MHD_start_daemon(flags, port, NULL, NULL, handle, o, MHD_OPTION_SOCK_ADDR,
                                  (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                  MHD_OPTION_END);
        if (!o->mhd) {
                free(o);
                return err_set(err, "observability: cannot listen on %s:%u", h, port);
        }
        log_info("observability server starting", LOG_STR("host", h), LOG_INT("port", port));
        *out = o;
        return 0;
}

void nx_obs_stop(void *obs)
{
        nx_obs *o = obs;
        if (!o)
                return;
        MHD_stop_daemon(o->mhd);
        free(o);
}

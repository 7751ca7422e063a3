/* domain/territory_api.c — enrollment and the territory heartbeat (spec mothership §3.2.1,
 * §3.2.2, §5.1). */
#include "domain/handlers.h"

#include <string.h>

#include "core/cleanup.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "domain/api.h"
#include "domain/auth.h"

static const char *const territory_kinds[] = { "server", "desktop", "mobile", "bridge", NULL };

static bool kind_valid(const char *k)
{
        for (size_t i = 0; territory_kinds[i]; i++)
                if (strcmp(territory_kinds[i], k) == 0)
                        return true;
        return false;
}

typedef struct enroll_ctx {
        const char *token;
        ms_territory_new tn;
        json_t *req_labels;                     /* borrowed, may be NULL */
        char id[MS_ID_SIZE];
        const char *token_error;                /* set when the token was not usable */
} enroll_ctx;

static int enroll_tx(ms_store *s, void *vctx, err_t *err)
{
        enroll_ctx *c = vctx;
        ms_enroll_token tok = { 0 };
        if (ms_enroll_token_consume(s, c->token, MS_NOW, &tok, err) < 0) {
                if (err->code && strcmp(err->code, MS_ERR_BUSY) != 0 &&
                    strcmp(err->code, ERR_SYSTEM) != 0 && strcmp(err->code, ERR_INTERNAL) != 0)
                        c->token_error = err->msg;
                return -1;
        }
        /* labels: the token's, with the request's keys winning (spec §3.2.1) */
        _cleanup_json_ json_t *labels = json_is_object(tok.labels) ? json_deep_copy(tok.labels)
                                                                   : json_object();
        if (!labels || (c->req_labels && json_object_update(labels, c->req_labels) < 0)) {
                ms_enroll_token_clear(&tok);
                return err_setc(err, ERR_INTERNAL, "out of memory");
        }
        c->tn.account_id = tok.account_id;
        c->tn.labels = labels;
        int r = ms_territory_create(s, &c->tn, MS_NOW, c->id, err);
        ms_enroll_token_clear(&tok);
        return r;
}

int ms_h_enroll(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        _cleanup_json_ json_t *body = NULL;
        int st = api_body(req, &body);
        if (st)
                return st;
        enroll_ctx c = { 0 };
        const json_t *tokv = json_object_get(body, "enroll_token");
        c.token = json_is_string(tokv) ? json_string_value(tokv) : "";

        _cleanup_free_ char *name = api_trimmed(json_object_get(body, "name"));
        char gen_name[32];
        if (!name) {
                /* spec §3.2.1: blank ⇒ "nexus-" + 8 random lower-case hex digits */
                char hex[9];
                err_t err = ERR_INIT;
                if (crypto_random_hex(4, hex, sizeof(hex), &err) < 0)
                        return api_store_error(req, &err);
                str_printf(gen_name, sizeof(gen_name), "nexus-%s", hex);
        }
        json_t *kindv = json_object_get(body, "kind");
        if (kindv && !json_is_null(kindv) && !json_is_string(kindv))
                return ms_http_respond_error(req, 422, "invalid_param", "kind must be a string");
        _cleanup_free_ char *kind = api_trimmed(kindv);
        if (kind && !kind_valid(kind))
                return ms_http_respond_error(req, 422, "invalid_param",
                                             "kind must be one of server, desktop, mobile, bridge");
        _cleanup_free_ char *platform = api_trimmed(json_object_get(body, "platform"));
        _cleanup_free_ char *display = api_trimmed(json_object_get(body, "display_name"));
        json_t *labels = json_object_get(body, "labels");
        if (labels && !json_is_null(labels) && !json_is_object(labels))
                return ms_http_respond_error(req, 422, "invalid_param", "labels must be an object");
        json_t *meta = json_object_get(body, "metadata");
        if (meta && !json_is_null(meta) && !json_is_object(meta))
                return ms_http_respond_error(req, 422, "invalid_param", "metadata must be an object");
        json_t *capacity = json_is_object(meta) ? json_object_get(meta, "capacity") : NULL;
        if (capacity && !json_is_object(capacity))
                capacity = NULL;
        if (!api_blank(json_object_get(body, "csr_pem")))
                /* The built-in CA arrives with the TLS issue; refusing is clearer than
                 * enrolling without the certificate the client asked for. */
                return ms_http_respond_error(req, 422, "invalid_param",
                                             "CSR enrollment is not supported by this server yet; "
                                             "enroll without csr_pem");

        c.tn.name = name ? name : gen_name;
        c.tn.kind = kind ? kind : "server";
        c.tn.platform = platform;
        c.tn.display_name = display;
        c.tn.capacity = capacity;
        c.req_labels = json_is_object(labels) ? labels : NULL;

        err_t err = ERR_INIT;
        if (ms_store_tx(app->store, enroll_tx, &c, &err) < 0) {
                if (c.token_error)
                        return ms_http_respond_error(
                                req, 422, "invalid_token",
                                "enrollment token is invalid, expired, or already used");
                return api_store_error(req, &err);
        }
        log_info("territory enrolled", LOG_STR("territory_id", c.id), LOG_STR("name", c.tn.name),
                 LOG_STR("kind", c.tn.kind));
        json_t *cfg = json_pack("{s:i, s:i, s:i, s:i, s:s}",
                                "poll_interval_seconds", MS_POLL_INTERVAL_HINT_S,
                                "heartbeat_interval_seconds", (int)app->cfg.heartbeat_interval_s,
                                "heartbeat_interval_ws_seconds", MS_HEARTBEAT_WS_HINT_S,
                                "lease_ttl_seconds", MS_LEASE_TTL_S,
                                "cable_url", app->cfg.cable_url);
        return ms_http_respond_json(req, 201, json_pack("{s:s, s:s, s:o}", "territory_id", c.id,
                                                        "kind", c.tn.kind, "config", cfg));
}

int ms_h_territory_heartbeat(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_territory t = { 0 };
        int st = ms_auth_territory(app, req, &t);
        if (st)
                return st;
        _cleanup_json_ json_t *body = NULL;
        if ((st = api_body(req, &body))) {
                ms_territory_clear(&t);
                return st;
        }
        static const char *const objects[] = { "capacity", "labels", "runtime_status",
                                               "telemetry", NULL };
        for (size_t i = 0; objects[i]; i++) {
                json_t *o = json_object_get(body, objects[i]);
                if (o && !json_is_null(o) && !json_is_object(o)) {
                        ms_territory_clear(&t);
                        return ms_http_respond_error(req, 422, "invalid_param",
                                                     "%s must be an object", objects[i]);
                }
        }
        json_t *nv = json_object_get(body, "nexus_version");
        if (nv && !json_is_null(nv) && !json_is_string(nv)) {
                ms_territory_clear(&t);
                return ms_http_respond_error(req, 422, "invalid_param",
                                             "nexus_version must be a string");
        }
        ms_territory_heartbeat hb = { 0 };
        _cleanup_free_ char *ver = api_trimmed(json_object_get(body, "nexus_version"));
        hb.nexus_version = ver;
        /* spec §3.2.2: objects replace the stored ones when present (non-blank) */
        json_t *v = json_object_get(body, "capacity");
        if (json_is_object(v) && json_object_size(v))
                hb.capacity = v;
        /* blank values do not replace (spec §3.2.2: "when present", §0.2 blank) */
        v = json_object_get(body, "labels");
        if (json_is_object(v) && json_object_size(v))
                hb.labels = v;
        v = json_object_get(body, "runtime_status");
        if (json_is_object(v) && json_object_size(v))
                hb.runtime_status = v;
        _cleanup_json_ json_t *caps = NULL;
        v = json_object_get(body, "capabilities");
        if (json_is_string(v) && !api_blank(v)) {
                caps = json_pack("[O]", v);   /* a single string is a one-element array */
                hb.capabilities = caps;
        } else if (json_is_array(v) && json_array_size(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e) {
                        if (!json_is_string(e)) {
                                ms_territory_clear(&t);
                                return ms_http_respond_error(req, 422, "invalid_param",
                                                             "capabilities must be strings");
                        }
                }
                hb.capabilities = v;
        }
        err_t err = ERR_INIT;
        ms_territory updated = { 0 };
        if (ms_territory_record_heartbeat(app->store, t.id, &hb, MS_NOW, &updated, &err) < 0) {
                ms_territory_clear(&t);
                return api_store_error(req, &err);
        }
        ms_auth_territory_forget(t.id);   /* capacity and status may have changed */
        bool ws = updated.websocket_connected_at != 0;
        json_t *resp = json_pack("{s:b, s:s, s:i, s:b}", "ok", 1, "territory_id", t.id,
                                 "next_heartbeat_interval_seconds",
                                 ws ? MS_HEARTBEAT_WS_HINT_S : (int)app->cfg.heartbeat_interval_s,
                                 "websocket_connected", ws);
        ms_territory_clear(&updated);
        ms_territory_clear(&t);
        return ms_http_respond_json(req, 200, resp);
}

/* domain/api.c — see api.h. */
#include "domain/api.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/jwt.h"
#include "core/log.h"
#include "core/str.h"

int api_body(ms_http_req *req, json_t **out)
{
        size_t len = 0;
        const char *body = ms_http_req_body(req, &len);
        size_t tlen = 0;
        str_trim(body, len, &tlen);
        if (tlen == 0) {
                *out = json_object();
                return *out ? 0 : ms_http_respond_error(req, 500, "internal_error", "out of memory");
        }
        err_t err = ERR_INIT;
        json_t *j = json_parse(body, len, true, &err);
        if (!j)
                return ms_http_respond_error(req, 400, "bad_request", "%s", err.msg);
        *out = j;
        return 0;
}

json_t *api_param(ms_http_req *req, const json_t *body, const char *name)
{
        json_t *v = body ? json_object_get(body, name) : NULL;
        if (v)
                return json_incref(v);
        const char *q = ms_http_req_query(req, name);
        return q ? json_string(q) : NULL;
}

bool api_blank(const json_t *v)
{
        if (!v || json_is_null(v) || json_is_false(v))
                return true;
        if (json_is_string(v))
                return str_is_blank(json_string_value(v));
        if (json_is_array(v))
                return json_array_size(v) == 0;
        if (json_is_object(v))
                return json_object_size(v) == 0;
        return false;
}

bool api_flag(const json_t *v)
{
        if (json_is_true(v))
                return true;
        return json_is_string(v) && strcmp(json_string_value(v), "true") == 0;
}

int api_strict_int(const json_t *v, int64_t *out)
{
        if (json_is_integer(v)) {
                *out = json_integer_value(v);
                return 0;
        }
        if (json_is_real(v)) {
                double d = json_real_value(v);
                if (!(d > -9.2e18 && d < 9.2e18))
                        return -1;
                *out = (int64_t)d;   /* truncation toward zero (spec §0.2 Quirk) */
                return 0;
        }
        if (json_is_string(v)) {
                const char *s = json_string_value(v);
                if (*s == '+' && *++s == '-')
                        return -1;   /* one optional sign; '-' is handled by str_to_int64 */
                return str_to_int64(s, INT64_MIN, INT64_MAX, out);
        }
        return -1;
}

int64_t api_lenient_int(const json_t *v, int64_t def, bool *present)
{
        if (present)
                *present = false;
        if (!v || json_is_null(v))
                return def;
        if (present)
                *present = true;
        if (json_is_integer(v))
                return json_integer_value(v);
        if (json_is_real(v)) {
                double d = json_real_value(v);
                return (d > -9.2e18 && d < 9.2e18) ? (int64_t)d : 0;
        }
        if (json_is_string(v)) {
                /* the leading decimal integer: "12abc" → 12, "abc" → 0 */
                const char *s = json_string_value(v);
                while (isspace((unsigned char)*s))
                        s++;
                bool neg = false;
                if (*s == '-' || *s == '+')
                        neg = *s++ == '-';
                int64_t n = 0;
                for (; isdigit((unsigned char)*s); s++) {
                        if (n > (INT64_MAX - 9) / 10)
                                break;
                        n = n * 10 + (*s - '0');
                }
                return neg ? -n : n;
        }
        if (json_is_true(v))
                return 1;
        return 0;
}

char *api_trimmed(const json_t *v)
{
        if (!json_is_string(v))
                return NULL;
        size_t n = 0;
        const char *s = str_trim(json_string_value(v), json_string_length(v), &n);
        if (n == 0)
                return NULL;
        return strndup(s, n);
}

int api_store_error(ms_http_req *req, const err_t *err)
{
        const char *code = err->code ? err->code : ERR_INTERNAL;
        if (strcmp(code, ERR_NOT_FOUND) == 0)
                return ms_http_respond_error(req, 404, "not_found", "%s", err->msg);
        if (strcmp(code, ERR_CONFLICT) == 0)
                return ms_http_respond_error(req, 409, "invalid_state", "%s", err->msg);
        if (strcmp(code, ERR_INVALID) == 0)
                return ms_http_respond_error(req, 422, "invalid_param", "%s", err->msg);
        if (strcmp(code, MS_ERR_BUSY) == 0) {
                ms_http_add_header(req, "Retry-After", "1");
                return ms_http_respond_error(req, 503, "busy", "database is busy, retry");
        }
        log_error("request failed", LOG_STR("route", ms_http_req_route(req)->pattern),
                  LOG_ERR(err));
        return ms_http_respond_error(req, 500, "internal_error", "internal error");
}

int api_not_found(ms_http_req *req, const char *what)
{
        return ms_http_respond_error(req, 404, "not_found", "%s not found", what);
}

json_t *api_ts(int64_t ms)
{
        char b[RFC3339_MS_LEN];
        if (ms == 0 || rfc3339_format_ms(ms, b, sizeof(b)) < 0)
                return json_null();
        return json_string(b);
}

json_t *api_ts_s(int64_t ms)
{
        char b[RFC3339_S_LEN];
        if (ms == 0 || rfc3339_format_s(ms / 1000, b, sizeof(b)) < 0)
                return json_null();
        return json_string(b);
}

void api_audit(ms_app *app, const ms_audit_new *ev, int64_t now)
{
        err_t err = ERR_INIT;
        char id[MS_ID_SIZE];
        if (ms_audit_event_insert(app->store, ev, now, id, &err) == 0)
                return;
        if (app->audit_failures)
                metric_inc(app->audit_failures, NULL, 1);
        log_error("audit write failed", LOG_STR("event_type", ev->event_type),
                  LOG_STR("directive_id", ev->directive_id ? ev->directive_id : ""),
                  LOG_ERR(&err));
}

char *api_mint_token(ms_app *app, const char *directive_id, const char *territory_id,
                     int64_t now_ms, err_t *err)
{
        jwt_claims c = { 0 };
        if (str_copy(c.sub, sizeof(c.sub), directive_id) < 0 ||
            str_copy(c.tid, sizeof(c.tid), territory_id) < 0) {
                err_set(err, "directive token: id too long");
                return NULL;
        }
        c.iat = now_ms / 1000;
        c.exp = c.iat + MS_TOKEN_TTL_S;
        return jwt_sign_hs256(app->jwt_key, app->jwt_key_len, &c, err);
}

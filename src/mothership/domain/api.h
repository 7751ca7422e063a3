/* domain/api.h — what every mothership handler shares: request bodies, the spec's input
 * coercions (mothership §0.2), mapping store errors to responses, timestamps, audit writes.
 *
 * Handler convention: a helper that answers the request itself returns the HTTP status it
 * sent (> 0); 0 means "carry on". */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "core/error.h"
#include "http/server.h"
#include "store/store.h"

/* Parses the request body as a JSON object into *out ({} for an empty body). Returns 0, or
 * the status of the 400 it sent ({"error":"bad_request","detail":"invalid JSON ..."}). */
int api_body(ms_http_req *req, json_t **out);

/* A request parameter: the body's value, else the query string's (as a JSON string), else
 * NULL (spec §0.2: body wins over query; path parameters are read separately). Returns a
 * borrowed or new reference — release it with json_decref either way (borrowed ones are
 * increfed). */
json_t *api_param(ms_http_req *req, const json_t *body, const char *name);

/* spec §0.2 "blank": absent, null, false, "", whitespace-only string, [], {}. */
bool api_blank(const json_t *v);
/* spec §0.2 flag coercion: true or the exact string "true". */
bool api_flag(const json_t *v);
/* spec §0.2 strict integer coercion (Recommended variant: strings are optional sign plus
 * decimal digits). JSON reals are truncated toward zero. Returns 0 or -1. */
int api_strict_int(const json_t *v, int64_t *out);
/* spec §0.2 lenient integer coercion; absent/null → *present = false and def. */
int64_t api_lenient_int(const json_t *v, int64_t def, bool *present);
/* A trimmed copy of a string value (NULL for non-strings and blank strings); caller frees. */
char *api_trimmed(const json_t *v);

/* Answers a store failure: ERR_NOT_FOUND 404, ERR_CONFLICT 409, ERR_INVALID 422, busy 503,
 * anything else 500 (logged with the route). Returns the status sent. */
int api_store_error(ms_http_req *req, const err_t *err);
/* The framework-style 404 for a record lookup (spec §0.3). */
int api_not_found(ms_http_req *req, const char *what);

/* Record timestamp (ms precision) as a JSON string, or JSON null for 0. */
json_t *api_ts(int64_t ms);
/* Second-precision timestamp string (spec §0.2), or JSON null for 0. */
json_t *api_ts_s(int64_t ms);

/* Writes an audit event; never fails the caller (spec §10.1, issue: error-isolated). A
 * failure is logged and counted in conduits_audit_write_failures_total. */
void api_audit(ms_app *app, const ms_audit_new *ev, int64_t now);

/* Mints a directive token (sub = directive, tid = territory, TTL MS_TOKEN_TTL_S). NULL with
 * err on failure. */
char *api_mint_token(ms_app *app, const char *directive_id, const char *territory_id,
                     int64_t now_ms, err_t *err);

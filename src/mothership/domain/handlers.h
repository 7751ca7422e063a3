/* domain/handlers.h — every route handler of the mothership (spec §3.0 route table).
 * ctx is the ms_app. Each returns the HTTP status it answered (or MS_HTTP_PARKED). */
#pragma once
#include "app.h"
#include "http/server.h"

/* Nexus-facing, /conduits/v1 (spec §3.2) */
int ms_h_enroll(ms_http_req *req, void *app);
int ms_h_territory_heartbeat(ms_http_req *req, void *app);
int ms_h_polls(ms_http_req *req, void *app);
int ms_h_started(ms_http_req *req, void *app);
int ms_h_directive_heartbeat(ms_http_req *req, void *app);
int ms_h_log_chunks(ms_http_req *req, void *app);
int ms_h_finished(ms_http_req *req, void *app);
/* extension: a fresh directive token for a directive bound to the caller */
int ms_h_directive_token(ms_http_req *req, void *app);

/* User API, /mothership/api/v1 (spec §3.3, plus what the reference lacks) */
int ms_h_facility_create(ms_http_req *req, void *app);
int ms_h_facility_list(ms_http_req *req, void *app);
int ms_h_enrollment_token_create(ms_http_req *req, void *app);
int ms_h_directive_create(ms_http_req *req, void *app);
int ms_h_directive_list(ms_http_req *req, void *app);
int ms_h_directive_show(ms_http_req *req, void *app);
int ms_h_directive_log_chunks(ms_http_req *req, void *app);
int ms_h_directive_log_text(ms_http_req *req, void *app);
int ms_h_directive_egress_events(ms_http_req *req, void *app);
int ms_h_directive_diff(ms_http_req *req, void *app);
int ms_h_directive_approve(ms_http_req *req, void *app);
int ms_h_directive_reject(ms_http_req *req, void *app);
int ms_h_directive_cancel(ms_http_req *req, void *app);

/* Policies (spec §3.3.1, issue 4) and the audit query (issue 4; the reference has none) */
int ms_h_policy_list(ms_http_req *req, void *app);
int ms_h_policy_show(ms_http_req *req, void *app);
int ms_h_policy_create(ms_http_req *req, void *app);
int ms_h_policy_update(ms_http_req *req, void *app);
int ms_h_policy_delete(ms_http_req *req, void *app);
int ms_h_audit_list(ms_http_req *req, void *app);

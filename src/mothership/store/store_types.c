/* store/store_types.c — backend-neutral names of the store's enumerations and the §2 state
 * machine tables. */
#include "store/store.h"

#include <string.h>

static const char *const directive_state_names[MS_DIRECTIVE_STATE_COUNT] = {
        [MS_DIRECTIVE_QUEUED] = "queued",
        [MS_DIRECTIVE_AWAITING_APPROVAL] = "awaiting_approval",
        [MS_DIRECTIVE_LEASED] = "leased",
        [MS_DIRECTIVE_RUNNING] = "running",
        [MS_DIRECTIVE_SUCCEEDED] = "succeeded",
        [MS_DIRECTIVE_FAILED] = "failed",
        [MS_DIRECTIVE_CANCELED] = "canceled",
        [MS_DIRECTIVE_TIMED_OUT] = "timed_out",
};

const char *ms_directive_state_name(ms_directive_state st)
{
        if ((unsigned)st >= MS_DIRECTIVE_STATE_COUNT)
                return NULL;
        return directive_state_names[st];
}

int ms_directive_state_parse(const char *name, ms_directive_state *out)
{
        for (int i = 0; name && i < MS_DIRECTIVE_STATE_COUNT; i++) {
                if (strcmp(name, directive_state_names[i]) == 0) {
                        *out = (ms_directive_state)i;
                        return 0;
                }
        }
        return -1;
}

bool ms_directive_state_is_terminal(ms_directive_state st)
{
        return st == MS_DIRECTIVE_SUCCEEDED || st == MS_DIRECTIVE_FAILED ||
               st == MS_DIRECTIVE_CANCELED || st == MS_DIRECTIVE_TIMED_OUT;
}

bool ms_directive_transition_allowed(ms_directive_state from, ms_directive_state to)
{
        /* spec §2.1 event table */
        switch (from) {
        case MS_DIRECTIVE_QUEUED:
                return to == MS_DIRECTIVE_LEASED || to == MS_DIRECTIVE_CANCELED;
        case MS_DIRECTIVE_AWAITING_APPROVAL:
                return to == MS_DIRECTIVE_QUEUED || to == MS_DIRECTIVE_CANCELED;
        case MS_DIRECTIVE_LEASED:
                return to == MS_DIRECTIVE_RUNNING || to == MS_DIRECTIVE_CANCELED ||
                       to == MS_DIRECTIVE_QUEUED;
        case MS_DIRECTIVE_RUNNING:
                return to == MS_DIRECTIVE_SUCCEEDED || to == MS_DIRECTIVE_FAILED ||
                       to == MS_DIRECTIVE_TIMED_OUT || to == MS_DIRECTIVE_CANCELED;
        case MS_DIRECTIVE_SUCCEEDED:
        case MS_DIRECTIVE_FAILED:
        case MS_DIRECTIVE_CANCELED:
        case MS_DIRECTIVE_TIMED_OUT:
        case MS_DIRECTIVE_STATE_COUNT:
        default:
                return false;
        }
}

static const char *const territory_status_names[MS_TERRITORY_STATUS_COUNT] = {
        [MS_TERRITORY_PENDING] = "pending",
        [MS_TERRITORY_ONLINE] = "online",
        [MS_TERRITORY_OFFLINE] = "offline",
        [MS_TERRITORY_DECOMMISSIONED] = "decommissioned",
};

const char *ms_territory_status_name(ms_territory_status st)
{
        if ((unsigned)st >= MS_TERRITORY_STATUS_COUNT)
                return NULL;
        return territory_status_names[st];
}

int ms_territory_status_parse(const char *name, ms_territory_status *out)
{
        for (int i = 0; name && i < MS_TERRITORY_STATUS_COUNT; i++) {
                if (strcmp(name, territory_status_names[i]) == 0) {
                        *out = (ms_territory_status)i;
                        return 0;
                }
        }
        return -1;
}

bool ms_territory_transition_allowed(ms_territory_status from, ms_territory_status to)
{
        /* spec §2.2: activate, go_online, go_offline, decommission */
        switch (to) {
        case MS_TERRITORY_ONLINE:
                return from == MS_TERRITORY_PENDING || from == MS_TERRITORY_OFFLINE;
        case MS_TERRITORY_OFFLINE:
                return from == MS_TERRITORY_ONLINE;
        case MS_TERRITORY_DECOMMISSIONED:
                return from == MS_TERRITORY_PENDING || from == MS_TERRITORY_ONLINE ||
                       from == MS_TERRITORY_OFFLINE;
        case MS_TERRITORY_PENDING:
        case MS_TERRITORY_STATUS_COUNT:
        default:
                return false;
        }
}

const char *ms_log_stream_name(ms_log_stream st)
{
        switch (st) {
        case MS_STREAM_STDOUT:
                return "stdout";
        case MS_STREAM_STDERR:
                return "stderr";
        case MS_STREAM_EGRESS:
                return "egress";
        case MS_STREAM_BOTH:
        default:
                return NULL;
        }
}

int ms_log_stream_parse(const char *name, ms_log_stream *out)
{
        if (name && strcmp(name, "stdout") == 0)
                *out = MS_STREAM_STDOUT;
        else if (name && strcmp(name, "stderr") == 0)
                *out = MS_STREAM_STDERR;
        else if (name && strcmp(name, "egress") == 0)
                *out = MS_STREAM_EGRESS;
        else
                return -1;
        return 0;
}

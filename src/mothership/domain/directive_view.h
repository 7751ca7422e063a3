/* domain/directive_view.h — how a directive is shown: the spec inside a lease (spec
 * mothership §7.5), the user-API representation (§3.3.3), and its derived limits (§1.5). */
#pragma once
#include <jansson.h>
#include <stdint.h>

#include "store/store.h"

/* §1.5: limits.max_output_bytes (lenient) if > 0, else 2 000 000. */
int64_t ms_directive_max_output(const ms_directive *d);
/* §1.5: limits.max_diff_bytes (lenient) if > 0, else 1 048 576. */
int64_t ms_directive_max_diff(const ms_directive *d);
/* §7.5; NULL on ENOMEM. */
json_t *ms_directive_lease_spec(const ms_directive *d, const ms_facility *f);
/* §3.3.3 keys, plus the fields a user needs to follow a run (additive). */
json_t *ms_directive_to_json(const ms_directive *d);

/* agent/version.h — comparing nexusd versions the way the control plane's hints expect
 * (spec nexus §4.9): everything from the first '-' is dropped, at most three '.'-separated
 * parts (the third keeps any further dots), each a decimal integer or 0 when it is not one,
 * missing parts 0, compared part by part. So "1.2.3-rc1" == "1.2.3", "v1.2.3" is 0.2.3 and
 * "1.2.3.4" is 1.2.0. */
#pragma once

/* -1, 0 or 1 as a <, =, > b. NULL counts as "". */
int nx_version_compare(const char *a, const char *b);

/* tests/unit/testutil.h — shared helpers for the cmocka unit tests. */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

/* cmocka's TAP output drops the reason of a skip; print it first so tests/run_tests.py can
 * report it. A skip is never counted as a pass. */
#define SKIP_BECAUSE(...) do { \
        printf("# SKIP-REASON %s: ", __func__); \
        printf(__VA_ARGS__); \
        printf("\n"); \
        fflush(stdout); \
        skip(); \
} while (0)

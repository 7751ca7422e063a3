/* tests/fuzz/fuzz_cmdcheck.c — libFuzzer target for the CommandValidator (spec mothership §6.8,
 * src/mothership/policy/cmdcheck.c): command text from a user, matched by hand-written
 * linear scanners.
 *
 * Beyond "no crash" (and libFuzzer's -timeout catching any super-linear blow-up), it traps when
 * a property breaks:
 *  - the verdict agrees with the violations: safe ⇔ none; otherwise at least one, and forbidden
 *    reasons only with a forbidden verdict;
 *  - surrounding whitespace changes nothing (the command is trimmed first);
 *  - the untrusted profile is always safe with no violations;
 *  - the result is deterministic, and a NULL violations array gives the same verdict. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define FUZZ_MAX 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
        if (!cond)
                __builtin_trap();
}

static const char *const forbidden_reasons[] = {
        "recursive rm at filesystem root", "forced rm at filesystem root",
        "filesystem format command", "direct device write via dd",
        "privilege escalation via sudo", "privilege escalation via su",
        "setuid/setgid modification", "ownership change to root", "fork bomb",
        "curl-pipe-shell execution", "wget-pipe-shell execution", "empty command",
};

static int is_forbidden_reason(const char *r)
{
        for (size_t i = 0; i < sizeof(forbidden_reasons) / sizeof(*forbidden_reasons); i++)
                if (strcmp(r, forbidden_reasons[i]) == 0)
                        return 1;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX)
                return 0;
        char *cmd = malloc(size + 1);
        char *padded = malloc(size + 5);
        if (!cmd || !padded) {
                free(cmd);
                free(padded);
                return 0;
        }
        memcpy(cmd, data, size);
        cmd[size] = '\0';       /* an embedded NUL ends the command, as in a C string */
        size_t n = strlen(cmd);

        json_t *v = json_array();
        mspol_cmd_verdict verdict = mspol_cmd_validate("host", cmd, v);
        size_t nv = json_array_size(v);
        check(verdict == MSPOL_CMD_SAFE || verdict == MSPOL_CMD_NEEDS_APPROVAL ||
              verdict == MSPOL_CMD_FORBIDDEN);
        check((verdict == MSPOL_CMD_SAFE) == (nv == 0));
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
                check(is_forbidden_reason(json_string_value(e)) ==
                      (verdict == MSPOL_CMD_FORBIDDEN));

        check(mspol_cmd_validate("host", cmd, NULL) == verdict);

        padded[0] = ' ';
        padded[1] = '\t';
        memcpy(padded + 2, cmd, n);
        padded[n + 2] = '\n';
        padded[n + 3] = ' ';
        padded[n + 4] = '\0';
        json_t *v2 = json_array();
        check(mspol_cmd_validate("trusted", padded, v2) == verdict);
        check(json_equal(v, v2));

        json_t *v3 = json_array();
        check(mspol_cmd_validate("untrusted", cmd, v3) == MSPOL_CMD_SAFE);
        check(json_array_size(v3) == 0);

        json_decref(v);
        json_decref(v2);
        json_decref(v3);
        free(cmd);
        free(padded);
        return 0;
}

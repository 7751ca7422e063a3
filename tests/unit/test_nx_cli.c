/* tests/unit/test_nx_cli.c — nexusd command line: subcommands, the reference's single-dash
 * flags (spec nexus §1.2), precedence, help and usage errors. */
#include "testutil.h"
#include "cli.h"

#include <string.h>

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char msg[256];

static int parse(int argc, const char **argv, nx_cli *c)
{
        /* nx_cli_parse takes char ** like main's argv; it never writes to the strings */
        return nx_cli_parse(argc, (char **)(void *)argv, c, msg, sizeof(msg));
}

#define assert_contains(hay, needle) do { \
        if (!strstr((hay), (needle))) \
                fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle)); \
} while (0)

static void expect_usage(int argc, const char **argv, const char *text)
{
        nx_cli c;
        assert_int_equal(parse(argc, argv, &c), NX_CLI_USAGE);
        assert_contains(msg, text);
        assert_null(strchr(msg, '\n'));
}

/* ---- subcommands ---------------------------------------------------------------------------- */

static void test_no_arguments_runs_with_default_config(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_RUN);
        assert_string_equal(c.config_path, "/etc/nexusd/config.yaml");
        assert_false(c.config_given);
        assert_string_equal(c.token, "");
        assert_true(c.with_csr);
        assert_null(c.warning);
}

static void test_run_with_short_config(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "run", "-c", "/tmp/n.yaml" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_RUN);
        assert_string_equal(c.config_path, "/tmp/n.yaml");
        assert_true(c.config_given);
}

static void test_enroll_with_token_and_name(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "enroll", "-c", "f.yaml", "--token", "tok123",
                               "--name", "node-9" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_ENROLL);
        assert_string_equal(c.config_path, "f.yaml");
        assert_string_equal(c.token, "tok123");
        assert_string_equal(c.name, "node-9");
}

static void test_enroll_token_with_equals(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "enroll", "--token=a=b" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_string_equal(c.token, "a=b");
        assert_string_equal(c.name, "");
}

/* spec nexus §12 #212 */
static void test_enroll_without_token_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "enroll", "-c", "f.yaml" };
        expect_usage(ARGC(argv), argv, "enroll requires --token");
}

/* spec nexus §12 #212 */
static void test_enroll_with_empty_token_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "enroll", "--token", "" };
        expect_usage(ARGC(argv), argv, "enroll requires --token");
}

static void test_doctor_command(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "doctor", "--config", "d.yaml" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_DOCTOR);
        assert_string_equal(c.config_path, "d.yaml");
}

static void test_version_command(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "version" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_VERSION);
}

static void test_rootfs_prepare_command(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "rootfs", "prepare", "-c", "r.yaml" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_ROOTFS_PREPARE);
        assert_string_equal(c.config_path, "r.yaml");
        assert_string_equal(nx_cli_mode_name(c.mode), "rootfs prepare");
}

static void test_flags_before_command(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-c", "x.yaml", "doctor" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_DOCTOR);
        assert_string_equal(c.config_path, "x.yaml");
}

static void test_rootfs_without_subcommand_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "rootfs" };
        expect_usage(ARGC(argv), argv, "rootfs prepare");
}

static void test_rootfs_unknown_subcommand_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "rootfs", "fetch" };
        expect_usage(ARGC(argv), argv, "unknown rootfs subcommand \"fetch\"");
}

static void test_unknown_command_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "serve" };
        expect_usage(ARGC(argv), argv, "unknown command \"serve\"");
}

static void test_extra_positional_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "run", "now" };
        expect_usage(ARGC(argv), argv, "unexpected argument \"now\"");
}

static void test_too_many_positionals_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "rootfs", "prepare", "a", "b" };
        expect_usage(ARGC(argv), argv, "unexpected argument");
}

/* ---- the reference's flags (spec §1.2) ------------------------------------------------------ */

static void test_single_dash_config(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-config", "a.yaml" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_RUN);
        assert_string_equal(c.config_path, "a.yaml");
}

static void test_double_dash_config(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "--config", "b.yaml" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_string_equal(c.config_path, "b.yaml");
}

static void test_config_equals_form(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-config=c.yaml" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_string_equal(c.config_path, "c.yaml");
}

static void test_repeated_config_last_wins(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-config", "one.yaml", "--config=two.yaml" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_string_equal(c.config_path, "two.yaml");
}

static void test_version_flag(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-version" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_VERSION);
}

static void test_doctor_flag(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-doctor", "-config", "d.yaml" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_DOCTOR);
        assert_string_equal(c.config_path, "d.yaml");
}

static void test_enroll_token_flag_selects_enroll(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-config", "e.yaml", "-enroll-token", "T1",
                               "-enroll-name", "n1" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_ENROLL);
        assert_string_equal(c.token, "T1");
        assert_string_equal(c.name, "n1");
}

static void test_empty_enroll_token_flag_runs(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-enroll-token=" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_RUN);
}

static void test_precedence_version_over_doctor_over_enroll(void **state)
{
        (void)state;
        const char *a1[] = { "nexusd", "-enroll-token", "T", "-doctor", "-version" };
        const char *a2[] = { "nexusd", "-enroll-token", "T", "-doctor" };
        nx_cli c;
        assert_int_equal(parse(ARGC(a1), a1, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_VERSION);
        assert_int_equal(parse(ARGC(a2), a2, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_DOCTOR);
}

static void test_bool_flag_false_form(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-version=false", "-doctor=1" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_DOCTOR);
}

static void test_bool_flag_bad_value_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-version=maybe" };
        expect_usage(ARGC(argv), argv, "invalid boolean value \"maybe\" for -version");
}

static void test_enroll_with_csr_false_accepted_with_warning(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-enroll-token", "T", "-enroll-with-csr=false" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_ENROLL);
        assert_false(c.with_csr);
        assert_non_null(c.warning);
        assert_contains(c.warning, "-enroll-with-csr=false is ignored");
}

static void test_enroll_with_csr_true_has_no_warning(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-enroll-with-csr" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_true(c.with_csr);
        assert_null(c.warning);
}

static void test_enroll_out_dir_accepted(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-enroll-out-dir", "./creds", "-enroll-token", "T" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_string_equal(c.out_dir, "./creds");
}

/* ---- help and errors ------------------------------------------------------------------------- */

static void test_help_forms_return_help(void **state)
{
        (void)state;
        static const char *const forms[] = { "-h", "--h", "-help", "--help" };
        for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
                const char *argv[] = { "nexusd", "run", forms[i] };
                nx_cli c;
                assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_HELP);
        }
}

static void test_usage_text_mentions_every_mode(void **state)
{
        (void)state;
        const char *u = nx_cli_usage();
        assert_contains(u, "nexusd run");
        assert_contains(u, "nexusd enroll");
        assert_contains(u, "nexusd doctor");
        assert_contains(u, "nexusd version");
        assert_contains(u, "nexusd rootfs prepare");
        assert_contains(u, "-enroll-token");
}

static void test_unknown_flag_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-verbose" };
        expect_usage(ARGC(argv), argv, "unknown flag: -verbose");
}

static void test_unknown_flag_with_value_names_only_flag(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "--colour=never" };
        expect_usage(ARGC(argv), argv, "unknown flag: -colour");
}

static void test_missing_flag_value_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "run", "-c" };
        expect_usage(ARGC(argv), argv, "flag needs an argument: -c");
}

static void test_empty_config_path_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-config=" };
        expect_usage(ARGC(argv), argv, "empty path");
}

static void test_triple_dash_is_bad_syntax(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "---config", "x" };
        expect_usage(ARGC(argv), argv, "bad flag syntax");
}

static void test_command_conflicting_with_version_flag(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "run", "-version" };
        expect_usage(ARGC(argv), argv, "-version cannot be combined with the run command");
}

static void test_token_outside_enroll_command_is_usage_error(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "doctor", "--token", "T" };
        expect_usage(ARGC(argv), argv, "--token is only valid with the enroll command");
}

static void test_double_dash_ends_flags(void **state)
{
        (void)state;
        const char *argv[] = { "nexusd", "-c", "a.yaml", "--", "run" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_int_equal(c.mode, NX_MODE_RUN);
        const char *bad[] = { "nexusd", "--", "-version" };
        expect_usage(ARGC(bad), bad, "unknown command \"-version\"");
}

static void test_config_value_may_start_with_dash(void **state)
{
        (void)state;
        /* as Go's flag package: a string flag takes the next argument whatever it is */
        const char *argv[] = { "nexusd", "-config", "-weird.yaml" };
        nx_cli c;
        assert_int_equal(parse(ARGC(argv), argv, &c), NX_CLI_OK);
        assert_string_equal(c.config_path, "-weird.yaml");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_arguments_runs_with_default_config),
                cmocka_unit_test(test_run_with_short_config),
                cmocka_unit_test(test_enroll_with_token_and_name),
                cmocka_unit_test(test_enroll_token_with_equals),
                cmocka_unit_test(test_enroll_without_token_is_usage_error),
                cmocka_unit_test(test_enroll_with_empty_token_is_usage_error),
                cmocka_unit_test(test_doctor_command),
                cmocka_unit_test(test_version_command),
                cmocka_unit_test(test_rootfs_prepare_command),
                cmocka_unit_test(test_flags_before_command),
                cmocka_unit_test(test_rootfs_without_subcommand_is_usage_error),
                cmocka_unit_test(test_rootfs_unknown_subcommand_is_usage_error),
                cmocka_unit_test(test_unknown_command_is_usage_error),
                cmocka_unit_test(test_extra_positional_is_usage_error),
                cmocka_unit_test(test_too_many_positionals_is_usage_error),
                cmocka_unit_test(test_single_dash_config),
                cmocka_unit_test(test_double_dash_config),
                cmocka_unit_test(test_config_equals_form),
                cmocka_unit_test(test_repeated_config_last_wins),
                cmocka_unit_test(test_version_flag),
                cmocka_unit_test(test_doctor_flag),
                cmocka_unit_test(test_enroll_token_flag_selects_enroll),
                cmocka_unit_test(test_empty_enroll_token_flag_runs),
                cmocka_unit_test(test_precedence_version_over_doctor_over_enroll),
                cmocka_unit_test(test_bool_flag_false_form),
                cmocka_unit_test(test_bool_flag_bad_value_is_usage_error),
                cmocka_unit_test(test_enroll_with_csr_false_accepted_with_warning),
                cmocka_unit_test(test_enroll_with_csr_true_has_no_warning),
                cmocka_unit_test(test_enroll_out_dir_accepted),
                cmocka_unit_test(test_help_forms_return_help),
                cmocka_unit_test(test_usage_text_mentions_every_mode),
                cmocka_unit_test(test_unknown_flag_is_usage_error),
                cmocka_unit_test(test_unknown_flag_with_value_names_only_flag),
                cmocka_unit_test(test_missing_flag_value_is_usage_error),
                cmocka_unit_test(test_empty_config_path_is_usage_error),
                cmocka_unit_test(test_triple_dash_is_bad_syntax),
                cmocka_unit_test(test_command_conflicting_with_version_flag),
                cmocka_unit_test(test_token_outside_enroll_command_is_usage_error),
                cmocka_unit_test(test_double_dash_ends_flags),
                cmocka_unit_test(test_config_value_may_start_with_dash),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

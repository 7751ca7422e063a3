/* nexusd — the node daemon: `run`, `enroll`, `doctor`, `version` (spec nexus §1). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "build_info.h"
#include "cli.h"
#include "client/http.h"
#include "config.h"
#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "sandbox/cgroup.h"
#include "sandbox/bwrap.h"
#include "sandbox/landlock.h"
#include "sandbox/rootfs.h"
#include "sandbox/seccomp.h"
#include "sandbox_exec.h"

static nx_http_cfg http_cfg(const nx_config *c, const char *territory_id)
{
        return (nx_http_cfg){ .base_url = c->server_url, .territory_id = territory_id,
                              .ca_file = c->tls.ca_file, .client_cert = c->tls.client_cert_file,
                              .client_key = c->tls.client_key_file,
                              .insecure_skip_verify = c->tls.insecure_skip_verify,
                              .default_timeout_ms = 15000, .max_response_bytes = 4 << 20 };
}

/* Writes the credentials file atomically (0600 in a 0700 directory). */
static int write_credentials(const char *path, const char *territory_id, const char *server,
                             err_t *err)
{
        char dir[4096];
        str_copy(dir, sizeof(dir), path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        return err_errno(err, errno, "create %s", dir);
        }
        char tmp[4200], ts[RFC3339_MS_LEN];
        str_printf(tmp, sizeof(tmp), "%s.tmp", path);
        rfc3339_format_ms(clock_now_ms(), ts, sizeof(ts));
        _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s}", "territory_id", territory_id,
                                             "server_url", server, "enrolled_at", ts);
        _cleanup_free_ char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        if (!text)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                                      0600);
        if (fd < 0)
                return err_errno(err, errno, "create %s", tmp);
        size_t n = strlen(text);
        if (write(fd, text, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) < 0)
                return err_errno(err, errno, "write %s", tmp);
        if (rename(tmp, path) < 0)
                return err_errno(err, errno, "rename %s", path);
        return 0;
}

static int cmd_enroll(const nx_cli *cli, nx_config *cfg)
{
        err_t err = ERR_INIT;
        const char *name = cli->name && *cli->name ? cli->name : cfg->name;
        json_t *labels = json_object();
        for (unsigned i = 0; i < cfg->labels_count; i++)
                json_object_set_new(labels, cfg->labels[i].key, json_string(cfg->labels[i].value));
        _cleanup_json_ json_t *body = json_pack(
                "{s:s, s:s, s:s, s:s, s:o, s:{s:{s:i}}}", "enroll_token", cli->token, "name", name,
                "kind", "server", "platform", "linux", "labels", labels, "metadata", "capacity",
                "max_concurrent", (int)cfg->poll.max_directives_to_claim);
        fprintf(stderr, "nexusd: enrolling \"%s\" with %s ...\n", name, cfg->server_url);
        nx_http_cfg hc = http_cfg(cfg, NULL);
        nx_http_result res = { 0 };
        if (nx_http_post_sync(&hc, "/conduits/v1/territories/enroll", body, NULL, 30000, &res,
                              &err) < 0 || res.status != 201 || !res.body) {
                log_error("enroll failed", LOG_STR("error", err_is_set(&err) ? err.msg : res.error));
                fprintf(stderr, "nexusd: enroll failed: %s\n", err_is_set(&err) ? err.msg : res.error);
                nx_http_result_clear(&res);
                return 1;
        }
        const char *tid = json_string_value(json_object_get(res.body, "territory_id"));
        if (!tid || write_credentials(cfg->credentials_file, tid, cfg->server_url, &err) < 0) {
                fprintf(stderr, "nexusd: enroll failed: %s\n",
                        tid ? err.msg : "the server answered without a territory_id");
                nx_http_result_clear(&res);
                return 1;
        }
        _cleanup_free_ char *out = json_dumps(res.body, JSON_COMPACT);
        printf("%s\n", out ? out : "{}");
        fprintf(stderr, "nexusd: enrolled as %s; credentials in %s\n", tid, cfg->credentials_file);
        nx_http_result_clear(&res);
        return 0;
}

/* ---------------------------------------------------------------- rootfs (issue #6) -- */

/* `nexusd rootfs prepare|verify`: --dir wins; else bwrap.rootfs_path of the config. The config
 * is read only when --dir is absent or -c was given, so a rootfs can be prepared before any
 * config exists. */
static int cmd_rootfs(const nx_cli *cli)
{
        err_t err = ERR_INIT;
        nx_config cfg = { 0 };
        bool have_cfg = false;
        if (!*cli->rootfs_dir || cli->config_given) {
                if (nx_config_load(cli->config_path, &cfg, &err) < 0) {
                        fprintf(stderr, "nexusd: %s\n", err.msg);
                        return 1;
                }
                have_cfg = true;
        }
        const char *dir = *cli->rootfs_dir ? cli->rootfs_dir
                          : have_cfg ? cfg.bwrap.rootfs_path : "";
        int rc = 0;
        if (!*dir) {
                fprintf(stderr, "nexusd: rootfs: no directory: pass --dir DIR or set "
                                "bwrap.rootfs_path in %s\n", cli->config_path);
                rc = 2;
        } else if (cli->mode == NX_MODE_ROOTFS_VERIFY) {
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                if (nx_rootfs_verify(dir, NULL, NX_ROOTFS_FULL, &err) < 0) {
                        fprintf(stderr, "nexusd: rootfs verify failed: %s\n", err.msg);
                        rc = 1;
                } else {
                        clock_gettime(CLOCK_MONOTONIC, &t1);
                        printf("rootfs ok: %s (full verify, %.2fs)\n", dir,
                               (double)(t1.tv_sec - t0.tv_sec) +
                               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
                }
        } else {
                nx_rootfs_opts o = { .kind = NX_ROOTFS_DEBIAN, .dir = dir,
                                     .suite = cli->rootfs_suite, .mirror = cli->rootfs_mirror };
                if (*cli->rootfs_kind && nx_rootfs_kind_parse(cli->rootfs_kind, &o.kind, &err) < 0) {
                        fprintf(stderr, "nexusd: %s\n", err.msg);
                        rc = 2;
                } else if (nx_rootfs_prepare(&o, &err) < 0) {
                        fprintf(stderr, "nexusd: %s\n", err.msg);
                        rc = 1;
                }
        }
        nx_config_free(&cfg);
        return rc;
}

/* Daemon start (fail closed): a configured rootfs must have a manifest and verify FULL. */
static int check_rootfs_at_start(const nx_config *cfg, err_t *err)
{
        char dir[NX_ROOTFS_PATH_MAX];
        if (nx_rootfs_from_config(cfg, dir, sizeof(dir), err) < 0)
                return -1;
        if (!*dir)
                return 0;
        if (nx_rootfs_verify(dir, NULL, NX_ROOTFS_FULL, err) < 0)
                return err_wrap(err, "bwrap.rootfs_path refused");
        log_info("rootfs verified", LOG_STR("path", dir));
        return 0;
}

/* ---------------------------------------------------------------- doctor (§10) ------ */

typedef enum { CK_OK, CK_SKIP, CK_WARN, CK_FAIL } ck_state;

static int doctor_fails;

static void check(ck_state st, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void check(ck_state st, const char *name, const char *fmt, ...)
{
        static const char *const icon[] = { "\u2713", "\u2500", "\u26a0", "\u2717" };
        char detail[512];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(detail, sizeof(detail), fmt, ap);
        (void)n;
        va_end(ap);
        printf("  %s %-25s %s\n", icon[st], name, detail);
        if (st == CK_FAIL)
                doctor_fails++;
}

/* Issue #6 item 5: what the untrusted profile needs. A missing piece is ✗ when the config
 * enables `untrusted` (the daemon would refuse it), ⚠ otherwise. */
static void doctor_untrusted(const nx_config *cfg, const nx_cgroup_caps *caps)
{
        bool need = cfg && nx_config_profile_enabled(cfg, "untrusted");
        ck_state missing = need ? CK_FAIL : CK_WARN;
        err_t err = ERR_INIT;
        char bwrap[NX_ROOTFS_PATH_MAX], helper[NX_ROOTFS_PATH_MAX];
        bool have_bwrap = nx_bwrap_find(cfg ? cfg->bwrap.bwrap_path : "", bwrap, sizeof(bwrap),
                                        &err) == 0;
        if (have_bwrap)
                check(CK_OK, "bwrap", "%s", bwrap);
        else
                check(missing, "bwrap", "%s (apt install bubblewrap)", err.msg);
        err_clear(&err);
        bool have_helper = nx_bwrap_find_helper(cfg ? cfg->bwrap.sandbox_helper_path : "",
                                                helper, sizeof(helper), &err) == 0;
        if (have_helper)
                check(CK_OK, "nexus-sandbox", "%s", helper);
        else
                check(missing, "nexus-sandbox", "%s", err.msg);
        err_clear(&err);
        if (nx_seccomp_probe(&err) == 0)
                check(CK_OK, "seccomp", "filter builds and loads (new user namespace denied)");
        else
                check(missing, "seccomp", "%s", err.msg);
        int abi = nx_landlock_abi();
        if (abi > 0)
                check(CK_OK, "landlock", "ABI %d%s", abi,
                      abi >= 4 ? " (filesystem + TCP connect rules)" : " (filesystem rules only)");
        else
                check(CK_WARN, "landlock", "unavailable: the sandbox runs without Landlock "
                      "(bwrap, seccomp and cgroups still apply)");
        /* pids is always applied to untrusted (fork bombs); memory/cpu only when a directive
         * asks, and such a directive is then refused (fail closed). */
        check(caps->pids ? CK_OK : missing, "cgroup pids limit",
              caps->pids ? "enforceable" : "no pids controller: untrusted directives refused");
        /* Joining the directive's cgroup before exec takes cgroup_threadgroup_rwsem for
         * writing, which waits for an RCU grace period unless the cgroup2 mount has
         * favordynmods (docs/operations.md "Rootfs and doctor (issue 6)"). A host setting:
         * nexusd never remounts anything itself. */
        nx_cgroup_mounts mnts;
        err_t merr = ERR_INIT;
        if (nx_cgroup_detect(NULL, &mnts, &merr) == 0 && mnts.v2[0]) {
                if (mnts.v2_favordynmods)
                        check(CK_OK, "cgroup2 favordynmods", "%s: on (cheap joins)", mnts.v2);
                else
                        check(CK_WARN, "cgroup2 favordynmods", "off on %s: every directive "
                              "start waits an RCU grace period (~5-10 ms measured); fix: "
                              "mount -o remount,favordynmods %s", mnts.v2, mnts.v2);
        }
        bool mc = caps->memory && caps->cpu;
        check(mc ? CK_OK : CK_WARN, "cgroup memory/cpu", "memory=%s%s cpu=%s%s",
              caps->memory ? "yes" : "no", caps->memory_swap ? "(+swap)" : "",
              caps->cpu ? "yes" : "no", mc ? "" : " (directives asking for it are refused)");

        char rootfs[NX_ROOTFS_PATH_MAX] = "";
        if (!cfg) {
                check(CK_SKIP, "rootfs", "no config loaded");
        } else if (nx_rootfs_from_config(cfg, rootfs, sizeof(rootfs), &err) < 0) {
                check(missing, "rootfs", "%s", err.msg);
                rootfs[0] = '\0';
        } else if (!*rootfs) {
                check(CK_SKIP, "rootfs", "host directories with a generated /etc "
                      "(bwrap.rootfs_path not set)");
        } else {
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                if (nx_rootfs_verify(rootfs, NULL, NX_ROOTFS_FULL, &err) == 0) {
                        clock_gettime(CLOCK_MONOTONIC, &t1);
                        check(CK_OK, "rootfs", "%s verified (full, %.1fs)", rootfs,
                              (double)(t1.tv_sec - t0.tv_sec) +
                              (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
                } else {
                        check(missing, "rootfs", "%s", err.msg);
                        rootfs[0] = '\0';   /* probe below in host-directory mode */
                }
        }
        err_clear(&err);
        if (!have_bwrap || !have_helper) {
                check(CK_SKIP, "bwrap_functional", "bwrap or nexus-sandbox missing");
                return;
        }
        /* §6.2 Health with our stack (--unshare-all --disable-userns, seccomp, nexus-sandbox);
         * as the configured sandbox uid when we are root, as the daemon would run it. */
        bool drop = geteuid() == 0;
        uid_t uid = cfg ? (uid_t)cfg->bwrap.sandbox_uid : 65100;
        _cleanup_json_ json_t *h = nx_bwrap_health(bwrap, helper, rootfs, drop, uid, uid);
        json_t *details = h ? json_object_get(h, "details") : NULL;
        if (h && json_is_true(json_object_get(h, "healthy")))
                check(CK_OK, "bwrap_functional", "sandbox invocation succeeded%s",
                      *rootfs ? " (rootfs mode)" : "");
        else {
                const char *e = details ? json_string_value(json_object_get(details, "error"))
                                        : "out of memory";
                check(missing, "bwrap_functional", "%.200s", e ? e : "?");
        }
}

static int cmd_doctor(const nx_cli *cli)
{
        printf("nexusd doctor\n");
        for (int i = 0; i < 50; i++)
                fputs("\u2500", stdout);
        printf("\n");
        nx_config cfg = { 0 };
        err_t err = ERR_INIT;
        bool have_cfg = nx_config_load(cli->config_path, &cfg, &err) == 0;
        if (have_cfg)
                check(CK_OK, "config", "%s", cli->config_path);
        else
                check(CK_FAIL, "config", "%s", err.msg);
        if (have_cfg) {
                if (access(cfg.work_dir, W_OK) == 0)
                        check(CK_OK, "work_dir", "%s writable", cfg.work_dir);
                else
                        check(CK_FAIL, "work_dir", "%s not writable: %s", cfg.work_dir,
                              strerror(errno));
                struct statvfs v;
                if (statvfs(cfg.work_dir, &v) == 0) {
                        int64_t free_b = (int64_t)v.f_bavail * (int64_t)v.f_frsize;
                        check(free_b >= NX_MIN_FREE_DISK ? CK_OK : CK_FAIL, "disk space",
                              "%lld MiB free (directives need 1024)", (long long)(free_b >> 20));
                }
                bool enrolled = *cfg.territory_id || access(cfg.credentials_file, R_OK) == 0;
                check(enrolled ? CK_OK : CK_FAIL, "enrollment", "%s",
                      *cfg.territory_id ? "territory_id set in config"
                      : enrolled       ? cfg.credentials_file
                                       : "not enrolled: run `nexusd enroll -c FILE --token T`");
                nx_http_cfg hc = http_cfg(&cfg, NULL);
                nx_http_result res = { 0 };
                err_t e2 = ERR_INIT;
                if (nx_http_get_sync(&hc, "/up", 5000, &res, &e2) == 0 && res.status == 200)
                        check(CK_OK, "control plane", "%s reachable", cfg.server_url);
                else
                        check(CK_FAIL, "control plane", "%s: %s", cfg.server_url,
                              err_is_set(&e2) ? e2.msg : res.error);
                nx_http_result_clear(&res);
                bool host = nx_config_profile_enabled(&cfg, "host");
                bool untrusted = nx_config_profile_enabled(&cfg, "untrusted");
                bool other = nx_config_profile_enabled(&cfg, "trusted") ||
                             nx_config_profile_enabled(&cfg, "darwin-automation");
                check(other ? CK_FAIL : CK_OK, "profiles", "%s%s%s%s",
                      untrusted ? "untrusted (bwrap)" : "", untrusted && host ? ", " : "",
                      host ? "host (unisolated: enabled by supported_sandbox_profiles)" : "",
                      other ? "; trusted/darwin-automation have no driver in this build" : "");
        }
        nx_cgroup_caps caps;
        memset(&caps, 0, sizeof(caps));
        err_t e3 = ERR_INIT;
        if (nx_cgroup_capabilities(NULL, &caps, &e3) == 0)
                check(caps.tree_kill ? CK_OK : CK_WARN, "cgroups", "%s", caps.summary);
        else
                check(CK_WARN, "cgroups", "%s", e3.msg);
        const char *bwrap = have_cfg && *cfg.bwrap.bwrap_path ? cfg.bwrap.bwrap_path : "bwrap";
        bool have_bwrap = strchr(bwrap, '/') ? access(bwrap, X_OK) == 0
                                             : access("/usr/bin/bwrap", X_OK) == 0;
        check(have_bwrap ? CK_OK : CK_FAIL, "bwrap (git jail)",
              have_bwrap ? "present: clone and diff run jailed" : "missing: no clone or diff");
        check(access("/usr/bin/git", X_OK) == 0 ? CK_OK : CK_WARN, "git",
              access("/usr/bin/git", X_OK) == 0 ? "/usr/bin/git" : "missing: no clone or diff");
        doctor_untrusted(have_cfg ? &cfg : NULL, &caps);
        for (int i = 0; i < 50; i++)
                fputs("\u2500", stdout);
        printf("\n  %s\n", doctor_fails ? "Some checks failed. See details above."
                                         : "All checks passed.");
        nx_config_free(&cfg);
        return doctor_fails ? 1 : 0;
}

int main(int argc, char **argv)
{
        /* libuv's pool (4 threads by default) runs every proxy's DNS lookups next to git and
         * file work: one sandbox resolving slow names must not stall the others for long
         * (docs/security.md, egress proxy). Read once, at the pool's first use. */
        if (!getenv("UV_THREADPOOL_SIZE"))
                (void)setenv("UV_THREADPOOL_SIZE", "32", 0);
        /* `nexusd sandbox exec ... -- COMMAND...` takes a free-form argv (sandbox_exec.h) */
        if (argc >= 2 && strcmp(argv[1], "sandbox") == 0)
                return nx_sandbox_exec_main(argc - 1, argv + 1);
        nx_cli cli;
        char msg[256] = "";
        int rc = nx_cli_parse(argc, argv, &cli, msg, sizeof(msg));
        if (rc == NX_CLI_HELP) {
                fputs(nx_cli_usage(), stdout);
                return 0;
        }
        if (rc != NX_CLI_OK) {
                fprintf(stderr, "nexusd: %s\n%s", msg, nx_cli_usage());
                return 2;
        }
        if (cli.warning)
                log_warn(cli.warning);
        if (cli.mode == NX_MODE_VERSION) {
                printf("nexusd %s (commit=%s)\n", CONDUITS_VERSION, CONDUITS_COMMIT);
                return 0;
        }
        signal(SIGPIPE, SIG_IGN);
        err_t err = ERR_INIT;
        if (nx_http_global_init(&err) < 0) {
                fprintf(stderr, "nexusd: %s\n", err.msg);
                return 1;
        }
        if (cli.mode == NX_MODE_ROOTFS_PREPARE || cli.mode == NX_MODE_ROOTFS_VERIFY) {
                rc = cmd_rootfs(&cli);
                nx_http_global_cleanup();
                return rc;
        }
        if (cli.mode == NX_MODE_DOCTOR) {
                rc = cmd_doctor(&cli);
                nx_http_global_cleanup();
                return rc;
        }
        nx_config cfg = { 0 };
        if (nx_config_load(cli.config_path, &cfg, &err) < 0) {
                /* one clear line naming file, line and key (not also a JSON log record) */
                fprintf(stderr, "nexusd: %s\n", err.msg);
                nx_http_global_cleanup();
                return 1;
        }
        if (cli.mode == NX_MODE_ENROLL) {
                rc = cmd_enroll(&cli, &cfg);
        } else {
                nx_daemon d;
                if (check_rootfs_at_start(&cfg, &err) < 0) {
                        fprintf(stderr, "nexusd: %s\n", err.msg);
                        log_error("init nexusd failed", LOG_ERR(&err));
                        nx_config_free(&cfg);
                        nx_http_global_cleanup();
                        return 1;
                }
                if (nx_daemon_init(&d, &cfg, &err) < 0) {
                        fprintf(stderr, "nexusd: %s\n", err.msg);
                        log_error("init nexusd failed", LOG_ERR(&err));
                        rc = 1;
                } else {
                        rc = nx_daemon_run(&d);
                }
                nx_daemon_free(&d);
        }
        nx_config_free(&cfg);
        nx_http_global_cleanup();
        return rc;
}

/* sandbox/bwrap.c — the bwrap driver of the `untrusted` profile (spec nexus §6.2, DESIGN
 * D13). See bwrap.h. */
#include "sandbox/bwrap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/envinject.h"
#include "agent/gitsafe.h"
#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "sandbox/landlock.h"
#include "sandbox/netns.h"
#include "sandbox/rootfs.h"
#include "sandbox/seccomp.h"

/* ---------------------------------------------------------------- cwd and env ------- */

int nx_bwrap_resolve_cwd(const char *cwd, char *out, size_t outsz, err_t *err)
{
        return nx_resolve_sandbox_cwd(cwd ? cwd : "", out, outsz, err);
}

typedef struct envlist {
        char *v[NX_BWRAP_MAX_ENV + 1];
        size_t n;
} envlist;

/* Sets key=value, replacing an earlier entry of the same key (later sources win). */
static int env_put(envlist *e, const char *key, size_t klen, const char *value, err_t *err)
{
        char *kv = str_dup_printf("%.*s=%s", (int)klen, key, value);
        if (!kv)
                return err_errno(err, ENOMEM, "sandbox env");
        for (size_t i = 0; i < e->n; i++) {
                if (strncmp(e->v[i], key, klen) == 0 && e->v[i][klen] == '=') {
                        free(e->v[i]);
                        e->v[i] = kv;
                        return 0;
                }
        }
        if (e->n >= NX_BWRAP_MAX_ENV) {
                free(kv);
                return err_set(err, "sandbox env: more than %d variables", NX_BWRAP_MAX_ENV);
        }
        e->v[e->n++] = kv;
        e->v[e->n] = NULL;
        return 0;
}

static int env_put_kv(envlist *e, const char *key, const char *value, err_t *err)
{
        return env_put(e, key, strlen(key), value, err);
}

char **nx_bwrap_sandbox_env(char *const *directive_env, uint16_t port, err_t *err)
{
        envlist e = { .n = 0 };
        e.v[0] = NULL;
        char http[64], socks[64], portstr[16];
        if (port == 0)
                port = NX_EGRESS_PORT;
        str_printf(http, sizeof(http), "http://%s:%u", NX_EGRESS_HOST, (unsigned)port);
        str_printf(socks, sizeof(socks), "socks5h://%s:%u", NX_EGRESS_HOST, (unsigned)port);
        str_printf(portstr, sizeof(portstr), "%u", (unsigned)port);
        /* §5.6 bwrap row: PATH and HOME=/workspace first, the directive's variables over
         * them, then the proxy variables, which nothing may override (contract step 4) */
        if (env_put_kv(&e, "PATH", NX_BWRAP_PATH, err) < 0 ||
            env_put_kv(&e, "HOME", NX_BWRAP_WORKSPACE, err) < 0)
                goto fail;
        for (size_t i = 0; directive_env && directive_env[i]; i++) {
                const char *kv = directive_env[i];
                const char *eq = strchr(kv, '=');
                size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
                char key[256];
                if (!eq || klen == 0 || klen >= sizeof(key)) {
                        str_copyn(key, sizeof(key), kv, klen < sizeof(key) ? klen : sizeof(key) - 1);
                        err_set(err, "invalid env key: \"%s\"", key);
                        goto fail;
                }
                memcpy(key, kv, klen);
                key[klen] = '\0';
                if (!nx_env_key_valid(key)) {
                        err_set(err, "invalid env key: \"%s\"", key);
                        goto fail;
                }
                if (env_put(&e, key, klen, eq + 1, err) < 0)
                        goto fail;
        }
        static const char *const http_keys[] = { "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                                 "https_proxy", NULL };
        for (size_t i = 0; http_keys[i]; i++)
                if (env_put_kv(&e, http_keys[i], http, err) < 0)
                        goto fail;
        if (env_put_kv(&e, "ALL_PROXY", socks, err) < 0 ||
            env_put_kv(&e, "all_proxy", socks, err) < 0 ||
            env_put_kv(&e, "NO_PROXY", "", err) < 0 || env_put_kv(&e, "no_proxy", "", err) < 0 ||
            env_put_kv(&e, "NX_EGRESS_PORT", portstr, err) < 0)
                goto fail;
        char **out = calloc(e.n + 1, sizeof(char *));
        if (!out) {
                err_errno(err, ENOMEM, "sandbox env");
                goto fail;
        }
        memcpy(out, e.v, e.n * sizeof(char *));
        return out;
fail:
        for (size_t i = 0; i < e.n; i++)
                free(e.v[i]);
        return NULL;
}

/* ---------------------------------------------------------------- argv builder ------ */

typedef struct argvb {
        char **v;
        size_t n;
        bool oom;
} argvb;

static void add(argvb *a, const char *s)
{
        if (a->oom)
                return;
        if (a->n >= NX_BWRAP_MAX_ARGS) {
                a->oom = true;
                return;
        }
        a->v[a->n] = strdup(s);
        if (!a->v[a->n]) {
                a->oom = true;
                return;
        }
        a->n++;
        a->v[a->n] = NULL;
}

static void add2(argvb *a, const char *x, const char *y)
{
        add(a, x);
        add(a, y);
}

static void add3(argvb *a, const char *x, const char *y, const char *z)
{
        add(a, x);
        add(a, y);
        add(a, z);
}

static void add_fd(argvb *a, const char *opt, int fd)
{
        char num[16];
        str_printf(num, sizeof(num), "%d", fd);
        add2(a, opt, num);
}

void nx_bwrap_argv_free(char **argv)
{
        if (!argv)
                return;
        for (size_t i = 0; argv[i]; i++)
                free(argv[i]);
        free(argv);
}

/* The in-sandbox prepare step when a clone runs first (D15, §6.2 wrapper step 6 without
 * a script file). The URL, cwd, shell and command reach the fixed script as variables set by
 * env(1) (no shell parsing) and are unset before the command runs; git gets its clean
 * environment (nx_git_safe_env, static text quoted here) and the config-off options
 * (nx_git_safe_args, positional parameters) for the clone only. */
static char *clone_script(void)
{
        char *env = strdup("");
        const char *const *ge = nx_git_safe_env();
        for (size_t i = 0; env && ge[i]; i++) {
                if (str_has_prefix(ge[i], "PATH="))
                        continue;   /* the sandbox's PATH stays */
                _cleanup_free_ char *q = nx_shell_quote(ge[i]);
                char *next = q ? str_dup_printf("%s %s", env, q) : NULL;
                free(env);
                env = next;
        }
        if (!env)
                return NULL;
        char *s = str_dup_printf(
                "set -e\n"
                "echo \"[prepare] facility empty; cloning into /workspace\" >&2\n"
                "env%s git \"$@\" clone --depth 1 --no-recurse-submodules -- \"$NX_REPO_URL\" "
                "/workspace\n"
                "cd \"$NX_CWD\"\n"
                "nx_shell=$NX_SHELL nx_command=$NX_COMMAND\n"
                "unset NX_REPO_URL NX_CWD NX_SHELL NX_COMMAND\n"
                "exec \"$nx_shell\" -c \"$nx_command\"\n",
                env);
        free(env);
        return s;
}

/* A workspace path as the sandbox sees it: "/workspace" or below, absolute, no empty, "." or
 * ".." component (FsCapabilityV1 already refuses those; the daemon does not trust that). */
static bool workspace_path_ok(const char *p)
{
        size_t wl = strlen(NX_BWRAP_WORKSPACE);
        if (!p || strncmp(p, NX_BWRAP_WORKSPACE, wl) != 0 || (p[wl] != '\0' && p[wl] != '/') ||
            strlen(p) > 4096)
                return false;
        for (const char *c = p + wl; *c;) {
                c++;                                            /* past '/' */
                size_t n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += n;
        }
        return true;
}

static bool path_beneath(const char *p, const char *root)
{
        size_t n = strlen(root);
        return strncmp(p, root, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* Fails closed (§6.5, issue #4 item 2) on what this driver cannot enforce: a root outside
 * /workspace (nothing of the host is ever mounted writable), and a read-only subpath beneath a
 * writable root (Landlock grants add up, so "read-only inside writable" is not expressible;
 * outside every writable root a subpath is read-only already). */
static int fs_roots_check(const json_t *fs, err_t *err)
{
        static const char *const keys[] = { "writable_roots", "read_only_subpaths" };
        const json_t *roots = json_object_get(fs, "writable_roots");
        for (size_t k = 0; k < 2; k++) {
                const json_t *l = json_object_get(fs, keys[k]);
                if (!l || json_is_null(l))
                        continue;
                if (!json_is_array(l) || json_array_size(l) > 64)
                        return err_set(err, "fs.%s must be an array of at most 64 paths", keys[k]);
                size_t i;
                const json_t *v;
                json_array_foreach(l, i, v) {
                        const char *p = json_string_value(v);
                        if (!workspace_path_ok(p))
                                return err_set(err, "fs.%s[%zu] %s%.200s%s is not a path under "
                                               NX_BWRAP_WORKSPACE " (the untrusted profile grants "
                                               "only workspace paths)", keys[k], i, p ? "\"" : "",
                                               p ? p : "(not a string)", p ? "\"" : "");
                        size_t j;
                        const json_t *w;
                        if (k == 1)
                                json_array_foreach(roots, j, w)
                                        if (json_is_string(w) && path_beneath(p, json_string_value(w)))
                                                return err_set(err, "fs.read_only_subpaths[%zu] "
                                                               "\"%.200s\" lies beneath writable "
                                                               "root \"%.200s\": cannot be enforced",
                                                               i, p, json_string_value(w));
                }
        }
        return 0;
}

char **nx_bwrap_build_argv(const nx_bwrap_run *in, const nx_bwrap_layout *lay, err_t *err)
{
        char cwd[PATH_MAX];
        bool rootfs = in->rootfs_path && *in->rootfs_path;
        bool clone = in->repo_url && *in->repo_url;

        if (!in->bwrap_path || !*in->bwrap_path)
                return err_set(err, "bwrap path is required"), NULL;
        if (!in->facility_path || !*in->facility_path)
                return err_set(err, "facility path is required"), NULL;
        if (in->facility_path[0] != '/')
                return err_set(err, "facility path \"%s\" must be absolute", in->facility_path),
                       NULL;
        if (!in->helper_path || in->helper_path[0] != '/')
                return err_set(err, "nexus-sandbox path is required (absolute)"), NULL;
        if (in->argv ? !in->argv[0] || !in->argv[0][0] : !in->command || !in->command[0])
                return err_set(err, "empty command"), NULL;
        if (clone && in->argv)
                return err_set(err, "a clone needs a shell command"), NULL;
        if (!rootfs && (!lay->etc_dir || !*lay->etc_dir))
                return err_set(err, "generated /etc directory is required"), NULL;
        if (nx_bwrap_resolve_cwd(in->cwd, cwd, sizeof(cwd), err) < 0 ||
            fs_roots_check(in->fs, err) < 0)
                return NULL;
        uint16_t port = in->proxy_port ? in->proxy_port : NX_EGRESS_PORT;
        char **env = nx_bwrap_sandbox_env(in->envp, port, err);
        if (!env)
                return NULL;

        argvb a = { .v = calloc(NX_BWRAP_MAX_ARGS + 1, sizeof(char *)), .n = 0 };
        if (!a.v) {
                nx_env_free(env);
                return err_errno(err, ENOMEM, "bwrap argv"), NULL;
        }
        char num[32];
        add(&a, in->bwrap_path);
        /* D13: every namespace, no nested user namespaces, no capabilities, no tty */
        add(&a, "--unshare-all");
        add(&a, "--unshare-user");
        add(&a, "--disable-userns");
        add(&a, "--die-with-parent");
        add(&a, "--new-session");
        add2(&a, "--cap-drop", "ALL");
        str_printf(num, sizeof(num), "%d", NX_BWRAP_INNER_UID);
        add2(&a, "--uid", num);
        str_printf(num, sizeof(num), "%d", NX_BWRAP_INNER_GID);
        add2(&a, "--gid", num);
        add2(&a, "--hostname", "sandbox");
        if (rootfs) {
                add3(&a, "--ro-bind", in->rootfs_path, "/");
        } else {
                add2(&a, "--tmpfs", "/");
                add3(&a, "--ro-bind", "/usr", "/usr");
                /* /usr/local is the operator's, not the distribution's (site config such as
                 * /usr/local/etc/npmrc, local tools): hidden behind an empty read-only tmpfs */
                add2(&a, "--tmpfs", "/usr/local");
                add2(&a, "--remount-ro", "/usr/local");
                add3(&a, "--symlink", "usr/bin", "/bin");
                add3(&a, "--symlink", "usr/sbin", "/sbin");
                add3(&a, "--symlink", "usr/lib", "/lib");
                if (lay->lib64_symlink)
                        add3(&a, "--symlink", "usr/lib64", "/lib64");
                /* never the host /etc (Appendix B #2): the generated one, then public files */
                add3(&a, "--ro-bind", lay->etc_dir, "/etc");
                for (size_t i = 0; lay->etc_binds && lay->etc_binds[i]; i++)
                        add3(&a, "--ro-bind", lay->etc_binds[i], lay->etc_binds[i]);
        }
        add2(&a, "--proc", "/proc");
        add2(&a, "--dev", "/dev");
        add2(&a, "--tmpfs", "/tmp");
        add2(&a, "--tmpfs", "/run");
        add3(&a, "--bind", in->facility_path, NX_BWRAP_WORKSPACE);
        add3(&a, "--ro-bind", in->helper_path, NX_BWRAP_HELPER_DEST);
        /* after every mount point exists (vector #123) */
        add2(&a, "--remount-ro", "/");
        add2(&a, "--chdir", clone ? NX_BWRAP_WORKSPACE : cwd);
        add_fd(&a, "--seccomp", lay->seccomp_fd);
        add_fd(&a, "--info-fd", lay->info_fd);
        add_fd(&a, "--block-fd", lay->block_fd);
        add(&a, "--clearenv");
        for (size_t i = 0; env[i]; i++) {
                char *eq = strchr(env[i], '=');
                *eq = '\0';
                add3(&a, "--setenv", env[i], eq + 1);
                *eq = '=';
        }
        nx_env_free(env);

        add(&a, "--");
        add(&a, NX_BWRAP_HELPER_DEST);
        add2(&a, "--ro", "/");
        const json_t *roots = json_object_get(in->fs, "writable_roots");
        if (json_array_size(roots) == 0) {
                add2(&a, "--rw", NX_BWRAP_WORKSPACE);
        } else {
                /* §6.5: with writable roots only they are writable; the rest of /workspace
                 * stays readable through "--ro /". Checked by fs_roots_check(). */
                size_t i;
                const json_t *v;
                json_array_foreach(roots, i, v)
                        add2(&a, "--rw", json_string_value(v));
        }
        add2(&a, "--rw", "/tmp");
        add2(&a, "--rw", "/dev/shm");
        add2(&a, "--dev", "/dev");
        str_printf(num, sizeof(num), "%u", (unsigned)port);
        add2(&a, "--connect-port", num);
        if (in->landlock_min_abi > 0) {
                str_printf(num, sizeof(num), "%d", in->landlock_min_abi);
                add2(&a, "--min-abi", num);
        }
        add(&a, "--");
        if (in->argv) {
                for (size_t i = 0; in->argv[i]; i++)
                        add(&a, in->argv[i]);
        } else if (clone) {
                const char *shell = in->shell && *in->shell ? in->shell : "/bin/sh";
                _cleanup_free_ char *u = str_dup_printf("NX_REPO_URL=%s", in->repo_url);
                _cleanup_free_ char *c = str_dup_printf("NX_CWD=%s", cwd);
                _cleanup_free_ char *sh = str_dup_printf("NX_SHELL=%s", shell);
                _cleanup_free_ char *cmd = str_dup_printf("NX_COMMAND=%s", in->command);
                _cleanup_free_ char *script = clone_script();
                if (!u || !c || !sh || !cmd || !script) {
                        a.oom = true;
                } else {
                        add(&a, "env");
                        add(&a, u);
                        add(&a, c);
                        add(&a, sh);
                        add(&a, cmd);
                        add3(&a, "/bin/sh", "-c", script);
                        add(&a, "nexus-prepare");   /* $0 */
                        const char *const *ga = nx_git_safe_args();
                        for (size_t i = 0; ga[i]; i++)
                                add(&a, ga[i]);
                }
        } else {
                add(&a, in->shell && *in->shell ? in->shell : "/bin/sh");
                add2(&a, "-c", in->command);
        }
        if (a.oom) {
                nx_bwrap_argv_free(a.v);
                return err_set(err, "bwrap argv: out of memory or more than %d arguments",
                               NX_BWRAP_MAX_ARGS), NULL;
        }
        return a.v;
}

/* ---------------------------------------------------------------- generated /etc ---- */

static const char *const etc_binds[] = {
        "/etc/ssl/certs",            /* TLS trust roots (symlinks into /usr/share) */
        "/etc/ssl/openssl.cnf",
        "/etc/ca-certificates",
        "/etc/ca-certificates.conf",
        "/etc/alternatives",         /* Debian's awk, editor, ... symlinks */
        "/etc/ld.so.cache",          /* loader cache: multiarch library paths */
        "/etc/localtime",
        "/etc/protocols",
        "/etc/services",
        NULL,
};

const char *const *nx_bwrap_etc_binds(void)
{
        return etc_binds;
}

static int write_file_at(int dfd, const char *name, const char *text, err_t *err)
{
        _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                                   O_CLOEXEC, 0644);
        if (fd < 0)
                return err_errno(err, errno, "generated /etc: create %s", name);
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t)len)
                return err_errno(err, errno, "generated /etc: write %s", name);
        if (fchmod(fd, 0644) < 0)
                return err_errno(err, errno, "generated /etc: chmod %s", name);
        return 0;
}

/* mkdir -p of rel (relative to dfd), each component 0755. */
static int mkdirs_at(int dfd, const char *rel, err_t *err)
{
        char buf[PATH_MAX];
        if (str_copy(buf, sizeof(buf), rel) < 0)
                return err_set(err, "generated /etc: path too long");
        for (char *p = buf; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (*buf && mkdirat(dfd, buf, 0755) < 0 && errno != EEXIST)
                        return err_errno(err, errno, "generated /etc: mkdir %s", buf);
                /* exact mode whatever the umask (nx_bwrap_verify_etc checks it) */
                if (*buf && fchmodat(dfd, buf, 0755, 0) < 0)
                        return err_errno(err, errno, "generated /etc: chmod %s", buf);
                *p = '/';
        }
        if (mkdirat(dfd, buf, 0755) < 0 && errno != EEXIST)
                return err_errno(err, errno, "generated /etc: mkdir %s", buf);
        if (fchmodat(dfd, buf, 0755, 0) < 0)
                return err_errno(err, errno, "generated /etc: chmod %s", buf);
        return 0;
}


/* The generated files: name and content (static for every run and every directive). */
typedef struct etc_file {
        const char *name;
        const char *text;
} etc_file;

#define ETC_FILES 5

static void etc_files(etc_file f[ETC_FILES], char *passwd, size_t psz, char *group, size_t gsz)
{
        str_printf(passwd, psz,
                   "root:x:0:0:root:/root:/bin/sh\n"
                   "sandbox:x:%d:%d:sandbox:%s:/bin/sh\n"
                   "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                   NX_BWRAP_INNER_UID, NX_BWRAP_INNER_GID, NX_BWRAP_WORKSPACE);
        str_printf(group, gsz, "root:x:0:\nsandbox:x:%d:\nnogroup:x:65534:\n",
                   NX_BWRAP_INNER_GID);
        f[0] = (etc_file){ "passwd", passwd };
        f[1] = (etc_file){ "group", group };
        f[2] = (etc_file){ "hosts", "127.0.0.1\tlocalhost sandbox\n"
                                    "::1\tlocalhost ip6-localhost ip6-loopback\n" };
        f[3] = (etc_file){ "nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\n"
                                            "hosts: files dns\nnetworks: files\n"
                                            "protocols: files\nservices: files\n" };
        /* no nameserver: a lookup fails at once instead of waiting on an unreachable
         * server; names resolve only through the proxy (socks5h, CONNECT) */
        f[4] = (etc_file){ "resolv.conf", "# nexusd: no DNS inside the sandbox; use the "
                                          "proxy (HTTPS_PROXY, ALL_PROXY)\n"
                                          "options timeout:1 attempts:1\n" };
}

int nx_bwrap_write_etc(const char *dir, err_t *err)
{
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return err_errno(err, errno, "generated /etc: open %s", dir);
        char passwd[256], group[256];
        etc_file files[ETC_FILES];
        etc_files(files, passwd, sizeof(passwd), group, sizeof(group));
        for (size_t i = 0; i < ETC_FILES; i++)
                if (write_file_at(dfd, files[i].name, files[i].text, err) < 0)
                        return -1;
        /* mount points for the read-only binds (the bound /etc itself is read-only) */
        for (size_t i = 0; etc_binds[i]; i++) {
                struct stat st;
                if (stat(etc_binds[i], &st) < 0)
                        continue;
                const char *rel = etc_binds[i] + strlen("/etc/");
                char parent[PATH_MAX];
                str_copy(parent, sizeof(parent), rel);
                char *slash = strrchr(parent, '/');
                if (slash) {
                        *slash = '\0';
                        if (mkdirs_at(dfd, parent, err) < 0)
                                return -1;
                }
                if (S_ISDIR(st.st_mode)) {
                        if (mkdirs_at(dfd, rel, err) < 0)
                                return -1;
                } else if (write_file_at(dfd, rel, "", err) < 0) {
                        return -1;
                }
        }
        return 0;
}

/* An entry of the shared /etc is as we made it: our owner, the expected type and mode, no
 * other name for it (nlink 1 for files), nobody else can write it. */
static bool etc_entry_ok(const struct stat *st, mode_t type, mode_t mode)
{
        return (st->st_mode & S_IFMT) == type && (st->st_mode & 07777) == mode &&
               st->st_uid == geteuid() && (type != S_IFREG || st->st_nlink == 1);
}

int nx_bwrap_verify_etc(const char *dir, err_t *err)
{
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (dfd < 0)
                return err_errno(err, errno, "generated /etc: open %s", dir);
        if (fstat(dfd, &st) < 0 || !etc_entry_ok(&st, S_IFDIR, 0755))
                return err_set(err, "generated /etc %s: not a 0755 directory of uid %u", dir,
                               (unsigned)geteuid());
        char passwd[256], group[256], buf[1024];
        etc_file files[ETC_FILES];
        etc_files(files, passwd, sizeof(passwd), group, sizeof(group));
        for (size_t i = 0; i < ETC_FILES; i++) {
                _cleanup_close_ int fd = openat(dfd, files[i].name,
                                                O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                size_t len = strlen(files[i].text);
                if (fd < 0 || fstat(fd, &st) < 0 || !etc_entry_ok(&st, S_IFREG, 0644) ||
                    (size_t)st.st_size != len || len >= sizeof(buf) ||
                    read(fd, buf, sizeof(buf)) != (ssize_t)len ||
                    memcmp(buf, files[i].text, len) != 0)
                        return err_set(err, "generated /etc %s: %s differs from what nexusd "
                                       "wrote", dir, files[i].name);
        }
        for (size_t i = 0; etc_binds[i]; i++) {
                struct stat host;
                if (stat(etc_binds[i], &host) < 0)
                        continue;
                const char *rel = etc_binds[i] + strlen("/etc/");
                bool dir_ = S_ISDIR(host.st_mode);
                if (fstatat(dfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !etc_entry_ok(&st, dir_ ? S_IFDIR : S_IFREG, dir_ ? 0755 : 0644) ||
                    (!dir_ && st.st_size != 0))
                        return err_set(err, "generated /etc %s: mount point %s is wrong", dir,
                                       rel);
        }
        return 0;
}

/* ---------------------------------------------------------------- shared /etc ------- */

/* One generated /etc per process (the daemon, or one `sandbox exec`): its content is static,
 * and rebuilding it per run cost ~5 ms of file creation (docs/benchmarks.md "Sandbox start
 * (issue 6)"). <parent>/nexus-etc-XXXXXX (mkdtemp: a fresh name, created by us, 0711 so the
 * sandbox uid can traverse but not list) holding etc/ (0755, files 0644, all owned by our
 * euid: read-only to the sandbox uid, which bwrap binds it as, and bound read-only anyway).
 * Every reuse verifies it first (nx_bwrap_verify_etc, no link followed); anything unexpected
 * (tmp cleaner, tampering) → it is removed and made again. Removed at exit by the process
 * that made it. Guarded by a mutex (prepare may run off the loop thread). */
/* Our own temporary trees (generated /etc, per-run temp dir): best effort, logged. */
static void remove_quietly(const char *path)
{
        err_t err = ERR_INIT;
        if (nx_rootfs_remove_tree(path, &err) < 0)
                log_warn("cannot remove a temporary tree", LOG_STR("path", path), LOG_ERR(&err));
}

static pthread_mutex_t etc_mu = PTHREAD_MUTEX_INITIALIZER;
static char etc_top[PATH_MAX];      /* "" until made */
static char etc_parent[PATH_MAX];
static pid_t etc_owner;
static bool etc_atexit;

static void etc_shared_remove_locked(void)
{
        if (etc_top[0] && etc_owner == getpid())
                remove_quietly(etc_top);
        etc_top[0] = '\0';
}

void nx_bwrap_etc_shared_release(void)
{
        pthread_mutex_lock(&etc_mu);
        etc_shared_remove_locked();
        pthread_mutex_unlock(&etc_mu);
}

static void etc_at_exit(void)
{
        nx_bwrap_etc_shared_release();
}

static int etc_create_locked(const char *parent, err_t *err)
{
        char top[PATH_MAX], etc[PATH_MAX];
        if (str_printf(top, sizeof(top), "%s/nexus-etc-XXXXXX", parent) < 0 ||
            str_printf(etc, sizeof(etc), "%s/nexus-etc-XXXXXX/etc", parent) < 0)
                return err_set(err, "temporary directory path too long");
        if (!mkdtemp(top))
                return err_errno(err, errno, "create a directory in %s", parent);
        str_printf(etc, sizeof(etc), "%s/etc", top);
        int rc = -1;
        /* mkdir's mode is masked by the umask: chmod makes the modes exact (verified later) */
        if (chmod(top, 0711) < 0 || mkdir(etc, 0700) < 0 || chmod(etc, 0755) < 0)
                err_errno(err, errno, "create %s", etc);
        else if (nx_bwrap_write_etc(etc, err) == 0)
                rc = 0;
        if (rc < 0) {
                remove_quietly(top);
                return -1;
        }
        str_copy(etc_top, sizeof(etc_top), top);
        str_copy(etc_parent, sizeof(etc_parent), parent);
        etc_owner = getpid();
        if (!etc_atexit && atexit(etc_at_exit) == 0)
                etc_atexit = true;
        return 0;
}

int nx_bwrap_etc_shared(const char *parent, char *out, size_t outsz, err_t *err)
{
        if (!parent || parent[0] != '/')
                return err_set(err, "generated /etc: parent \"%s\" must be absolute",
                               parent ? parent : "");
        pthread_mutex_lock(&etc_mu);
        int rc = 0;
        if (etc_top[0] && (etc_owner != getpid() || strcmp(etc_parent, parent) != 0))
                etc_shared_remove_locked();   /* other parent; or a forked child's copy */
        char etc[PATH_MAX];
        if (etc_top[0]) {
                err_t verr = ERR_INIT;
                str_printf(etc, sizeof(etc), "%s/etc", etc_top);
                struct stat st;
                int tfd = open(etc_top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                bool top_ok = tfd >= 0 && fstat(tfd, &st) == 0 &&
                              etc_entry_ok(&st, S_IFDIR, 0711);
                if (tfd >= 0)
                        close(tfd);
                if (!top_ok || nx_bwrap_verify_etc(etc, &verr) < 0) {
                        log_warn("generated /etc changed since it was made; making it again",
                                 LOG_STR("dir", etc_top),
                                 LOG_STR("error", top_ok ? verr.msg : "top directory"));
                        etc_shared_remove_locked();
                }
        }
        if (!etc_top[0])
                rc = etc_create_locked(parent, err);
        if (rc == 0 && str_printf(out, outsz, "%s/etc", etc_top) < 0)
                rc = err_set(err, "generated /etc path too long");
        pthread_mutex_unlock(&etc_mu);
        return rc;
}

static int chown_dir(int dfd, const char *path, uid_t uid, gid_t gid, int depth, err_t *err)
{
        if (depth > 256)
                return err_set(err, "chown %s: deeper than 256 levels", path);
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return err_errno(err, errno, "chown %s: open", path);
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return err_errno(err, errno, "chown %s: read", path);
        }
        int rc = 0;
        struct dirent *de;
        while (rc == 0 && (de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;   /* vanished */
                if ((st.st_uid != uid || st.st_gid != gid) &&
                    fchownat(dirfd(d), de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
                        rc = err_errno(err, errno, "chown %s/%s", path, de->d_name);
                        break;
                }
                if (!S_ISDIR(st.st_mode))
                        continue;
                int sub = openat(dirfd(d), de->d_name,
                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue;   /* replaced meanwhile: not followed */
                rc = chown_dir(sub, path, uid, gid, depth + 1, err);
                close(sub);
        }
        closedir(d);
        return rc;
}

int nx_bwrap_chown_tree(const char *path, uid_t uid, gid_t gid, err_t *err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return err_errno(err, errno, "open %s", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return err_errno(err, errno, "stat %s", path);
        if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
                return err_errno(err, errno, "chown %s to %u", path, (unsigned)uid);
        return chown_dir(fd, path, uid, gid, 0, err);
}

int nx_bwrap_check_reachable(const char *path, uid_t uid, gid_t gid, err_t *err)
{
        char dir[PATH_MAX];
        size_t len = path ? strlen(path) : 0;
        if (!path || path[0] != '/' || len >= sizeof(dir))
                return err_set(err, "path \"%s\" must be absolute", path ? path : "");
        /* every ancestor directory, "/" first; the path itself is not checked */
        for (size_t i = 0; i < len; i++) {
                if (path[i] != '/')
                        continue;
                size_t n = i == 0 ? 1 : i;
                memcpy(dir, path, n);
                dir[n] = '\0';
                if (i > 0 && i + 1 == len)
                        break;   /* trailing slash: dir is the path itself */
                struct stat st;
                if (stat(dir, &st) < 0)
                        return err_errno(err, errno, "%s: stat %s", path, dir);
                mode_t need = st.st_uid == uid ? S_IXUSR : st.st_gid == gid ? S_IXGRP : S_IXOTH;
                if (!(st.st_mode & need))
                        return err_set(err, "%s is not reachable by the sandbox uid %u: %s is "
                                       "not searchable", path, (unsigned)uid, dir);
        }
        return 0;
}

/* ---------------------------------------------------------------- prepare ----------- */

static void close_fd(int *fd)
{
        if (*fd >= 0) {
                close(*fd);
                *fd = -1;
        }
}

static bool is_symlink(const char *p)
{
        struct stat st;
        return lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
}

int nx_bwrap_prepare(const nx_bwrap_run *in, nx_bwrap_prepared *out, err_t *err)
{
        memset(out, 0, sizeof(*out));
        out->seccomp_fd = out->info_rd = out->info_wr = out->block_rd = out->block_wr = -1;
        bool rootfs = in->rootfs_path && *in->rootfs_path;
        const char *existing[sizeof(etc_binds) / sizeof(etc_binds[0])];
        size_t nexisting = 0;

        if (in->argv ? !in->argv[0] || !in->argv[0][0] : !in->command || !in->command[0])
                return err_set(err, "empty command");
        if (nx_cgroup_validate_id(in->directive_id, err) < 0)
                return -1;
        if (nx_bwrap_resolve_cwd(in->cwd, out->cwd, sizeof(out->cwd), err) < 0)
                return -1;
        if (!in->facility_path || in->facility_path[0] != '/')
                return err_set(err, "facility path is required");
        if (in->drop_ids && (in->uid == 0 || in->gid == 0))
                return err_set(err, "sandbox uid/gid must not be 0");

        if (in->drop_ids) {
                if (nx_bwrap_check_reachable(in->facility_path, in->uid, in->gid, err) < 0 ||
                    (in->helper_path &&
                     nx_bwrap_check_reachable(in->helper_path, in->uid, in->gid, err) < 0) ||
                    (rootfs && nx_bwrap_check_reachable(in->rootfs_path, in->uid, in->gid,
                                                         err) < 0))
                        return -1;
        }
        /* the facility root belongs to the sandbox's uid, so what it writes is owned sanely
         * and it can create files at all; opened without following a symlink */
        if (in->drop_ids && nx_bwrap_chown_tree(in->facility_path, in->uid, in->gid, err) < 0)
                return err_wrap(err, "facility");

        char etc[PATH_MAX];
        etc[0] = '\0';
        if (!rootfs) {
                const char *base = in->tmp_dir && *in->tmp_dir ? in->tmp_dir : getenv("TMPDIR");
                if (!base || base[0] != '/')
                        base = "/tmp";
                /* made once per process, verified here before each reuse */
                if (nx_bwrap_etc_shared(base, etc, sizeof(etc), err) < 0)
                        goto fail;
                for (size_t i = 0; etc_binds[i]; i++) {
                        struct stat st;
                        if (stat(etc_binds[i], &st) == 0)
                                existing[nexisting++] = etc_binds[i];
                }
        }
        existing[nexisting] = NULL;

        if (nx_seccomp_memfd(&out->seccomp_fd, err) < 0) {
                err_wrap(err, "seccomp filter");
                goto fail;
        }
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                err_errno(err, errno, "info pipe");
                goto fail;
        }
        out->info_rd = p[0];
        out->info_wr = p[1];
        if (pipe2(p, O_CLOEXEC) < 0) {
                err_errno(err, errno, "block pipe");
                goto fail;
        }
        out->block_rd = p[0];
        out->block_wr = p[1];

        nx_cgroup_limits lim = in->limits;
        if (lim.pids_max <= 0)
                lim.pids_max = in->default_pids > 0 ? in->default_pids : NX_SANDBOX_DEFAULT_PIDS;
        if (nx_cgroup_validate_limits(&lim, err) < 0)
                goto fail;
        /* fail closed (§6.6, D13): a sandbox without its limits does not run */
        if (nx_cgroup_create(in->cgroup_sys, in->directive_id, &lim, &out->cgroup, err) < 0) {
                err_wrap(err, "cgroup limits required but failed to apply");
                goto fail;
        }

        nx_bwrap_layout lay = { .etc_dir = rootfs ? NULL : etc,
                                .lib64_symlink = is_symlink("/lib64"),
                                .etc_binds = existing,
                                .seccomp_fd = NX_BWRAP_FD_SECCOMP,
                                .info_fd = NX_BWRAP_FD_INFO,
                                .block_fd = NX_BWRAP_FD_BLOCK };
        out->argv = nx_bwrap_build_argv(in, &lay, err);
        if (!out->argv)
                goto fail;

        /* §6.2 step 5: bwrap's own environment; the sandbox's comes from --setenv */
        out->envp[0] = (char *)(uintptr_t)"PATH=" NX_BWRAP_PATH;
        out->envp[1] = (char *)(uintptr_t)"HOME=/";
        out->envp[2] = (char *)(uintptr_t)"LANG=C";
        out->envp[3] = (char *)(uintptr_t)"LC_ALL=C";
        out->envp[4] = NULL;
        str_copy(out->host_cwd, sizeof(out->host_cwd), "/");
        out->fds[0] = (nx_spawn_fd){ out->seccomp_fd, NX_BWRAP_FD_SECCOMP };
        out->fds[1] = (nx_spawn_fd){ out->info_wr, NX_BWRAP_FD_INFO };
        out->fds[2] = (nx_spawn_fd){ out->block_rd, NX_BWRAP_FD_BLOCK };
        out->req.argv = out->argv;
        out->req.envp = out->envp;
        out->req.cwd = out->host_cwd;
        out->req.cgroup_joins = nx_cgroup_joins(out->cgroup, &out->req.n_cgroup_joins);
        out->req.new_session = true;
        out->req.extra_fds = out->fds;
        out->req.n_extra_fds = 3;
        out->req.drop_ids = in->drop_ids;
        out->req.uid = in->uid;
        out->req.gid = in->gid;
        return 0;
fail:;
        err_t ignored = ERR_INIT;
        (void)nx_bwrap_prepared_free(out, &ignored);
        return -1;
}

void nx_bwrap_after_spawn(nx_bwrap_prepared *p)
{
        close_fd(&p->seccomp_fd);
        close_fd(&p->info_wr);
        close_fd(&p->block_rd);
        p->fds[0].parent_fd = p->fds[1].parent_fd = p->fds[2].parent_fd = -1;
        p->req.n_extra_fds = 0;
}

int nx_bwrap_child_pid(nx_bwrap_prepared *p, int timeout_ms, pid_t *pid, err_t *err)
{
        char buf[4096];
        size_t len = 0;
        int64_t deadline = clock_mono_ms() + timeout_ms;

        if (p->child_pid > 0) {
                *pid = p->child_pid;
                return 0;
        }
        if (p->info_rd < 0)
                return err_set(err, "bwrap info pipe is closed");
        for (;;) {
                int64_t left = deadline - clock_mono_ms();
                if (left <= 0)
                        return err_set(err, "bwrap did not report the sandbox pid within %d ms",
                                       timeout_ms);
                struct pollfd pfd = { p->info_rd, POLLIN, 0 };
                int n = poll(&pfd, 1, (int)left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return err_errno(err, errno, "poll bwrap info pipe");
                if (n == 0)
                        continue;
                ssize_t r = read(p->info_rd, buf + len, sizeof(buf) - 1 - len);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return err_errno(err, errno, "read bwrap info pipe");
                if (r == 0)
                        return err_set(err, "bwrap exited before the sandbox started");
                len += (size_t)r;
                buf[len] = '\0';
                json_error_t je;
                _cleanup_json_ json_t *j = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &je);
                if (j) {
                        json_t *cp = json_object_get(j, "child-pid");
                        if (!json_is_integer(cp) || json_integer_value(cp) <= 1 ||
                            json_integer_value(cp) > 0x7fffffff)
                                return err_set(err, "bwrap info has no valid child-pid");
                        p->child_pid = (pid_t)json_integer_value(cp);
                        *pid = p->child_pid;
                        close_fd(&p->info_rd);
                        return 0;
                }
                if (len >= sizeof(buf) - 1)
                        return err_set(err, "bwrap info is larger than %zu bytes", sizeof(buf));
        }
}

int nx_bwrap_release(nx_bwrap_prepared *p, err_t *err)
{
        if (p->block_wr < 0)
                return err_set(err, "sandbox already released");
        ssize_t n;
        do {
                n = write(p->block_wr, "g", 1);
        } while (n < 0 && errno == EINTR);
        int e = errno;
        close_fd(&p->block_wr);
        if (n != 1)
                return err_errno(err, e, "release the sandbox (block fd)");
        return 0;
}

int nx_bwrap_start(nx_bwrap_prepared *p, nx_child *c, nx_bwrap_adopt_fn adopt, void *ud,
                   err_t *err)
{
        if (nx_spawn(&p->req, c, err) < 0)
                return err_wrap(err, "start bwrap");
        nx_bwrap_after_spawn(p);
        pid_t sp = 0;
        int lfd = -1;
        /* bwrap writes the pid right after clone: a short bounded wait */
        if (nx_bwrap_child_pid(p, NX_BWRAP_INFO_TIMEOUT_MS, &sp, err) < 0 ||
            (adopt && (nx_netns_listen_child(sp, c->pid, NX_EGRESS_HOST, NX_EGRESS_PORT, &lfd,
                                             err) < 0 ||
                       adopt(ud, lfd, err) < 0)) ||
            nx_bwrap_release(p, err) < 0) {
                err_t kerr = ERR_INIT;
                (void)nx_child_kill_tree(c, p->cgroup, SIGKILL, &kerr);
                (void)nx_child_reap(c, true, &kerr);
                nx_child_close(c);
                return err_wrap(err, "sandbox setup failed");
        }
        return 0;
}

int nx_bwrap_prepared_free(nx_bwrap_prepared *p, err_t *err)
{
        int rc = nx_cgroup_destroy(&p->cgroup, err);
        close_fd(&p->seccomp_fd);
        close_fd(&p->info_rd);
        close_fd(&p->info_wr);
        close_fd(&p->block_rd);
        close_fd(&p->block_wr);
        if (p->tmp_dir[0]) {
                remove_quietly(p->tmp_dir);
                p->tmp_dir[0] = '\0';
        }
        nx_bwrap_argv_free(p->argv);
        p->argv = NULL;
        p->req.argv = NULL;
        p->req.cgroup_joins = NULL;
        p->req.n_cgroup_joins = 0;
        p->req.n_extra_fds = 0;
        return rc;
}

/* ---------------------------------------------------------------- lookup ------------ */

static bool executable(const char *p)
{
        struct stat st;
        return p && p[0] == '/' && stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
               access(p, X_OK) == 0;
}

int nx_bwrap_find(const char *configured, char *out, size_t outsz, err_t *err)
{
        const char *name = configured && *configured ? configured : "bwrap";
        if (strchr(name, '/')) {
                if (!executable(name))
                        return err_set(err, "bwrap not found at %s", name);
                return str_copy(out, outsz, name) < 0 ? err_set(err, "bwrap path too long") : 0;
        }
        static const char *const dirs[] = { "/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin",
                                            NULL };
        for (size_t i = 0; dirs[i]; i++)
                if (str_printf(out, outsz, "%s/%s", dirs[i], name) > 0 && executable(out))
                        return 0;
        return err_set(err, "bwrap not found in PATH (install bubblewrap)");
}

int nx_bwrap_find_helper(const char *configured, char *out, size_t outsz, err_t *err)
{
        if (configured && *configured) {
                if (!executable(configured))
                        return err_set(err, "nexus-sandbox not found at %s "
                                       "(bwrap.sandbox_helper_path)", configured);
                return str_copy(out, outsz, configured) < 0
                               ? err_set(err, "nexus-sandbox path too long") : 0;
        }
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        if (str_printf(out, outsz, "%s/%s", self, NX_BWRAP_HELPER_NAME) > 0 &&
                            executable(out))
                                return 0;
                }
        }
        static const char *const dirs[] = { "/usr/libexec/nexusd", "/usr/lib/nexusd",
                                            "/usr/local/libexec/nexusd", "/usr/local/lib/nexusd",
                                            "/usr/local/bin", "/usr/bin", NULL };
        for (size_t i = 0; dirs[i]; i++)
                if (str_printf(out, outsz, "%s/%s", dirs[i], NX_BWRAP_HELPER_NAME) > 0 &&
                    executable(out))
                        return 0;
        return err_set(err, "nexus-sandbox not found (next to nexusd, /usr/libexec/nexusd, "
                            "/usr/lib/nexusd; or set bwrap.sandbox_helper_path)");
}

/* ---------------------------------------------------------------- health ------------ */

/* Reads what is available on a non-blocking fd into buf (bounded). */
static void drain(int fd, char *buf, size_t bufsz, size_t *len)
{
        while (fd >= 0 && *len + 1 < bufsz) {
                ssize_t r = read(fd, buf + *len, bufsz - 1 - *len);
                if (r <= 0)
                        break;
                *len += (size_t)r;
        }
        buf[*len] = '\0';
}

static int probe(const char *bwrap, const char *helper, const char *rootfs, bool drop_ids,
                 uid_t uid, gid_t gid, err_t *err)
{
        char fac[] = "/tmp/nexus-bwrap-probe-XXXXXX";
        if (!mkdtemp(fac))
                return err_errno(err, errno, "probe workspace");
        char id[64];
        str_printf(id, sizeof(id), "health-probe-%d-%lld", (int)getpid(),
                   (long long)clock_mono_ms());
        char *const argv[] = { (char *)(uintptr_t)"/bin/true", NULL };
        nx_bwrap_run in = { .directive_id = id, .argv = argv, .facility_path = fac,
                            .cwd = "", .rootfs_path = rootfs, .bwrap_path = bwrap,
                            .helper_path = helper, .drop_ids = drop_ids, .uid = uid,
                            .gid = gid };
        nx_bwrap_prepared prep;
        nx_child child = NX_CHILD_INIT;
        err_t ign = ERR_INIT;
        int rc = -1;
        char errbuf[512];
        size_t elen = 0;
        errbuf[0] = '\0';
        if (nx_bwrap_prepare(&in, &prep, err) < 0) {
                rmdir(fac);
                return -1;
        }
        if (nx_spawn(&prep.req, &child, err) < 0)
                goto out;
        nx_bwrap_after_spawn(&prep);
        pid_t sp = 0;
        int lfd = -1;
        if (nx_bwrap_child_pid(&prep, NX_BWRAP_INFO_TIMEOUT_MS, &sp, err) < 0 ||
            nx_netns_listen_child(sp, child.pid, NX_EGRESS_HOST, NX_EGRESS_PORT, &lfd, err) < 0 ||
            nx_bwrap_release(&prep, err) < 0) {
                nx_child_kill_tree(&child, prep.cgroup, SIGKILL, &ign);
                (void)nx_child_reap(&child, true, &ign);
                drain(child.stderr_fd, errbuf, sizeof(errbuf), &elen);
                if (elen)
                        err_wrap(err, "%s", errbuf);
                goto out;
        }
        close(lfd);
        int64_t deadline = clock_mono_ms() + 5000;
        for (;;) {
                int r = nx_child_reap(&child, false, err);
                if (r < 0)
                        goto out;
                if (r == 1)
                        break;
                if (clock_mono_ms() > deadline) {
                        nx_child_kill_tree(&child, prep.cgroup, SIGKILL, &ign);
                        (void)nx_child_reap(&child, true, &ign);
                        err_set(err, "sandbox probe did not finish within 5 s");
                        goto out;
                }
                struct timespec ts = { 0, 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        drain(child.stderr_fd, errbuf, sizeof(errbuf), &elen);
        int code = nx_wait_status_to_exit_code(child.wait_status);
        if (code != 0) {
                err_set(err, "sandbox probe exited %d: %s", code, errbuf);
                goto out;
        }
        rc = 0;
out:
        nx_child_close(&child);
        (void)nx_bwrap_prepared_free(&prep, &ign);
        rmdir(fac);
        return rc;
}

json_t *nx_bwrap_health(const char *bwrap_path, const char *helper_path, const char *rootfs,
                        bool drop_ids, uid_t uid, gid_t gid)
{
        err_t err = ERR_INIT;
        char bwrap[PATH_MAX], helper[PATH_MAX];
        json_t *details = json_pack("{s:s}", "driver", "bwrap");
        if (!details)
                return NULL;
        bool ok = nx_bwrap_find(bwrap_path, bwrap, sizeof(bwrap), &err) == 0;
        if (ok)
                json_object_set_new(details, "bwrap_path", json_string(bwrap));
        ok = ok && nx_bwrap_find_helper(helper_path, helper, sizeof(helper), &err) == 0;
        if (ok)
                json_object_set_new(details, "helper_path", json_string(helper));
        if (ok && rootfs && *rootfs) {
                char sh[PATH_MAX];
                struct stat st;
                if (str_printf(sh, sizeof(sh), "%s/bin/sh", rootfs) < 0 || lstat(sh, &st) < 0) {
                        err_set(&err, "rootfs missing bin/sh at %s", rootfs);
                        ok = false;
                }
        }
        if (ok && probe(bwrap, helper, rootfs, drop_ids, uid, gid, &err) < 0) {
                err_wrap(&err, "namespace test failed");
                ok = false;
        }
        if (!ok)
                json_object_set_new(details, "error", json_string(err.msg));
        return json_pack("{s:b, s:o}", "healthy", ok, "details", details);
}

json_t *nx_bwrap_summary(const nx_bwrap_run *in, int landlock_abi)
{
        char proxy[64];
        str_printf(proxy, sizeof(proxy), "%s:%u", NX_EGRESS_HOST,
                   (unsigned)(in->proxy_port ? in->proxy_port : NX_EGRESS_PORT));
        int64_t pids = in->limits.pids_max > 0 ? in->limits.pids_max
                       : in->default_pids > 0 ? in->default_pids : NX_SANDBOX_DEFAULT_PIDS;
        json_t *net = in->net ? json_deep_copy(in->net) : json_null();
        return json_pack("{s:s, s:o, s:b, s:i, s:b, s:s, s:I, s:I, s:I, s:b, s:b}", "driver",
                         "bwrap", "net", net ? net : json_null(), "seccomp", 1, "landlock_abi",
                         landlock_abi, "landlock", landlock_abi > 0, "egress_proxy", proxy,
                         "pids_max", (json_int_t)pids, "memory_mb",
                         (json_int_t)(in->limits.memory_mb > 0 ? in->limits.memory_mb : 0),
                         "cpu_millicores",
                         (json_int_t)(in->limits.cpu_millicores > 0 ? in->limits.cpu_millicores
                                                                    : 0),
                         "rootfs", in->rootfs_path && *in->rootfs_path, "host_uid_0",
                         !in->drop_ids && geteuid() == 0);
}

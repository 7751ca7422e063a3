/* Tests for sandbox/landlock: each restriction is applied in a forked child (it is
 * irreversible), which then tries the access and reports through its exit code. Spec nexus
 * §12 #184 (empty ruleset), #186 (allowed file readable, sibling denied), issue #6 (TCP connect
 * only to the proxy port, scoping of signals and abstract unix sockets). */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "sandbox/landlock.h"

/* uapi values, to check the masks (see landlock.c for why they are spelled out) */
#define LL_EXECUTE (1ull << 0)
#define LL_WRITE_FILE (1ull << 1)
#define LL_READ_FILE (1ull << 2)
#define LL_READ_DIR (1ull << 3)
#define LL_MAKE_REG (1ull << 8)
#define LL_REFER (1ull << 13)
#define LL_TRUNCATE (1ull << 14)
#define LL_IOCTL_DEV (1ull << 15)

typedef struct fixture {
        char root[64];               /* /tmp/nx-ll-XXXXXX */
        char allowed[128];           /* root/allowed (holds file.txt) */
        char sibling[128];           /* root/sibling (holds secret.txt) */
        char rw[128];                /* root/rw */
        char allowed_file[160];
        char sibling_file[160];
} fixture;

static void write_file(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static void path_join(char *dst, size_t cap, const char *a, const char *b)
{
        int n = snprintf(dst, cap, "%s/%s", a, b);
        assert_true(n > 0 && (size_t)n < cap);
}

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));
        if (!f)
                return -1;
        int n = snprintf(f->root, sizeof(f->root), "/tmp/nx-ll-XXXXXX");
        if (n < 0 || !mkdtemp(f->root))
                return -1;
        path_join(f->allowed, sizeof(f->allowed), f->root, "allowed");
        path_join(f->sibling, sizeof(f->sibling), f->root, "sibling");
        path_join(f->rw, sizeof(f->rw), f->root, "rw");
        path_join(f->allowed_file, sizeof(f->allowed_file), f->allowed, "file.txt");
        path_join(f->sibling_file, sizeof(f->sibling_file), f->sibling, "secret.txt");
        if (mkdir(f->allowed, 0755) < 0 || mkdir(f->sibling, 0755) < 0 || mkdir(f->rw, 0755) < 0)
                return -1;
        write_file(f->allowed_file, "hello");
        write_file(f->sibling_file, "secret");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fixture *f = *state;
        char cmd_path[200];
        /* remove whatever the children created (names are known) */
        unlink(f->allowed_file);
        unlink(f->sibling_file);
        path_join(cmd_path, sizeof(cmd_path), f->rw, "new.txt");
        unlink(cmd_path);
        path_join(cmd_path, sizeof(cmd_path), f->allowed, "new.txt");
        unlink(cmd_path);
        rmdir(f->allowed);
        rmdir(f->sibling);
        rmdir(f->rw);
        rmdir(f->root);
        free(f);
        *state = NULL;
        return 0;
}

/* ---- child runner ------------------------------------------------------------------------ */

typedef int (*child_fn)(const fixture *f, void *arg);

/* Forks; the child applies spec and returns fn's result (100 if apply failed). */
static int run_restricted(const nx_landlock_spec *spec, const fixture *f, child_fn fn, void *arg)
{
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                err_t err = ERR_INIT;
                if (nx_landlock_apply(spec, NULL, &err) < 0) {
                        fprintf(stderr, "apply: %s\n", err.msg);
                        _exit(100);
                }
                _exit(fn(f, arg));
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (WIFSIGNALED(st))
                fail_msg("child killed by signal %d", WTERMSIG(st));
        return WEXITSTATUS(st);
}

static void require_abi(int min, const char *feature)
{
        int abi = nx_landlock_abi();
        if (abi < min)
                SKIP_BECAUSE("Landlock ABI %d < %d (%s)", abi, min, feature);
}

/* Returns 0 if the open succeeded, else errno. */
static int try_open(const char *path, int flags)
{
        int fd = open(path, flags | O_CLOEXEC, 0644);
        if (fd < 0)
                return errno;
        close(fd);
        return 0;
}

/* ---- filesystem -------------------------------------------------------------------------- */

static int child_read_allowed(const fixture *f, void *arg)
{
        (void)arg;
        return try_open(f->allowed_file, O_RDONLY) == 0 ? 0 : 1;
}

static int child_read_sibling(const fixture *f, void *arg)
{
        (void)arg;
        return try_open(f->sibling_file, O_RDONLY) == EACCES ? 0 : 1;
}

static int child_list_sibling(const fixture *f, void *arg)
{
        (void)arg;
        return try_open(f->sibling, O_RDONLY | O_DIRECTORY) == EACCES ? 0 : 1;
}

static int child_write_ro(const fixture *f, void *arg)
{
        (void)arg;
        char p[200];
        path_join(p, sizeof(p), f->allowed, "new.txt");
        int create = try_open(p, O_WRONLY | O_CREAT);
        int write_existing = try_open(f->allowed_file, O_WRONLY);
        return create == EACCES && write_existing == EACCES ? 0 : 1;
}

static int child_write_rw(const fixture *f, void *arg)
{
        (void)arg;
        char p[200];
        path_join(p, sizeof(p), f->rw, "new.txt");
        if (try_open(p, O_WRONLY | O_CREAT | O_TRUNC) != 0)
                return 1;
        if (unlink(p) < 0)
                return 2;
        return 0;
}

static nx_landlock_spec fs_spec(const nx_landlock_rule *rules, size_t n)
{
        return (nx_landlock_spec){ .flags = NX_LANDLOCK_FS, .rules = rules, .n_rules = n };
}

static void test_read_allowed_file_ok(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        nx_landlock_rule rules[] = { { f->allowed, NX_LANDLOCK_RO, true } };
        nx_landlock_spec s = fs_spec(rules, 1);
        assert_int_equal(run_restricted(&s, f, child_read_allowed, NULL), 0);
}

/* spec §12 #186 */
static void test_read_sibling_dir_denied(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        nx_landlock_rule rules[] = { { f->allowed, NX_LANDLOCK_RO, true } };
        nx_landlock_spec s = fs_spec(rules, 1);
        assert_int_equal(run_restricted(&s, f, child_read_sibling, NULL), 0);
        assert_int_equal(run_restricted(&s, f, child_list_sibling, NULL), 0);
}

static void test_control_sibling_readable_without_landlock(void **state)
{
        fixture *f = *state;
        nx_landlock_spec none = { 0 };
        /* child_read_sibling expects EACCES: without a restriction it must report failure */
        assert_int_equal(run_restricted(&none, f, child_read_sibling, NULL), 1);
}

static void test_write_to_ro_path_denied(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        nx_landlock_rule rules[] = { { f->allowed, NX_LANDLOCK_RO, true } };
        nx_landlock_spec s = fs_spec(rules, 1);
        assert_int_equal(run_restricted(&s, f, child_write_ro, NULL), 0);
}

static void test_write_to_rw_path_ok(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        nx_landlock_rule rules[] = { { f->allowed, NX_LANDLOCK_RO, true },
                                     { f->rw, NX_LANDLOCK_RW, true } };
        nx_landlock_spec s = fs_spec(rules, 2);
        assert_int_equal(run_restricted(&s, f, child_write_rw, NULL), 0);
}

/* Security review L1: a writable grant given through a symlink (out -> the allowed dir) is
 * refused instead of widening the grant to the link's target. */
static void test_rw_rule_through_symlink_refused(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        char link[200];
        path_join(link, sizeof(link), f->rw, "link-to-allowed");
        (void)unlink(link);
        assert_int_equal(symlink(f->allowed, link), 0);
        nx_landlock_rule rules[] = { { link, NX_LANDLOCK_RW, true } };
        nx_landlock_spec s = fs_spec(rules, 1);
        err_t err = ERR_INIT;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(nx_landlock_apply(&s, NULL, &err) < 0 && strstr(err.msg, "symlink") ? 0 : 1);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        unlink(link);
}

static int child_dev_null(const fixture *f, void *arg)
{
        (void)f;
        (void)arg;
        /* a shell's `> /dev/null` is O_WRONLY|O_CREAT|O_TRUNC on an existing node */
        if (try_open("/dev/null", O_WRONLY | O_CREAT | O_TRUNC) != 0)
                return 1;
        if (try_open("/dev/zero", O_RDONLY) != 0)
                return 2;
        return 0;
}

static void test_dev_rule_allows_dev_null_write(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        nx_landlock_rule rules[] = { { "/dev", NX_LANDLOCK_DEV, true } };
        nx_landlock_spec s = fs_spec(rules, 1);
        assert_int_equal(run_restricted(&s, f, child_dev_null, NULL), 0);
}

static int child_create_in_dev_rule(const fixture *f, void *arg)
{
        (void)arg;
        char p[200];
        path_join(p, sizeof(p), f->allowed, "new.txt");
        return try_open(p, O_WRONLY | O_CREAT) == EACCES ? 0 : 1;
}

static void test_dev_rule_does_not_allow_creating_files(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        nx_landlock_rule rules[] = { { f->allowed, NX_LANDLOCK_DEV, true } };
        nx_landlock_spec s = fs_spec(rules, 1);
        assert_int_equal(run_restricted(&s, f, child_create_in_dev_rule, NULL), 0);
}

static void test_rule_on_a_file_path_works(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        /* read_dir is not valid on a file: the rights are masked instead of EINVAL */
        nx_landlock_rule rules[] = { { f->allowed_file, NX_LANDLOCK_RO, true } };
        nx_landlock_spec s = fs_spec(rules, 1);
        assert_int_equal(run_restricted(&s, f, child_read_allowed, NULL), 0);
        assert_int_equal(run_restricted(&s, f, child_read_sibling, NULL), 0);
}

static void test_missing_required_path_is_error(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        char p[200];
        path_join(p, sizeof(p), f->root, "does-not-exist");
        nx_landlock_rule rules[] = { { p, NX_LANDLOCK_RW, true } };
        nx_landlock_spec s = fs_spec(rules, 1);
        assert_int_equal(run_restricted(&s, f, child_read_allowed, NULL), 100);
        /* the error is raised before restrict_self: safe to check the message here */
        err_t err = ERR_INIT;
        assert_int_equal(nx_landlock_apply(&s, NULL, &err), -1);
        assert_non_null(strstr(err.msg, "does-not-exist"));
}

static int child_apply_report(const fixture *f, void *arg)
{
        (void)f;
        const nx_landlock_spec *s = arg;
        nx_landlock_result res;
        err_t err = ERR_INIT;
        if (nx_landlock_apply(s, &res, &err) < 0)
                return 1;
        return res.applied && res.rules_added == 1 ? 0 : 2;
}

static void test_missing_optional_path_is_skipped(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        char p[200];
        path_join(p, sizeof(p), f->root, "does-not-exist");
        nx_landlock_rule rules[] = { { p, NX_LANDLOCK_RO, false },
                                     { f->allowed, NX_LANDLOCK_RO, true } };
        nx_landlock_spec s = fs_spec(rules, 2);
        nx_landlock_spec none = { 0 };
        assert_int_equal(run_restricted(&none, f, child_apply_report, &s), 0);
}

/* spec §12 #184 */
static void test_empty_spec_is_noop_success(void **state)
{
        fixture *f = *state;
        nx_landlock_spec none = { 0 };
        nx_landlock_result res;
        err_t err = ERR_INIT;
        /* safe in the test process itself: nothing is restricted */
        assert_int_equal(nx_landlock_apply(&none, &res, &err), 0);
        assert_false(res.applied);
        assert_int_equal(try_open(f->sibling_file, O_RDONLY), 0);
}

static int child_nothing(const fixture *f, void *arg)
{
        (void)arg;
        /* no rules at all: even the allowed file is out of reach */
        return try_open(f->allowed_file, O_RDONLY) == EACCES ? 0 : 1;
}

static void test_fs_flag_with_no_rules_denies_everything(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        nx_landlock_spec s = fs_spec(NULL, 0);
        assert_int_equal(run_restricted(&s, f, child_nothing, NULL), 0);
}

static void test_min_abi_too_high_is_error(void **state)
{
        (void)state;
        nx_landlock_rule rules[] = { { "/", NX_LANDLOCK_RO, true } };
        nx_landlock_spec s = fs_spec(rules, 1);
        s.min_abi = 99;
        nx_landlock_result res;
        err_t err = ERR_INIT;
        /* refused before anything is applied: safe in the test process */
        assert_int_equal(nx_landlock_apply(&s, &res, &err), -1);
        char want[64];
        int n = snprintf(want, sizeof(want), "Landlock ABI %d < required 99", nx_landlock_abi());
        assert_true(n > 0 && (size_t)n < sizeof(want));
        assert_string_equal(err.msg, want);
        assert_false(res.applied);
}

static void test_port_zero_rejected(void **state)
{
        (void)state;
        uint16_t ports[] = { 0 };
        nx_landlock_spec s = { .flags = NX_LANDLOCK_NET, .connect_ports = ports,
                               .n_connect_ports = 1 };
        err_t err = ERR_INIT;
        assert_int_equal(nx_landlock_apply(&s, NULL, &err), -1);
        assert_non_null(strstr(err.msg, "port 0 out of range 1-65535"));
}

static void test_too_many_rules_rejected(void **state)
{
        (void)state;
        static nx_landlock_rule rules[NX_LANDLOCK_MAX_RULES + 1];
        for (size_t i = 0; i < NX_LANDLOCK_MAX_RULES + 1; i++)
                rules[i] = (nx_landlock_rule){ "/", NX_LANDLOCK_RO, false };
        nx_landlock_spec s = fs_spec(rules, NX_LANDLOCK_MAX_RULES + 1);
        err_t err = ERR_INIT;
        assert_int_equal(nx_landlock_apply(&s, NULL, &err), -1);
        assert_non_null(strstr(err.msg, "exceed the limit"));
}

static void test_empty_path_rejected(void **state)
{
        (void)state;
        nx_landlock_rule rules[] = { { "", NX_LANDLOCK_RO, false } };
        nx_landlock_spec s = fs_spec(rules, 1);
        err_t err = ERR_INIT;
        assert_int_equal(nx_landlock_apply(&s, NULL, &err), -1);
        assert_non_null(strstr(err.msg, "empty path"));
}

static void test_rights_masks_per_abi(void **state)
{
        (void)state;
        assert_int_equal(nx_landlock_fs_rights(NX_LANDLOCK_RO, 1),
                         LL_EXECUTE | LL_READ_FILE | LL_READ_DIR);
        assert_int_equal(nx_landlock_fs_rights(NX_LANDLOCK_RW, 1), (1ull << 13) - 1);
        assert_int_equal(nx_landlock_fs_rights(NX_LANDLOCK_RW, 2), (1ull << 14) - 1);
        assert_true(nx_landlock_fs_rights(NX_LANDLOCK_RW, 2) & LL_REFER);
        assert_true(nx_landlock_fs_rights(NX_LANDLOCK_RW, 3) & LL_TRUNCATE);
        assert_false(nx_landlock_fs_rights(NX_LANDLOCK_RW, 4) & LL_IOCTL_DEV);
        assert_true(nx_landlock_fs_rights(NX_LANDLOCK_RW, 5) & LL_IOCTL_DEV);
        assert_int_equal(nx_landlock_fs_rights(NX_LANDLOCK_RO, 0), 0);
        uint64_t dev = nx_landlock_fs_rights(NX_LANDLOCK_DEV, 5);
        assert_true(dev & LL_WRITE_FILE);
        assert_false(dev & LL_MAKE_REG);
        assert_false(dev & LL_EXECUTE);
}

static void test_abi_reported(void **state)
{
        (void)state;
        int abi = nx_landlock_abi();
        assert_true(abi >= 0);
        printf("# landlock ABI %d\n", abi);
        if (abi == 0)
                SKIP_BECAUSE("Landlock not available (kernel < 5.13 or not in lsm=)");
}

/* ---- network (ABI >= 4) ------------------------------------------------------------------ */

static int listen_loopback(uint16_t *port)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 8), 0);
        socklen_t len = sizeof(a);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        *port = ntohs(a.sin_port);
        return fd;
}

static int try_connect(uint16_t port)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return errno;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
        int e = errno;
        close(fd);
        return r == 0 ? 0 : e;
}

typedef struct ports {
        uint16_t allowed;
        uint16_t other;
} ports;

static int child_connect(const fixture *f, void *arg)
{
        (void)f;
        const ports *p = arg;
        if (try_connect(p->allowed) != 0)
                return 1;
        if (try_connect(p->other) != EACCES)
                return 2;
        return 0;
}

static void test_connect_only_to_allowed_port(void **state)
{
        fixture *f = *state;
        require_abi(4, "TCP network rules");
        ports p;
        _cleanup_close_ int l1 = listen_loopback(&p.allowed);
        _cleanup_close_ int l2 = listen_loopback(&p.other);
        uint16_t allow[] = { p.allowed };
        nx_landlock_spec s = { .flags = NX_LANDLOCK_NET, .connect_ports = allow,
                               .n_connect_ports = 1 };
        assert_int_equal(run_restricted(&s, f, child_connect, &p), 0);
}

static void test_control_connect_other_port_works_unrestricted(void **state)
{
        fixture *f = *state;
        ports p;
        _cleanup_close_ int l1 = listen_loopback(&p.allowed);
        _cleanup_close_ int l2 = listen_loopback(&p.other);
        nx_landlock_spec none = { 0 };
        assert_int_equal(run_restricted(&none, f, child_connect, &p), 2);
}

static int child_bind(const fixture *f, void *arg)
{
        (void)f;
        (void)arg;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return 1;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(0),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int r = bind(fd, (struct sockaddr *)&a, sizeof(a));
        int e = errno;
        close(fd);
        return r < 0 && e == EACCES ? 0 : 2;
}

static void test_tcp_bind_denied(void **state)
{
        fixture *f = *state;
        require_abi(4, "TCP network rules");
        uint16_t allow[] = { 9080 };
        nx_landlock_spec s = { .flags = NX_LANDLOCK_NET, .connect_ports = allow,
                               .n_connect_ports = 1 };
        assert_int_equal(run_restricted(&s, f, child_bind, NULL), 0);
}

/* ---- scoping (ABI >= 6) ------------------------------------------------------------------ */

static int child_kill_outside(const fixture *f, void *arg)
{
        (void)f;
        pid_t victim = *(pid_t *)arg;
        if (kill(victim, 0) == 0)
                return 1;
        if (errno != EPERM)
                return 2;
        /* a process forked inside the domain can still be signalled */
        pid_t inner = fork();
        if (inner == 0) {
                pause();
                _exit(0);
        }
        if (inner < 0 || kill(inner, SIGKILL) < 0)
                return 3;
        waitpid(inner, NULL, 0);
        return 0;
}

static void test_kill_outside_domain_denied(void **state)
{
        fixture *f = *state;
        require_abi(6, "signal scoping");
        pid_t victim = fork();
        assert_true(victim >= 0);
        if (victim == 0) {
                pause();
                _exit(0);
        }
        nx_landlock_spec s = { .flags = NX_LANDLOCK_SCOPE };
        int r = run_restricted(&s, f, child_kill_outside, &victim);
        kill(victim, SIGKILL);
        waitpid(victim, NULL, 0);
        assert_int_equal(r, 0);
}

static int abstract_listener(struct sockaddr_un *addr, socklen_t *len)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        memset(addr, 0, sizeof(*addr));
        addr->sun_family = AF_UNIX;
        int n = snprintf(addr->sun_path + 1, sizeof(addr->sun_path) - 1, "nx-ll-test-%d",
                         (int)getpid());
        assert_true(n > 0);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
        assert_int_equal(bind(fd, (struct sockaddr *)addr, *len), 0);
        assert_int_equal(listen(fd, 4), 0);
        return fd;
}

typedef struct unix_target {
        struct sockaddr_un addr;
        socklen_t len;
} unix_target;

static int child_abstract_connect(const fixture *f, void *arg)
{
        (void)f;
        const unix_target *t = arg;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return 1;
        int r = connect(fd, (const struct sockaddr *)&t->addr, t->len);
        int e = errno;
        close(fd);
        if (r == 0)
                return 2;
        return e == EPERM ? 0 : 3;
}

static void test_abstract_unix_connect_outside_denied(void **state)
{
        fixture *f = *state;
        require_abi(6, "abstract unix socket scoping");
        unix_target t;
        _cleanup_close_ int l = abstract_listener(&t.addr, &t.len);
        nx_landlock_spec s = { .flags = NX_LANDLOCK_SCOPE };
        assert_int_equal(run_restricted(&s, f, child_abstract_connect, &t), 0);
}

static void test_control_abstract_unix_connect_works_unrestricted(void **state)
{
        fixture *f = *state;
        unix_target t;
        _cleanup_close_ int l = abstract_listener(&t.addr, &t.len);
        nx_landlock_spec none = { 0 };
        assert_int_equal(run_restricted(&none, f, child_abstract_connect, &t), 2);
}

static int child_full_result(const fixture *f, void *arg)
{
        (void)f;
        (void)arg;
        nx_landlock_rule rules[] = { { "/", NX_LANDLOCK_RO, true } };
        uint16_t p[] = { 9080 };
        nx_landlock_spec s = { .flags = NX_LANDLOCK_FS | NX_LANDLOCK_NET | NX_LANDLOCK_SCOPE,
                               .rules = rules, .n_rules = 1, .connect_ports = p,
                               .n_connect_ports = 1, .min_abi = 1 };
        nx_landlock_result res;
        err_t err = ERR_INIT;
        if (nx_landlock_apply(&s, &res, &err) < 0)
                return 1;
        if (!res.applied || res.abi != nx_landlock_abi())
                return 2;
        if (res.handled_fs != nx_landlock_fs_rights(NX_LANDLOCK_RW, res.abi))
                return 3;
        if ((res.abi >= 4) != (res.handled_net == 3))
                return 4;
        if ((res.abi >= 6) != (res.scoped == 3))
                return 5;
        return 0;
}

static void test_result_reports_handled_masks(void **state)
{
        fixture *f = *state;
        require_abi(1, "filesystem rules");
        nx_landlock_spec none = { 0 };
        assert_int_equal(run_restricted(&none, f, child_full_result, NULL), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_abi_reported, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_allowed_file_ok, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_sibling_dir_denied, setup, teardown),
                cmocka_unit_test_setup_teardown(test_control_sibling_readable_without_landlock,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_to_ro_path_denied, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_to_rw_path_ok, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rw_rule_through_symlink_refused, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_dev_rule_allows_dev_null_write, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_dev_rule_does_not_allow_creating_files,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_rule_on_a_file_path_works, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_required_path_is_error, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_missing_optional_path_is_skipped, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_empty_spec_is_noop_success, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fs_flag_with_no_rules_denies_everything,
                                                setup, teardown),
                cmocka_unit_test(test_min_abi_too_high_is_error),
                cmocka_unit_test(test_port_zero_rejected),
                cmocka_unit_test(test_too_many_rules_rejected),
                cmocka_unit_test(test_empty_path_rejected),
                cmocka_unit_test(test_rights_masks_per_abi),
                cmocka_unit_test_setup_teardown(test_connect_only_to_allowed_port, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_control_connect_other_port_works_unrestricted,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_tcp_bind_denied, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kill_outside_domain_denied, setup, teardown),
                cmocka_unit_test_setup_teardown(test_abstract_unix_connect_outside_denied, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(
                        test_control_abstract_unix_connect_works_unrestricted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_result_reports_handled_masks, setup,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

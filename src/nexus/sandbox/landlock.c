/* sandbox/landlock.c — see landlock.h.
 *
 * The uapi constants are spelled out here (with an NXLL_ prefix) because the distribution's
 * <linux/landlock.h> can be older than the running kernel (Debian 12 ships ABI 2 headers);
 * the values are kernel ABI and never change. */
#include "sandbox/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

#define NXLL_CREATE_RULESET_VERSION (1u << 0)
#define NXLL_RULE_PATH_BENEATH 1
#define NXLL_RULE_NET_PORT 2

#define NXLL_FS_EXECUTE (1ull << 0)
#define NXLL_FS_WRITE_FILE (1ull << 1)
#define NXLL_FS_READ_FILE (1ull << 2)
#define NXLL_FS_READ_DIR (1ull << 3)
#define NXLL_FS_V1_ALL ((1ull << 13) - 1)   /* the 13 rights of ABI 1 */
#define NXLL_FS_REFER (1ull << 13)          /* ABI 2 */
#define NXLL_FS_TRUNCATE (1ull << 14)       /* ABI 3 */
#define NXLL_FS_IOCTL_DEV (1ull << 15)      /* ABI 5 */
/* Rights that may be granted on a non-directory (the kernel refuses the others: EINVAL). */
#define NXLL_FS_FILE_RIGHTS (NXLL_FS_EXECUTE | NXLL_FS_WRITE_FILE | NXLL_FS_READ_FILE | \
                             NXLL_FS_TRUNCATE | NXLL_FS_IOCTL_DEV)

#define NXLL_NET_BIND_TCP (1ull << 0)       /* ABI 4 */
#define NXLL_NET_CONNECT_TCP (1ull << 1)

#define NXLL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0)   /* ABI 6 */
#define NXLL_SCOPE_SIGNAL (1ull << 1)

struct nxll_ruleset_attr {
        uint64_t handled_access_fs;
        uint64_t handled_access_net;
        uint64_t scoped;
};

struct nxll_path_beneath_attr {
        uint64_t allowed_access;
        int32_t parent_fd;
} __attribute__((packed));

struct nxll_net_port_attr {
        uint64_t allowed_access;
        uint64_t port;
};

int nx_landlock_abi(void)
{
        long r = syscall(SYS_landlock_create_ruleset, NULL, 0, NXLL_CREATE_RULESET_VERSION);
        return r < 0 ? 0 : (int)r;
}

static uint64_t fs_handled(int abi)
{
        uint64_t m = 0;
        if (abi >= 1)
                m |= NXLL_FS_V1_ALL;
        if (abi >= 2)
                m |= NXLL_FS_REFER;
        if (abi >= 3)
                m |= NXLL_FS_TRUNCATE;
        if (abi >= 5)
                m |= NXLL_FS_IOCTL_DEV;
        return m;
}

uint64_t nx_landlock_fs_rights(nx_landlock_access access, int abi)
{
        uint64_t all = fs_handled(abi);
        switch (access) {
        case NX_LANDLOCK_RO:
                return all & (NXLL_FS_EXECUTE | NXLL_FS_READ_FILE | NXLL_FS_READ_DIR);
        case NX_LANDLOCK_RW:
                return all;
        case NX_LANDLOCK_DEV:
                /* Opening /dev/null for writing, tty ioctls; no creating or removing nodes. */
                return all & (NXLL_FS_READ_FILE | NXLL_FS_WRITE_FILE | NXLL_FS_TRUNCATE |
                              NXLL_FS_IOCTL_DEV);
        default:
                return 0;
        }
}

static int validate(const nx_landlock_spec *spec, err_t *err)
{
        if (spec->n_rules > NX_LANDLOCK_MAX_RULES)
                return err_set(err, "landlock: %zu path rules exceed the limit of %d",
                               spec->n_rules, NX_LANDLOCK_MAX_RULES);
        if (spec->n_connect_ports > NX_LANDLOCK_MAX_PORTS)
                return err_set(err, "landlock: %zu connect ports exceed the limit of %d",
                               spec->n_connect_ports, NX_LANDLOCK_MAX_PORTS);
        if (spec->n_rules > 0 && !spec->rules)
                return err_set(err, "landlock: rules missing");
        if (spec->n_connect_ports > 0 && !spec->connect_ports)
                return err_set(err, "landlock: connect ports missing");
        for (size_t i = 0; i < spec->n_rules; i++) {
                const nx_landlock_rule *r = &spec->rules[i];
                if (!r->path || !r->path[0])
                        return err_set(err, "landlock: rule %zu has an empty path", i);
                if (r->access != NX_LANDLOCK_RO && r->access != NX_LANDLOCK_RW &&
                    r->access != NX_LANDLOCK_DEV)
                        return err_set(err, "landlock: rule for \"%s\" has unknown access %d",
                                       r->path, (int)r->access);
        }
        for (size_t i = 0; i < spec->n_connect_ports; i++) {
                if (spec->connect_ports[i] == 0)
                        return err_set(err, "landlock: connect port 0 out of range 1-65535");
        }
        if (spec->min_abi < 0)
                return err_set(err, "landlock: required ABI %d is negative", spec->min_abi);
        return 0;
}

/* Adds one path-beneath rule. Returns 1 if added, 0 if skipped (absent, not required). */
static int add_path_rule(int ruleset_fd, const nx_landlock_rule *r, int abi, err_t *err)
{
        /* A writable grant never follows a symlink: a link planted in the workspace by an
         * earlier run (out -> /workspace) would otherwise widen a writable root to its
         * target. Read-only and device grants may follow links (system trees use them). */
        _cleanup_close_ int fd = -1;
        if (r->access == NX_LANDLOCK_RW) {
                struct open_how how = { .flags = O_PATH | O_CLOEXEC,
                                        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
                fd = (int)syscall(SYS_openat2, AT_FDCWD, r->path, &how, sizeof(how));
                if (fd < 0 && errno == ELOOP)
                        return err_set(err, "landlock: writable path \"%s\" contains a symlink",
                                       r->path);
        } else {
                fd = open(r->path, O_PATH | O_CLOEXEC);
        }
        if (fd < 0) {
                if ((errno == ENOENT || errno == ENOTDIR) && !r->required)
                        return 0;
                return err_errno(err, errno, "landlock: open \"%s\"", r->path);
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return err_errno(err, errno, "landlock: stat \"%s\"", r->path);
        uint64_t rights = nx_landlock_fs_rights(r->access, abi);
        if (!S_ISDIR(st.st_mode))
                rights &= NXLL_FS_FILE_RIGHTS;
        if (rights == 0)
                return 0;
        struct nxll_path_beneath_attr attr = { .allowed_access = rights, .parent_fd = fd };
        if (syscall(SYS_landlock_add_rule, ruleset_fd, NXLL_RULE_PATH_BENEATH, &attr, 0) < 0)
                return err_errno(err, errno, "landlock: add rule for \"%s\"", r->path);
        return 1;
}

int nx_landlock_apply(const nx_landlock_spec *spec, nx_landlock_result *out, err_t *err)
{
        nx_landlock_result res = { 0 };
        if (out)
                *out = res;
        if (validate(spec, err) < 0)
                return -1;
        res.abi = nx_landlock_abi();
        if (out)
                out->abi = res.abi;
        if (res.abi < spec->min_abi)
                return err_setc(err, ERR_SYSTEM, "Landlock ABI %d < required %d", res.abi,
                                spec->min_abi);
        if (spec->flags == 0 || res.abi == 0)
                return 0;   /* spec §12 #184: nothing to restrict; or best effort without LL */

        struct nxll_ruleset_attr attr = { 0 };
        if (spec->flags & NX_LANDLOCK_FS)
                attr.handled_access_fs = fs_handled(res.abi);
        if ((spec->flags & NX_LANDLOCK_NET) && res.abi >= 4)
                attr.handled_access_net = NXLL_NET_BIND_TCP | NXLL_NET_CONNECT_TCP;
        if ((spec->flags & NX_LANDLOCK_SCOPE) && res.abi >= 6)
                attr.scoped = NXLL_SCOPE_ABSTRACT_UNIX_SOCKET | NXLL_SCOPE_SIGNAL;
        if (!attr.handled_access_fs && !attr.handled_access_net && !attr.scoped)
                return 0;   /* e.g. only NET asked on ABI < 4: nothing this kernel can do */

        /* The whole struct is passed on every ABI: the kernel accepts a longer struct than it
         * knows when the unknown tail is zero, which is the case for fields of later ABIs. */
        _cleanup_close_ int ruleset_fd = (int)syscall(SYS_landlock_create_ruleset, &attr,
                                                      sizeof(attr), 0);
        if (ruleset_fd < 0)
                return err_errno(err, errno, "landlock: create ruleset (ABI %d)", res.abi);

        if (attr.handled_access_fs) {
                for (size_t i = 0; i < spec->n_rules; i++) {
                        int r = add_path_rule(ruleset_fd, &spec->rules[i], res.abi, err);
                        if (r < 0)
                                return -1;
                        res.rules_added += (size_t)r;
                }
        }
        if (attr.handled_access_net) {
                for (size_t i = 0; i < spec->n_connect_ports; i++) {
                        struct nxll_net_port_attr np = {
                                .allowed_access = NXLL_NET_CONNECT_TCP,
                                .port = spec->connect_ports[i],
                        };
                        if (syscall(SYS_landlock_add_rule, ruleset_fd, NXLL_RULE_NET_PORT, &np,
                                    0) < 0)
                                return err_errno(err, errno, "landlock: allow connect to port %u",
                                                 (unsigned)spec->connect_ports[i]);
                }
        }
        /* Required for restrict_self without CAP_SYS_ADMIN; also what keeps a setuid binary
         * from shedding the domain. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return err_errno(err, errno, "landlock: set no_new_privs");
        if (syscall(SYS_landlock_restrict_self, ruleset_fd, 0) < 0)
                return err_errno(err, errno, "landlock: restrict self");
        res.applied = true;
        res.handled_fs = attr.handled_access_fs;
        res.handled_net = attr.handled_access_net;
        res.scoped = attr.scoped;
        if (out)
                *out = res;
        return 0;
}

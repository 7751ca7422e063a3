/* tests/unit/test_ms_policy_property.c — property test of the policy engine (issue #4: "for
 * random policy stacks, the merged policy never allows what a higher scope forbids").
 *
 * 2,000 deterministic random stacks of 1-6 policies (seeded xorshift PRNG) with random fs, net,
 * approval and device sections and a random request and profile. For every policy P in the
 * stack, the resolution must respect P on its own:
 *   - fs: every effective read/write path is covered (§6.2) by P's list when P.fs is set;
 *   - net: effective rank <= rank(P.net), and every effective allowlist entry is covered by
 *     P's allowlist when P.net is an allowlist;
 *   - approval: the verdict is at least every rule value of P that fires;
 *   - device: merged allowed ⊆ each non-empty P.allowed (every pattern equal to or covered by
 *     one of P's), merged denied/approval_required ⊇ P's; and no capability that P denies or
 *     leaves out of a non-empty allowed list is evaluated as allowed. */
#include "testutil.h"
#include "policy/policy.h"

#include <string.h>

#define STACKS 2000
#define MAX_POLICIES 6

static uint64_t rng_state;

static uint64_t rnd(void)
{
        uint64_t x = rng_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng_state = x;
        return x * 0x2545F4914F6CDD1DULL;
}

static size_t pick(size_t n)
{
        return (size_t)(rnd() % n);
}

static bool chance(unsigned pct)
{
        return pick(100) < pct;
}

#define N(a) (sizeof(a) / sizeof(*(a)))

static const char *const fs_pool[] = { "/", "/workspace", "workspace:**", "/workspace/src",
                                       "/workspace/src/a", "/tmp", "/tmp/x", "/etc",
                                       "/workspace/../etc", "/home/u", "workspace",
                                       "/workspace/./src/" };
static const char *const net_pool[] = { "github.com:443", "*.github.com:443",
                                        "api.github.com:443", "x.api.github.com:443",
                                        "*.api.github.com:443", "a.com:80", "a.com:443",
                                        "*.a.com:80", "b.a.com:80", "evil.com:443",
                                        "GitHub.com:443" };
static const char *const dev_pool[] = { "*", "camera.*", "camera.snap", "camera.record",
                                        "audio.*", "audio.record", "location.get", "sms.send",
                                        "camera.x.*", "camera.x.y" };
static const char *const caps[] = { "camera.snap", "camera.record", "camera.x.y", "camera.x.z",
                                    "audio.record", "audio.play", "location.get", "sms.send",
                                    "camera", "other" };
static const char *const tiers[] = { "skip", "needs_approval", "forbidden" };
static const char *const rule_keys[] = { "host_profile", "net_unrestricted",
                                         "fs_outside_workspace", "default" };
static const char *const profiles[] = { "untrusted", "trusted", "host", "darwin-automation",
                                        "other" };

static json_t *subset(const char *const *pool, size_t n, size_t max)
{
        json_t *a = json_array();
        size_t k = pick(max + 1);
        for (size_t i = 0; i < k; i++)
                json_array_append_new(a, json_string(pool[pick(n)]));
        return a;
}

static json_t *rand_fs(void)
{
        json_t *o = json_object();
        if (chance(30))
                return o;
        if (chance(90))
                json_object_set_new(o, "read", subset(fs_pool, N(fs_pool), 4));
        if (chance(90))
                json_object_set_new(o, "write", subset(fs_pool, N(fs_pool), 3));
        return o;
}

static json_t *rand_net(void)
{
        switch (pick(5)) {
        case 0:
        case 1:
                return json_object();
        case 2:
                return json_pack("{s:s}", "mode", "none");
        case 3:
                return json_pack("{s:s}", "mode", "unrestricted");
        default: {
                json_t *allow = subset(net_pool, N(net_pool), 4);
                if (json_array_size(allow) == 0 && chance(70))
                        json_array_append_new(allow, json_string(net_pool[pick(N(net_pool))]));
                return json_pack("{s:s, s:o}", "mode", "allowlist", "allow", allow);
        }
        }
}

static json_t *rand_approval(void)
{
        json_t *o = json_object();
        for (size_t i = 0; i < N(rule_keys); i++)
                if (chance(35))
                        json_object_set_new(o, rule_keys[i], json_string(tiers[pick(3)]));
        return o;
}

static json_t *rand_device(void)
{
        json_t *o = json_object();
        if (chance(40))
                return o;
        if (chance(80))
                json_object_set_new(o, "allowed", subset(dev_pool, N(dev_pool), 4));
        if (chance(50))
                json_object_set_new(o, "denied", subset(dev_pool, N(dev_pool), 2));
        if (chance(50))
                json_object_set_new(o, "approval_required", subset(dev_pool, N(dev_pool), 2));
        return o;
}

static int tier_rank(const char *s)
{
        for (int i = 0; i < 3; i++)
                if (s && strcmp(s, tiers[i]) == 0)
                        return i;
        return 0;
}

static const char *dump(const json_t *v)
{
        static char buf[4096];
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, sizeof(buf), "%s", s ? s : "NULL");
        free(s);
        return buf;
}

static void check_fs(const json_t *eff_fs, const ms_policy *p, int stack)
{
        static const char *const keys[] = { "read", "write" };
        for (size_t k = 0; k < 2; k++) {
                const json_t *got = json_object_get(eff_fs, keys[k]);
                const json_t *lim = json_object_get(p->fs, keys[k]);
                size_t i;
                json_t *e;
                json_array_foreach(got, i, e)
                        if (!mspol_fs_covered(json_string_value(e), lim))
                                fail_msg("stack %d: effective fs.%s entry %s not covered by "
                                         "policy %s fs %s", stack, keys[k], json_string_value(e),
                                         p->id, dump(p->fs));
        }
}

static void check_net(const json_t *eff_net, const ms_policy *p, int stack)
{
        int re = mspol_net_rank(eff_net), rp = mspol_net_rank(p->net);
        if (re > rp)
                fail_msg("stack %d: effective net %s ranks above policy %s net %s", stack,
                         dump(eff_net), p->id, dump(p->net));
        if (rp != 1 || re != 1)
                return;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(eff_net, "allow"), i, e)
                if (!mspol_net_entry_covered(json_string_value(e), json_object_get(p->net,
                                                                                     "allow")))
                        fail_msg("stack %d: effective allow entry %s not covered by policy %s "
                                 "net %s", stack, json_string_value(e), p->id, dump(p->net));
}

static bool fires(const char *key, const json_t *eff, const char *profile)
{
        if (strcmp(key, "host_profile") == 0)
                return strcmp(profile, "host") == 0;
        if (strcmp(key, "net_unrestricted") == 0) {
                const char *m = json_string_value(json_object_get(json_object_get(eff, "net"),
                                                                  "mode"));
                return m && strcmp(m, "unrestricted") == 0;
        }
        if (strcmp(key, "fs_outside_workspace") == 0) {
                json_t *ws = json_pack("[s]", "/workspace");
                bool out = false;
                size_t i;
                json_t *e;
                json_array_foreach(json_object_get(json_object_get(eff, "fs"), "write"), i, e)
                        if (!mspol_fs_covered(json_string_value(e), ws))
                                out = true;
                json_decref(ws);
                return out;
        }
        return false;
}

static void check_approval(const mspol_resolution *r, const ms_policy *p, const char *profile,
                           int stack)
{
        const char *k;
        json_t *v;
        json_object_foreach(p->approval, k, v) {
                if (!fires(k, r->effective, profile))
                        continue;
                if (tier_rank(r->verdict) < tier_rank(json_string_value(v)))
                        fail_msg("stack %d: verdict %s below fired rule %s=%s of policy %s",
                                 stack, r->verdict, k, json_string_value(v), p->id);
        }
}

static bool contains(const json_t *arr, const char *s)
{
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e)
                if (strcmp(json_string_value(e), s) == 0)
                        return true;
        return false;
}

static void check_device(const json_t *merged, const ms_policy *ps, size_t n, int stack)
{
        const json_t *allowed = json_object_get(merged, "allowed");
        for (size_t pi = 0; pi < n; pi++) {
                const json_t *pal = json_object_get(ps[pi].device, "allowed");
                size_t i;
                json_t *e;
                if (json_array_size(pal) > 0) {
                        json_array_foreach(allowed, i, e) {
                                const char *m = json_string_value(e);
                                bool ok = false;
                                size_t j;
                                json_t *x;
                                json_array_foreach(pal, j, x)
                                        if (strcmp(json_string_value(x), m) == 0 ||
                                            mspol_dev_covers(json_string_value(x), m))
                                                ok = true;
                                if (!ok)
                                        fail_msg("stack %d: merged allowed %s exceeds policy "
                                                 "%s allowed %s", stack, m, ps[pi].id,
                                                 dump(pal));
                        }
                }
                static const char *const unioned[] = { "denied", "approval_required" };
                for (size_t u = 0; u < 2; u++)
                        json_array_foreach(json_object_get(ps[pi].device, unioned[u]), i, e)
                                if (!contains(json_object_get(merged, unioned[u]),
                                              json_string_value(e)))
                                        fail_msg("stack %d: merged %s lacks %s of policy %s",
                                                 stack, unioned[u], json_string_value(e),
                                                 ps[pi].id);
        }
        /* semantic: nothing a single policy forbids comes out allowed */
        for (size_t c = 0; c < N(caps); c++) {
                const char *v = mspol_dev_evaluate(caps[c], merged, NULL);
                if (strcmp(v, "denied") == 0)
                        continue;
                for (size_t pi = 0; pi < n; pi++) {
                        const json_t *d = ps[pi].device;
                        const json_t *pal = json_object_get(d, "allowed");
                        if ((json_array_size(pal) > 0 && !mspol_dev_matches(caps[c], pal)) ||
                            mspol_dev_matches(caps[c], json_object_get(d, "denied")))
                                fail_msg("stack %d: %s evaluated %s though policy %s device %s "
                                         "refuses it", stack, caps[c], v, ps[pi].id, dump(d));
                        if (strcmp(v, "allowed") == 0 &&
                            mspol_dev_matches(caps[c], json_object_get(d, "approval_required")))
                                fail_msg("stack %d: %s allowed without approval though policy "
                                         "%s requires it", stack, caps[c], ps[pi].id);
                }
        }
}

static void run_stack(int stack)
{
        ms_policy ps[MAX_POLICIES];
        size_t n = 1 + pick(MAX_POLICIES);
        for (size_t i = 0; i < n; i++) {
                memset(&ps[i], 0, sizeof(ps[i]));
                snprintf(ps[i].id, sizeof(ps[i].id), "p%zu", i);
                ps[i].priority = (int64_t)i;
                ps[i].fs = rand_fs();
                ps[i].net = rand_net();
                ps[i].secrets = json_object();
                ps[i].sandbox_profile_rules = json_object();
                ps[i].approval = rand_approval();
                ps[i].device = rand_device();
        }
        json_t *req = json_pack("{s:o, s:o}", "fs", rand_fs(), "net", rand_net());
        const char *profile = profiles[pick(N(profiles))];
        mspol_resolution r;
        err_t err = ERR_INIT;
        assert_int_equal(mspol_resolve(ps, n, profile, req, 1772202622123LL, &r, &err), 0);
        const json_t *eff_fs = json_object_get(r.effective, "fs");
        const json_t *eff_net = json_object_get(r.effective, "net");
        for (size_t i = 0; i < n; i++) {
                if (!mspol_blank(ps[i].fs))
                        check_fs(eff_fs, &ps[i], stack);
                if (!mspol_blank(ps[i].net))
                        check_net(eff_net, &ps[i], stack);
                check_approval(&r, &ps[i], profile, stack);
        }
        /* the requested fs can only narrow (§6.6 step 4) */
        if (!mspol_blank(json_object_get(req, "fs"))) {
                ms_policy asreq = { .fs = json_object_get(req, "fs") };
                snprintf(asreq.id, sizeof(asreq.id), "request");
                check_fs(eff_fs, &asreq, stack);
        }
        json_t *dm = mspol_dev_merge(ps, n);
        assert_non_null(dm);
        check_device(dm, ps, n, stack);
        json_decref(dm);
        json_t *m = mspol_merge(ps, n);
        assert_non_null(m);
        const json_t *mdev = json_object_get(m, "device");
        if (json_is_array(json_object_get(mdev, "allowed")))
                check_device(mdev, ps, n, stack);
        json_decref(m);
        mspol_resolution_clear(&r);
        json_decref(req);
        for (size_t i = 0; i < n; i++) {
                json_decref(ps[i].fs);
                json_decref(ps[i].net);
                json_decref(ps[i].secrets);
                json_decref(ps[i].sandbox_profile_rules);
                json_decref(ps[i].approval);
                json_decref(ps[i].device);
        }
}

static void test_random_stacks_never_widen_any_policy(void **state)
{
        rng_state = 0x9E3779B97F4A7C15ULL;
        for (int s = 0; s < STACKS; s++)
                run_stack(s);
}

static void test_random_stacks_second_seed(void **state)
{
        rng_state = 0xD1B54A32D192ED03ULL;
        for (int s = 0; s < STACKS; s++)
                run_stack(s);
}

/* The properties must be able to fail: the REF quirk (a requested allowlist taken as is)
 * violates the net property, which the checker notices. */
static void test_checker_detects_ref_net_quirk(void **state)
{
        json_t *pnet = json_pack("{s:s, s:[s]}", "mode", "allowlist", "allow", "github.com:443");
        json_t *req = json_pack("{s:s, s:[s]}", "mode", "allowlist", "allow", "evil.com:443");
        assert_false(mspol_net_entry_covered("evil.com:443", json_object_get(pnet, "allow")));
        json_t *eff = mspol_net_effective(pnet, req);
        assert_int_equal(mspol_net_rank(eff), 0);
        json_decref(eff);
        json_decref(pnet);
        json_decref(req);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_random_stacks_never_widen_any_policy),
                cmocka_unit_test(test_random_stacks_second_seed),
                cmocka_unit_test(test_checker_detects_ref_net_quirk),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

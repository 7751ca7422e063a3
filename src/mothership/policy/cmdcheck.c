/* policy/cmdcheck.c — the CommandValidator (spec mothership §6.8).
 *
 * Every pattern F1-F11 and A1-A8 is a hand-written scanner, not a regular expression: each one
 * walks the command once (a bounded number of look-ahead bytes per position, each look-ahead
 * region owned by one anchor), so a 64 KiB command costs O(n) per pattern whatever it holds —
 * there is no backtracking to blow up. F1/F2, the only patterns with optional parts that can
 * cross line feeds, simulate their small automaton as a set of boolean states.
 *
 * Semantics (§6.8): word characters are ASCII [A-Za-z0-9_]; "the word X" has a word boundary
 * on both sides; whitespace is SPACE TAB CR LF FF VT; "any characters" never crosses a line
 * feed; "end of line" is the end of the string or just before a line feed. Matching is
 * case-sensitive except F7, and ignores quoting, as in the reference. */
#include "policy/policy.h"

#include <string.h>

typedef struct cmd {
        const unsigned char *s;
        size_t n;
} cmd;

static bool is_word(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
}

static bool is_alpha(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_ws(unsigned char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static unsigned char lower(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Does literal lit start at i? */
static bool lit_at(const cmd *c, size_t i, const char *lit)
{
        size_t l = strlen(lit);
        return i <= c->n && c->n - i >= l && memcmp(c->s + i, lit, l) == 0;
}

/* The word w (lower-case; compared case-insensitively when icase) at i, with boundaries. */
static bool word_at(const cmd *c, size_t i, const char *w, bool icase)
{
        size_t l = strlen(w);
        if (i > c->n || c->n - i < l || (i > 0 && is_word(c->s[i - 1])))
                return false;
        for (size_t k = 0; k < l; k++) {
                unsigned char ch = icase ? lower(c->s[i + k]) : c->s[i + k];
                if (ch != (unsigned char)w[k])
                        return false;
        }
        return i + l == c->n || !is_word(c->s[i + l]);
}

static size_t skip_ws(const cmd *c, size_t j)
{
        while (j < c->n && is_ws(c->s[j]))
                j++;
        return j;
}

/* Skips whitespace other than LF, then: at the end of a line? ("\s*$" — \s* may run over a
 * LF, but $ already holds in front of it.) */
static bool ws_to_eol(const cmd *c, size_t j)
{
        while (j < c->n && is_ws(c->s[j]) && c->s[j] != '\n')
                j++;
        return j == c->n || c->s[j] == '\n';
}

/* F1/F2: word rm, whitespace, then (cluster "-" letters containing need1, whitespace,
 * optionally cluster "-" letters containing need2, whitespace) or longopt ending at a word
 * boundary; then any characters; then "/" followed only by whitespace to the end of a line. */
enum { RM_R, RM_M, WS1, DASH1, C1, C1T, W2, DASH2, C2, C2T, W3, LEND, DOT, TAIL, RM_NSTATES };

static bool rm_at_root(const cmd *c, unsigned char need1, unsigned char need2,
                       const char *longopt)
{
        bool st[RM_NSTATES] = { false }, nx[RM_NSTATES];
        size_t lidx = 0, llen = strlen(longopt);
        for (size_t k = 0; k <= c->n; k++) {
                bool end = k == c->n;
                unsigned char ch = end ? 0 : c->s[k];
                if (st[TAIL] && (end || ch == '\n'))
                        return true;
                if (end)
                        break;
                /* positions where ".*" may be: after cluster whitespace, inside it, or right
                 * after the long option when a word boundary follows */
                bool dot = st[DOT] || st[W2] || st[W3] || (st[LEND] && !is_word(ch));
                memset(nx, 0, sizeof(nx));
                nx[RM_R] = ch == 'r' && (k == 0 || !is_word(c->s[k - 1]));
                nx[RM_M] = st[RM_R] && ch == 'm';
                nx[WS1] = (st[RM_M] || st[WS1]) && is_ws(ch);
                nx[DASH1] = st[WS1] && ch == '-';
                size_t nl = 0;
                if (st[WS1] && ch == (unsigned char)longopt[0])
                        nl = 1;
                else if (lidx > 0 && ch == (unsigned char)longopt[lidx])
                        nl = lidx + 1;
                if (nl == llen) {
                        nx[LEND] = true;
                        nl = 0;
                }
                bool from1 = st[DASH1] || st[C1];
                nx[C1] = from1 && is_alpha(ch) && ch != need1;
                nx[C1T] = (from1 && ch == need1) || (st[C1T] && is_alpha(ch));
                nx[W2] = (st[C1T] || st[W2]) && is_ws(ch);
                nx[DASH2] = st[W2] && ch == '-';
                bool from2 = st[DASH2] || st[C2];
                nx[C2] = from2 && is_alpha(ch) && ch != need2;
                nx[C2T] = (from2 && ch == need2) || (st[C2T] && is_alpha(ch));
                nx[W3] = (st[C2T] || st[W3]) && is_ws(ch);
                nx[DOT] = dot && ch != '\n';
                nx[TAIL] = (dot && ch == '/') || (st[TAIL] && is_ws(ch) && ch != '\n');
                memcpy(st, nx, sizeof(st));
                lidx = nl;
        }
        return false;
}

static bool f1_rm_recursive_root(const cmd *c)
{
        return rm_at_root(c, 'r', 'f', "--recursive");
}

static bool f2_rm_forced_root(const cmd *c)
{
        return rm_at_root(c, 'f', 'r', "--force");
}

static bool any_word(const cmd *c, const char *w)
{
        for (size_t i = 0; i < c->n; i++)
                if (c->s[i] == (unsigned char)w[0] && word_at(c, i, w, false))
                        return true;
        return false;
}

static bool f3_mkfs(const cmd *c)
{
        return any_word(c, "mkfs");
}

/* F4: word dd, later (same line) word of, \s*, "=", \s*, "/dev/". */
static bool f4_dd_to_dev(const cmd *c)
{
        bool dd_seen = false;
        for (size_t i = 0; i < c->n; i++) {
                if (c->s[i] == '\n') {
                        dd_seen = false;
                        continue;
                }
                if (dd_seen && word_at(c, i, "of", false)) {
                        size_t j = skip_ws(c, i + 2);
                        if (j < c->n && c->s[j] == '=' && lit_at(c, skip_ws(c, j + 1), "/dev/"))
                                return true;
                }
                if (word_at(c, i, "dd", false))
                        dd_seen = true;
        }
        return false;
}

static bool f5_sudo(const cmd *c)
{
        return any_word(c, "sudo");
}

/* F6: word su, \s+, optional "-", \s*, a word character. */
static bool f6_su(const cmd *c)
{
        for (size_t i = 0; i < c->n; i++) {
                if (!word_at(c, i, "su", false) || i + 2 >= c->n || !is_ws(c->s[i + 2]))
                        continue;
                size_t j = skip_ws(c, i + 2);
                if (j < c->n && c->s[j] == '-')
                        j = skip_ws(c, j + 1);
                if (j < c->n && is_word(c->s[j]))
                        return true;
        }
        return false;
}

/* F7 (case-insensitive): word chmod, \s+, [0-7]*, "s". */
static bool f7_setuid(const cmd *c)
{
        for (size_t i = 0; i < c->n; i++) {
                if (!word_at(c, i, "chmod", true) || i + 5 >= c->n || !is_ws(c->s[i + 5]))
                        continue;
                size_t j = skip_ws(c, i + 5);
                while (j < c->n && c->s[j] >= '0' && c->s[j] <= '7')
                        j++;
                if (j < c->n && lower(c->s[j]) == 's')
                        return true;
        }
        return false;
}

/* F8: word chown, exactly one whitespace character, any characters, "root". The whitespace may
 * be a LF: the "any characters" then run on the next line. */
static bool f8_chown_root(const cmd *c)
{
        const size_t none = (size_t)-1;
        size_t arm = none;              /* earliest start of ".*root" on the current line */
        bool arm_next_line = false;     /* a "chown\n" arms the next line from its start */
        for (size_t k = 0; k < c->n; k++) {
                if (c->s[k] == '\n') {
                        arm = arm_next_line ? k + 1 : none;
                        arm_next_line = false;
                        continue;
                }
                if (arm != none && arm <= k && lit_at(c, k, "root"))
                        return true;
                if (word_at(c, k, "chown", false) && k + 5 < c->n && is_ws(c->s[k + 5])) {
                        if (c->s[k + 5] == '\n')
                                arm_next_line = true;
                        else if (arm == none)
                                arm = k + 6;
                }
        }
        return false;
}

/* F9: ":()" \s* "{" \s* ":|:" \s* "&" \s* "}" \s* ";"? \s* ":". */
static bool f9_fork_bomb(const cmd *c)
{
        static const char *const tokens[] = { "{", ":|:", "&", "}" };
        for (size_t i = 0; i < c->n; i++) {
                if (!lit_at(c, i, ":()"))
                        continue;
                size_t j = i + 3;
                bool ok = true;
                for (size_t t = 0; ok && t < sizeof(tokens) / sizeof(*tokens); t++) {
                        j = skip_ws(c, j);
                        ok = lit_at(c, j, tokens[t]);
                        j += strlen(tokens[t]);
                }
                if (!ok)
                        continue;
                j = skip_ws(c, j);
                if (j < c->n && c->s[j] == ';')
                        j = skip_ws(c, j + 1);
                if (j < c->n && c->s[j] == ':')
                        return true;
        }
        return false;
}

/* F10/F11: word w, any characters (same line), "|", \s*, "sh" or "bash" then a boundary. */
static bool pipe_to_shell(const cmd *c, const char *w)
{
        bool seen = false;
        for (size_t k = 0; k < c->n; k++) {
                if (c->s[k] == '\n') {
                        seen = false;
                        continue;
                }
                if (seen && c->s[k] == '|') {
                        size_t j = skip_ws(c, k + 1);
                        if ((lit_at(c, j, "sh") && (j + 2 == c->n || !is_word(c->s[j + 2]))) ||
                            (lit_at(c, j, "bash") && (j + 4 == c->n || !is_word(c->s[j + 4]))))
                                return true;
                }
                if (c->s[k] == (unsigned char)w[0] && word_at(c, k, w, false))
                        seen = true;
        }
        return false;
}

static bool f10_curl_sh(const cmd *c)
{
        return pipe_to_shell(c, "curl");
}

static bool f11_wget_sh(const cmd *c)
{
        return pipe_to_shell(c, "wget");
}

/* A1: "|" not preceded by "\" or "|", not followed by "|". */
static bool a1_pipe(const cmd *c)
{
        for (size_t k = 0; k < c->n; k++)
                if (c->s[k] == '|' && (k == 0 || (c->s[k - 1] != '\\' && c->s[k - 1] != '|')) &&
                    (k + 1 == c->n || c->s[k + 1] != '|'))
                        return true;
        return false;
}

/* A2: ";" not preceded by "\". */
static bool a2_semicolon(const cmd *c)
{
        for (size_t k = 0; k < c->n; k++)
                if (c->s[k] == ';' && (k == 0 || c->s[k - 1] != '\\'))
                        return true;
        return false;
}

static bool any_lit(const cmd *c, const char *lit)
{
        for (size_t k = 0; k < c->n; k++)
                if (c->s[k] == (unsigned char)lit[0] && lit_at(c, k, lit))
                        return true;
        return false;
}

static bool a3_dollar_paren(const cmd *c)
{
        return any_lit(c, "$(");
}

/* A4: "`", one or more non-backtick characters (LF included), "`" — i.e. two consecutive
 * backticks with something between them. */
static bool a4_backticks(const cmd *c)
{
        size_t last = (size_t)-1;
        for (size_t k = 0; k < c->n; k++) {
                if (c->s[k] != '`')
                        continue;
                if (last != (size_t)-1 && k - last >= 2)
                        return true;
                last = k;
        }
        return false;
}

static bool a5_proc_in(const cmd *c)
{
        return any_lit(c, "<(");
}

static bool a6_proc_out(const cmd *c)
{
        return any_lit(c, ">(");
}

/* A7: one or two ">" (the first not preceded by "2"), \s*, a character that is neither "&"
 * nor whitespace. With ">>" the second ">" is itself such a character. */
static bool a7_redirect(const cmd *c)
{
        for (size_t k = 0; k < c->n; k++) {
                if (c->s[k] != '>' || (k > 0 && c->s[k - 1] == '2'))
                        continue;
                if (k + 1 < c->n && c->s[k + 1] == '>')
                        return true;
                size_t j = skip_ws(c, k + 1);
                if (j < c->n && c->s[j] != '&')
                        return true;
        }
        return false;
}

/* A8: "&" not preceded or followed by "&", then only whitespace to the end of a line. */
static bool a8_background(const cmd *c)
{
        for (size_t k = 0; k < c->n; k++)
                if (c->s[k] == '&' && (k == 0 || c->s[k - 1] != '&') &&
                    (k + 1 == c->n || c->s[k + 1] != '&') && ws_to_eol(c, k + 1))
                        return true;
        return false;
}

typedef struct cmd_pattern {
        bool (*match)(const cmd *c);
        const char *reason;
} cmd_pattern;

static const cmd_pattern forbidden[] = {
        { f1_rm_recursive_root, "recursive rm at filesystem root" },
        { f2_rm_forced_root, "forced rm at filesystem root" },
        { f3_mkfs, "filesystem format command" },
        { f4_dd_to_dev, "direct device write via dd" },
        { f5_sudo, "privilege escalation via sudo" },
        { f6_su, "privilege escalation via su" },
        { f7_setuid, "setuid/setgid modification" },
        { f8_chown_root, "ownership change to root" },
        { f9_fork_bomb, "fork bomb" },
        { f10_curl_sh, "curl-pipe-shell execution" },
        { f11_wget_sh, "wget-pipe-shell execution" },
};

static const cmd_pattern approval[] = {
        { a1_pipe, "pipe operator" },
        { a2_semicolon, "command separator (;)" },
        { a3_dollar_paren, "command substitution $()" },
        { a4_backticks, "backtick command substitution" },
        { a5_proc_in, "process substitution <()" },
        { a6_proc_out, "process substitution >()" },
        { a7_redirect, "output redirection" },
        { a8_background, "background execution (&)" },
};

static size_t run(const cmd *c, const cmd_pattern *pats, size_t n, json_t *violations)
{
        size_t hits = 0;
        for (size_t i = 0; i < n; i++) {
                if (!pats[i].match(c))
                        continue;
                hits++;
                if (json_is_array(violations))
                        json_array_append_new(violations, json_string(pats[i].reason));
        }
        return hits;
}

mspol_cmd_verdict mspol_cmd_validate(const char *profile, const char *command, json_t *violations)
{
        /* §6.8: untrusted commands run in the sandbox, which enforces; nothing to check */
        if (profile && strcmp(profile, "untrusted") == 0)
                return MSPOL_CMD_SAFE;
        cmd c = { (const unsigned char *)(command ? command : ""), 0 };
        c.n = strlen((const char *)c.s);
        while (c.n > 0 && is_ws(c.s[0])) {
                c.s++;
                c.n--;
        }
        while (c.n > 0 && is_ws(c.s[c.n - 1]))
                c.n--;
        if (c.n == 0) {
                if (json_is_array(violations))
                        json_array_append_new(violations, json_string("empty command"));
                return MSPOL_CMD_FORBIDDEN;
        }
        if (run(&c, forbidden, sizeof(forbidden) / sizeof(*forbidden), violations) > 0)
                return MSPOL_CMD_FORBIDDEN;
        if (run(&c, approval, sizeof(approval) / sizeof(*approval), violations) > 0)
                return MSPOL_CMD_NEEDS_APPROVAL;
        return MSPOL_CMD_SAFE;
}

const char *mspol_cmd_verdict_name(mspol_cmd_verdict v)
{
        switch (v) {
        case MSPOL_CMD_SAFE:
                return "safe";
        case MSPOL_CMD_NEEDS_APPROVAL:
                return "needs_approval";
        case MSPOL_CMD_FORBIDDEN:
                return "forbidden";
        default:
                return "forbidden";
        }
}

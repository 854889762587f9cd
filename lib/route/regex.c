/* PCRE2 behind the router's four calls: compile, free, match, error text. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "route/regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One match context for every expression: the limits are the same for
 * all, and the JIT stack PCRE2 uses by default (32 KiB) is enough under
 * them. */
static pcre2_match_context *match_context(void)
{
    static pcre2_match_context *ctx;
    if (!ctx) {
        ctx = pcre2_match_context_create(NULL);
        if (!ctx)
            abort();
        pcre2_set_match_limit(ctx, REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(ctx, REGEX_DEPTH_LIMIT);
    }
    return ctx;
}

int regex_compile(struct regex *re, const char *pattern, bool caseless, char *err, size_t errlen)
{
    /* Paths are bytes (a request may carry any %-escape), so no UTF mode:
     * a path that is not UTF-8 still matches what it should. */
    int code;
    PCRE2_SIZE at;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                  caseless ? PCRE2_CASELESS : 0, &code, &at, NULL);
    if (!c) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "%s at offset %zu", (char *)msg, (size_t)at);
        return -1;
    }
    /* JIT where the platform has it; the interpreter otherwise. */
    (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
    re->code = c;
    re->captures = 0;
    pcre2_pattern_info(c, PCRE2_INFO_CAPTURECOUNT, &re->captures);
    return 0;
}

void regex_free(struct regex *re)
{
    pcre2_code_free(re->code);
    re->code = NULL;
}

int regex_match(const struct regex *re, const char *subject, struct captures *cap)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!md)
        abort();
    int rc = pcre2_match(re->code, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, match_context());
    if (rc < 0) {
        pcre2_match_data_free(md);
        return rc == PCRE2_ERROR_NOMATCH ? 0 : rc;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t pairs = pcre2_get_ovector_count(md);
    cap->subject = subject;
    cap->n = 0;
    for (uint32_t i = 0; i < pairs && i < VARS_CAPTURES; i++) {
        bool set = (int)i < rc && ov[2 * i] != PCRE2_UNSET;
        cap->at[i][0] = set ? (long)ov[2 * i] : -1;
        cap->at[i][1] = set ? (long)ov[2 * i + 1] : -1;
        cap->n = (int)i + 1;
    }
    pcre2_match_data_free(md);
    return 1;
}

void regex_error_text(int rc, char *msg, size_t n)
{
    pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, n);
}

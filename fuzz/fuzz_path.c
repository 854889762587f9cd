/* libFuzzer harness for path_normalise.  On success the result must start
 * with '/', contain no NUL, no "//" and no "." or ".." segment, have the
 * returned length, and normalise to itself once re-encoded ('%' as %25).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *         -Iinclude -Ilib fuzz/fuzz_path.c lib/http/path.c -o fuzz_path
 *   ./fuzz_path fuzz/corpus/path
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/path.h"

static void check_normal(const char *out, size_t len)
{
    if (len == 0 || out[0] != '/')
        abort();
    if (strlen(out) != len) /* an embedded NUL, or a wrong length */
        abort();
    /* Every segment between slashes: none empty (no "//"), none a dot. */
    for (size_t i = 1; i <= len;) {
        size_t j = i;
        while (j < len && out[j] != '/')
            j++;
        size_t seg = j - i;
        if (j < len && seg == 0)
            abort();
        if ((seg == 1 && out[i] == '.') || (seg == 2 && out[i] == '.' && out[i + 1] == '.'))
            abort();
        for (size_t k = i; k < j; k++)
            if ((unsigned char)out[k] < 0x20 || out[k] == 0x7f)
                abort();
        i = j + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The contract's room exactly (n + 1), on the heap so ASan sees any
     * overrun. */
    char *out = malloc(size + 1);
    if (!out)
        return 0;
    long r = path_normalise((const char *)data, size, out);
    if (r >= 0) {
        if ((size_t)r > size)
            abort();
        check_normal(out, (size_t)r);

        /* Idempotence: the result, with '%' re-encoded, normalises to
         * itself. */
        size_t n = (size_t)r, m = 0;
        char *enc = malloc(3 * n + 1), *again = malloc(3 * n + 1);
        if (!enc || !again)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (out[i] == '%') {
                memcpy(enc + m, "%25", 3);
                m += 3;
            } else {
                enc[m++] = out[i];
            }
        }
        long r2 = path_normalise(enc, m, again);
        if (r2 != r || memcmp(again, out, n) != 0)
            abort();
        free(enc);
        free(again);
    } else if (r != -400 && r != -404) {
        abort();
    }
    free(out);
    return 0;
}

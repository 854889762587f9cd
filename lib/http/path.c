/* Percent-decoding and dot-segment removal of a request path (path.h). */
#include "http/path.h"

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * One pass over the input, one segment at a time.  Each segment is decoded
 * straight into out at o, which always sits just after a '/'; a "." segment
 * is then dropped and a ".." segment pops the previous one, so the output
 * never holds a dot segment and never grows past the input (decoding only
 * shrinks, and every '/' written was a '/' read).
 */
long path_normalise(const char *in, size_t n, char *out)
{
    if (n == 0 || in[0] != '/')
        return -400;
    size_t o = 1, i = 1;
    out[0] = '/';
    while (i < n) {
        if (in[i] == '/') { /* a run of slashes counts as one */
            i++;
            continue;
        }
        size_t start = o;
        while (i < n && in[i] != '/') {
            unsigned char c = (unsigned char)in[i];
            if (c == '%') {
                int hi = i + 2 < n ? hex_value((unsigned char)in[i + 1]) : -1;
                int lo = hi >= 0 ? hex_value((unsigned char)in[i + 2]) : -1;
                if (lo < 0)
                    return -400;
                c = (unsigned char)(hi << 4 | lo);
                if (c == '/')
                    return -404;
                i += 3;
            } else {
                i++;
            }
            if (c < 0x20 || c == 0x7f)
                return -400;
            out[o++] = (char)c;
        }
        size_t seg = o - start;
        if (seg == 1 && out[start] == '.') {
            o = start;
        } else if (seg == 2 && out[start] == '.' && out[start + 1] == '.') {
            if (start == 1)
                return -400; /* climbing above the root */
            o = start - 1;   /* the '/' ending the previous segment */
            while (out[o - 1] != '/')
                o--;
        } else if (i < n) {
            out[o++] = '/';
        }
    }
    out[o] = '\0';
    return (long)o;
}

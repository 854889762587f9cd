/* HTTP status codes and reason phrases: RFC 9110 §15, plus the registered
 * codes of WebDAV (RFC 4918, 5842, 2518), delta encoding (RFC 3229) and
 * RFC 6585, 7725.  The one list of them. */
#include "http/status.h"

#define STATUS_LIST(X)                                                                             \
    X(100, "Continue")                                                                             \
    X(101, "Switching Protocols")                                                                  \
    X(102, "Processing")                                                                           \
    X(200, "OK")                                                                                   \
    X(201, "Created")                                                                              \
    X(202, "Accepted")                                                                             \
    X(203, "Non-Authoritative Information")                                                        \
    X(204, "No Content")                                                                           \
    X(205, "Reset Content")                                                                        \
    X(206, "Partial Content")                                                                      \
    X(207, "Multi-Status")                                                                         \
    X(208, "Already Reported")                                                                     \
    X(226, "IM Used")                                                                              \
    X(300, "Multiple Choices")                                                                     \
    X(301, "Moved Permanently")                                                                    \
    X(302, "Found")                                                                                \
    X(303, "See Other")                                                                            \
    X(304, "Not Modified")                                                                         \
    X(305, "Use Proxy")                                                                            \
    X(307, "Temporary Redirect")                                                                   \
    X(308, "Permanent Redirect")                                                                   \
    X(400, "Bad Request")                                                                          \
    X(401, "Unauthorized")                                                                         \
    X(402, "Payment Required")                                                                     \
    X(403, "Forbidden")                                                                            \
    X(404, "Not Found")                                                                            \
    X(405, "Method Not Allowed")                                                                   \
    X(406, "Not Acceptable")                                                                       \
    X(407, "Proxy Authentication Required")                                                        \
    X(408, "Request Timeout")                                                                      \
    X(409, "Conflict")                                                                             \
    X(410, "Gone")                                                                                 \
    X(411, "Length Required")                                                                      \
    X(412, "Precondition Failed")                                                                  \
    X(413, "Content Too Large")                                                                    \
    X(414, "URI Too Long")                                                                         \
    X(415, "Unsupported Media Type")                                                               \
    X(416, "Range Not Satisfiable")                                                                \
    X(417, "Expectation Failed")                                                                   \
    X(421, "Misdirected Request")                                                                  \
    X(422, "Unprocessable Content")                                                                \
    X(423, "Locked")                                                                               \
    X(424, "Failed Dependency")                                                                    \
    X(426, "Upgrade Required")                                                                     \
    X(428, "Precondition Required")                                                                \
    X(429, "Too Many Requests")                                                                    \
    X(431, "Request Header Fields Too Large")                                                      \
    X(451, "Unavailable For Legal Reasons")                                                        \
    X(500, "Internal Server Error")                                                                \
    X(501, "Not Implemented")                                                                      \
    X(502, "Bad Gateway")                                                                          \
    X(503, "Service Unavailable")                                                                  \
    X(504, "Gateway Timeout")                                                                      \
    X(505, "HTTP Version Not Supported")                                                           \
    X(507, "Insufficient Storage")                                                                 \
    X(508, "Loop Detected")                                                                        \
    X(511, "Network Authentication Required")

const char *http_status_reason(int status)
{
    /* A switch: the compiler turns it into a jump table or a search. */
    switch (status) {
#define STATUS_CASE(code, reason)                                                                  \
    case code: return reason;
        STATUS_LIST(STATUS_CASE)
#undef STATUS_CASE
    }
    return "Unknown";
}

const char *http_status_line(int status, size_t *len)
{
    switch (status) {
#define STATUS_LINE(code, reason)                                                                  \
    case code:                                                                                     \
        *len = sizeof("HTTP/1.1 " #code " " reason "\r\n") - 1;                                    \
        return "HTTP/1.1 " #code " " reason "\r\n";
        STATUS_LIST(STATUS_LINE)
#undef STATUS_LINE
    }
    return NULL;
}

enum {
#define STATUS_POS(code, reason) STATUS_POS_##code,
    STATUS_LIST(STATUS_POS)
#undef STATUS_POS
        STATUS_POS_COUNT
};
_Static_assert(STATUS_POS_COUNT == HTTP_STATUS_COUNT, "HTTP_STATUS_COUNT");

int http_status_index(int status)
{
    switch (status) {
#define STATUS_INDEX(code, reason)                                                                 \
    case code: return STATUS_POS_##code;
        STATUS_LIST(STATUS_INDEX)
#undef STATUS_INDEX
    }
    return -1;
}

int http_status_at(int index)
{
    static const short codes[] = {
#define STATUS_CODE(code, reason) code,
        STATUS_LIST(STATUS_CODE)
#undef STATUS_CODE
    };
    return index >= 0 && index < HTTP_STATUS_COUNT ? codes[index] : 0;
}

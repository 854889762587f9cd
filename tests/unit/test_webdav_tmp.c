/* verbd's temporary names: their form, and which ones a process may
 * remove as orphans (DECISIONS: its own node's whose pid is dead, and
 * anyone's older than 24 hours). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mod/webdav/internal.h"
#include "unit.h"

static pid_t dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

int main(void)
{
    struct dav_inst in = {0};
    char name[DAV_TMP_MAX], host[DAV_HOST_MAX + 1], self[DAV_HOST_MAX + 1];
    pid_t pid;
    gethostname(self, sizeof self);
    self[DAV_HOST_MAX] = '\0';

    /* A fresh name carries this node's host name and pid, and parses. */
    dav_tmp_name(&in, "put", name, sizeof name);
    CHECK(strncmp(name, ".verbd-put-", 11) == 0);
    CHECK(strstr(name, self) != NULL);
    CHECK(dav_tmp_parse(name, host, sizeof host, &pid));
    CHECK_STR(host, self);
    CHECK_INT(pid, getpid());
    char other[DAV_TMP_MAX];
    dav_tmp_name(&in, "put", other, sizeof other);
    CHECK(strcmp(name, other) != 0);

    /* A host name with dashes is read from the right. */
    CHECK(dav_tmp_parse(".verbd-trash-web-1.example-4242-7-0badcafe", host, sizeof host, &pid));
    CHECK_STR(host, "web-1.example");
    CHECK_INT(pid, 4242);
    /* Not temporary names: left alone whatever their age. */
    CHECK(!dav_tmp_parse(".verbd-dav-data.sqlite", host, sizeof host, &pid));
    CHECK(!dav_tmp_parse(".verbd-put-garbage", host, sizeof host, &pid));
    CHECK(!dav_tmp_parse(".verbd-put-h-12-3-0BADCAFE", host, sizeof host, &pid));
    CHECK(!dav_tmp_parse(".verbd-put--12-3-0badcafe", host, sizeof host, &pid));
    CHECK(!dav_tmp_parse(".verbd-frob-h-12-3-0badcafe", host, sizeof host, &pid));
    CHECK(!dav_tmp_parse("verbd-put-h-12-3-0badcafe", host, sizeof host, &pid));

    time_t now = time(NULL);
    char n[DAV_TMP_MAX];
    /* Our own, its process alive: kept. */
    CHECK(!dav_tmp_orphan(name, now, now));
    /* Our own, its process gone: an orphan. */
    snprintf(n, sizeof n, ".verbd-put-%s-%d-1-00000000", self, (int)dead_pid());
    CHECK(dav_tmp_orphan(n, now, now));
    snprintf(n, sizeof n, ".verbd-copy-%s-%d-1-00000000", self, (int)dead_pid());
    CHECK(dav_tmp_orphan(n, now, now));
    /* Another node's, recent: its pid means nothing here, so kept. */
    snprintf(n, sizeof n, ".verbd-put-%s-x-%d-1-00000000", self, (int)dead_pid());
    CHECK(!dav_tmp_orphan(n, now, now));
    /* Anyone's, older than 24 hours: an orphan, even if the pid lives. */
    CHECK(dav_tmp_orphan(n, now - 24 * 3600 - 1, now));
    CHECK(dav_tmp_orphan(name, now - 24 * 3600 - 1, now));
    CHECK(!dav_tmp_orphan(n, now - 24 * 3600 + 60, now));
    CHECK(!dav_tmp_orphan(".verbd-dav-data.sqlite", 0, now));
    return unit_report();
}

"""Peer servers on loopback for the tests that compare verbd with them or
put verbd in front of them: finding their programs, waiting for their
ports, and Apache httpd (Debian's apache2) and nginx, each with its own
config in a temporary directory, one process, stopped by PID."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import free_port

MODULE_DIR = "/usr/lib/apache2/modules"


def find_program(name):
    """A program on PATH or in /usr/sbin, /sbin; None if absent."""
    return shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/sbin/" + name) if os.access(p, os.X_OK)), None)


def find_httpd():
    """The apache2 binary, or None when Apache is not installed."""
    path = find_program("apache2")
    return path if path and os.path.isdir(MODULE_DIR) else None


def wait_port(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def _has_user(name):
    try:
        import pwd
        pwd.getpwnam(name)
        return True
    except (ImportError, KeyError):
        return False


class Peer:
    """A server the tests start in a temporary directory of their own
    (self.dir) as a child process (self.proc), stopped by PID."""

    def stop(self):
        stop_process(self.proc)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, True)


class Apache(Peer):
    """httpd with `modules` loaded, listening on `ports` (their number),
    serving `self.root`; `conf` is the rest of httpd.conf, formatted with
    d (the directory), root and port, port2, ... .  The directory is
    world-writable so that httpd, which drops to www-data under root, can
    write its files."""

    def __init__(self, modules, conf, ports=1):
        self.httpd = find_httpd()
        self.dir = tempfile.mkdtemp(prefix="verbd-apache-")
        os.chmod(self.dir, 0o777)
        self.root = os.path.join(self.dir, "root")
        os.makedirs(self.root)
        self.ports = [free_port() for _ in range(ports)]
        self.port = self.ports[0]
        self.modules = modules
        self.conf = conf
        self.proc = None

    def start(self):
        for dirpath, dirnames, filenames in os.walk(self.dir):
            for n in dirnames:
                os.chmod(os.path.join(dirpath, n), 0o777)
            for n in filenames:
                os.chmod(os.path.join(dirpath, n), 0o666)
        user = ""
        if os.geteuid() == 0 and _has_user("www-data"):
            user = "User www-data\nGroup www-data\n"
        names = {"d": self.dir, "root": self.root}
        for i, p in enumerate(self.ports):
            names["port" if i == 0 else "port%d" % (i + 1)] = p
        path = os.path.join(self.dir, "httpd.conf")
        with open(path, "w") as f:
            f.write("".join("LoadModule %s_module %s/mod_%s.so\n" % (m, MODULE_DIR, m)
                            for m in self.modules))
            f.write("ServerRoot {d}\nServerName localhost\n{user}PidFile {d}/httpd.pid\n"
                    "ErrorLog {d}/error.log\nDefaultRuntimeDir {d}\nMutex file:{d} default\n"
                    "TypesConfig /etc/mime.types\nDocumentRoot {root}\n"
                    .format(user=user, **names))
            f.write("".join("Listen 127.0.0.1:%d\n" % p for p in self.ports))
            f.write(self.conf.format(**names))
        self.proc = subprocess.Popen([self.httpd, "-f", path, "-X"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        if not all(wait_port(p, self.proc) for p in self.ports):
            log = os.path.join(self.dir, "error.log")
            text = open(log).read() if os.path.exists(log) else "(no error log)"
            self.stop()
            raise RuntimeError("apache2 did not start:\n" + text)
        return self



def stop_process(proc):
    """SIGTERM, then SIGKILL after 10 s; None or an ended process is left."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{http}
}}
"""


class Nginx(Peer):
    """nginx, one process (master_process off), listening on `ports` (their
    number); `http` is the rest of its http block, formatted with d (the
    directory), root (d/root, created) and port, port2, ... ."""

    def __init__(self, http, ports=1):
        self.nginx = find_program("nginx")
        self.dir = tempfile.mkdtemp(prefix="verbd-nginx-")
        self.root = os.path.join(self.dir, "root")
        os.makedirs(self.root)
        self.ports = [free_port() for _ in range(ports)]
        self.http = http
        self.proc = None

    def start(self):
        names = {"d": self.dir, "root": self.root}
        for i, p in enumerate(self.ports):
            names["port" if i == 0 else "port%d" % (i + 1)] = p
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=self.dir, http=self.http.format(**names)))
        self.proc = subprocess.Popen([self.nginx, "-c", conf, "-p", self.dir, "-e",
                                      os.path.join(self.dir, "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        if not all(wait_port(p, self.proc) for p in self.ports):
            with open(os.path.join(self.dir, "error.log")) as f:
                text = f.read()
            self.stop()
            raise RuntimeError("nginx did not start:\n" + text)
        return self



def find_php_fpm():
    """The php-fpm binary Debian installs (php-fpm8.2 on bookworm), or None."""
    import glob
    for path in ["/usr/sbin/php-fpm"] + sorted(glob.glob("/usr/sbin/php-fpm*"), reverse=True):
        if os.access(path, os.X_OK):
            return path
    return None


class PhpFpm(Peer):
    """PHP-FPM on a Unix socket in its own temporary directory, `pm =
    static` with `children` processes, in the foreground, stopped by PID.
    Under root its workers run as an unprivileged user (www-data, or
    nobody), as in production; `ini` adds php_admin_value lines.  Its
    error log is self.log."""

    def __init__(self, children=4, ini=None, user=None):
        self.bin = find_php_fpm()
        if not self.bin:
            raise RuntimeError("php-fpm is not installed (apt-get install php-fpm)")
        self.dir = tempfile.mkdtemp(prefix="verbd-fpm-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "php.sock")
        self.log = os.path.join(self.dir, "fpm.log")
        self.children = children
        self.ini = dict(ini or {})
        self.user = user
        self.proc = None

    def start(self):
        lines = ["[global]", "pid = %s/fpm.pid" % self.dir, "error_log = %s" % self.log,
                 "daemonize = no", "log_level = notice", "[app]",
                 "listen = %s" % self.socket, "listen.mode = 0666", "pm = static",
                 "pm.max_children = %d" % self.children, "catch_workers_output = yes",
                 "clear_env = yes"]
        if os.geteuid() == 0:
            user = self.user or ("www-data" if _has_user("www-data") else "nobody")
            import grp
            import pwd
            group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
            lines += ["user = %s" % user, "group = %s" % group]
        lines += ["php_admin_value[%s] = %s" % kv for kv in self.ini.items()]
        path = os.path.join(self.dir, "fpm.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([self.bin, "-y", path, "-F"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(self.socket):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        text = open(self.log).read() if os.path.exists(self.log) else "(no log)"
        self.stop()
        raise RuntimeError("php-fpm did not start:\n" + text)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


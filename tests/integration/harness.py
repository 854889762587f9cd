"""Black-box test harness for verbd (Python 3 standard library only).

- Server(root, *args): runs $VERBD_BIN as a child process on 127.0.0.1:0 and
  finds its port from the "listening on http://HOST:PORT/" line; under
  $VERBD_WRAPPER if set (scripts/valgrind.sh sets it to a valgrind command).
- Conn: a raw TCP connection with a strict HTTP/1.1 response parser.
- webroot(): a temporary web root (shared by all tests of one process) with
  a secret file beside it that no request may ever reach.
- VerbdTestCase: a unittest.TestCase that starts a fresh server per test.
"""

import atexit
import email.utils
import fcntl
import os
import random
import re
import select
import shlex
import shutil
import signal as _signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BIN = os.path.normpath(os.path.join(HERE, "..", "..", "build", "verbd"))


def verbd_bin():
    return os.environ.get("VERBD_BIN") or DEFAULT_BIN


def measured_as_built():
    """False under a sanitizer or a wrapper (valgrind), whose own
    bookkeeping (ASan's quarantine of freed memory) is not verbd's."""
    if os.environ.get("VERBD_WRAPPER"):
        return False
    with open(verbd_bin(), "rb") as f:
        return b"AddressSanitizer" not in f.read()



LISTEN_RE = re.compile(r"listening on (https?)://(\[[^\]]+\]|[^:/\s]+):(\d+)/")

# VERBD_TEST_TLS=1 runs every server started on a directory over TLS (a
# certificate made for the test run) and every connection through TLS: the
# same tests then check the TLS transport.
TEST_TLS = os.environ.get("VERBD_TEST_TLS") == "1"
_test_cert = None


def test_certificate():
    """(certificate, key) for "localhost" and 127.0.0.1, ECDSA P-256, made
    once per test process with the openssl command and removed at exit."""
    global _test_cert
    if _test_cert is None:
        d = tempfile.mkdtemp(prefix="verbd-tls-")
        atexit.register(shutil.rmtree, d, True)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _test_cert = (cert, key)
    return _test_cert


def plain_and_tls_listen():
    """A plain and a TLS address on loopback for one server block: (plain
    port, TLS port, the block's listen and tls_certificate lines, with the
    test certificate)."""
    cert, key = test_certificate()
    plain, tls = free_port(), free_port()
    return plain, tls, ("    listen 127.0.0.1:%d;\n    listen 127.0.0.1:%d tls;\n"
                        "    tls_certificate %s;\n    tls_certificate_key %s;\n"
                        % (plain, tls, cert, key))


def tls_client_context(cafile=None):
    """A client context: TLS 1.2 or 1.3; verifying against cafile if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class TLSSocket:
    """The client side of a TLS connection with the socket calls the tests
    use.  Built on memory BIOs so that shutdown(SHUT_WR) can do what it
    does on TCP: send close_notify and the FIN, and go on reading."""

    def __init__(self, raw, server_hostname="localhost", context=None):
        self.raw = raw
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        ctx = context or tls_client_context()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=False,
                                server_hostname=server_hostname)
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._pull():
                    raise ConnectionResetError("connection closed during the TLS handshake")

    def _flush(self):
        data = self.out.read()
        if data:
            self.raw.sendall(data)

    def _pull(self):
        data = self.raw.recv(65536)
        if not data:
            self.inc.write_eof()
            return False
        self.inc.write(data)
        return True

    def sendall(self, data):
        view = memoryview(bytes(data))
        while view:
            n = self.obj.write(view)
            self._flush()
            view = view[n:]

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                self._flush()
                self._pull()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def shutdown(self, how):
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            try:
                self.obj.unwrap()  # sends close_notify
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
            try:
                self._flush()
            except OSError:
                pass  # the server closed first: the close_notify met a closed socket
        try:
            self.raw.shutdown(how)
        except OSError:
            pass  # ... and was answered with a reset, which ends the connection

    def version(self):
        return self.obj.version()

    def settimeout(self, t):
        self.raw.settimeout(t)

    def setsockopt(self, *a):
        self.raw.setsockopt(*a)

    def fileno(self):
        return self.raw.fileno()

    def close(self):
        self.raw.close()
IMF_FIXDATE_RE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} GMT$")
TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class HarnessError(AssertionError):
    """A failure detected by the harness (counts as a test failure)."""


class ConnectionClosed(HarnessError):
    pass


class ProtocolError(HarnessError):
    pass


# --------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------

class Server:
    """Context manager running one verbd process.

    Server(root, *args) runs `$VERBD_BIN ROOT --listen 127.0.0.1:0
    --access-log off ARGS`; the defaults for --listen and --access-log are
    left out when ARGS give their own.  root=None omits the directory
    argument.
    """

    # $VERBD_WRAPPER (e.g. "valgrind --error-exitcode=99 ...") runs verbd
    # under another program; such runs are slower to start and to stop.
    WRAPPER = os.environ.get("VERBD_WRAPPER", "")
    START_TIMEOUT = 60.0 if WRAPPER else 10.0
    STOP_TIMEOUT = 60.0 if WRAPPER else 10.0

    def __init__(self, root, *args, cwd=None, env=None):
        self.root = root
        self.args = [str(a) for a in args]
        self.cwd = cwd
        self.env = env
        self.proc = None
        self.host = None
        self.port = None
        self.tls = False             # its first address speaks TLS
        self.addresses = []          # every (host, port) announced
        self.stdout_lines = []       # every stdout line (str, no newline)
        self._stdout_lock = threading.Lock()
        self._reader = None
        self._stderr_file = None
        self.returncode = None
        self._signalled = None

    # -- command line --
    def command(self):
        cmd = shlex.split(self.WRAPPER) + [verbd_bin()]
        if self.root is not None:
            cmd.append(str(self.root))
        if "--listen" not in self.args:
            cmd += ["--listen", "127.0.0.1:0"]
        if "--access-log" not in self.args:
            cmd += ["--access-log", "off"]
        if TEST_TLS and self.root is not None and "--tls-certificate" not in self.args:
            cert, key = test_certificate()
            cmd += ["--tls-certificate", cert, "--tls-certificate-key", key]
        return cmd + self.args

    @property
    def pid(self):
        return self.proc.pid

    def stderr_text(self):
        if self._stderr_file is None:
            return ""
        try:
            self._stderr_file.flush()
            with open(self._stderr_file.name, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout_text(self):
        with self._stdout_lock:
            return "\n".join(self.stdout_lines)

    def start(self):
        self._stderr_file = tempfile.NamedTemporaryFile(prefix="verbd-stderr-", delete=False)
        cmd = self.command()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr_file, cwd=self.cwd, env=self.env,
                                     start_new_session=True)
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + self.START_TIMEOUT
        pending = b""
        found = False
        while not found:
            left = deadline - time.monotonic()
            if left <= 0:
                self._abort()
                raise HarnessError("verbd did not announce a listener within %.0fs\ncommand: %s\n"
                                   "stdout: %r\nstderr: %s" % (self.START_TIMEOUT, " ".join(cmd),
                                                               self.stdout_lines, self.stderr_text()))
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if not r:
                if self.proc.poll() is not None:
                    break
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                text = line.decode("utf-8", "replace").rstrip("\r")
                self.stdout_lines.append(text)
                m = LISTEN_RE.search(text)
                if m:
                    host = m.group(2)
                    if host.startswith("["):
                        host = host[1:-1]
                    if not self.addresses:
                        self.tls = m.group(1) == "https"
                    self.addresses.append((host, int(m.group(3))))
                    found = True
        if not found:
            rc = self.proc.wait(timeout=5)
            self._close_files()
            raise HarnessError("verbd exited (status %s) before listening\ncommand: %s\nstdout: %r\n"
                               "stderr: %s" % (rc, " ".join(cmd), self.stdout_lines, self.stderr_text()))
        # Collect the rest of stdout (more listener lines, stdout access log)
        # in the background so the pipe never fills up.
        self._reader = threading.Thread(target=self._drain, args=(fd, pending), daemon=True)
        self._reader.start()
        # Give further listener lines (several --listen) a moment to arrive.
        expected = self.args.count("--listen")
        if expected > 1:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with self._stdout_lock:
                    if len(self.addresses) >= expected:
                        break
                time.sleep(0.01)
        self.host, self.port = self.addresses[0]
        return self

    def _drain(self, fd, pending):
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                text = line.decode("utf-8", "replace").rstrip("\r")
                with self._stdout_lock:
                    self.stdout_lines.append(text)
                    m = LISTEN_RE.search(text)
                    if m:
                        host = m.group(2)
                        if host.startswith("["):
                            host = host[1:-1]
                        self.addresses.append((host, int(m.group(3))))
        if pending:
            with self._stdout_lock:
                self.stdout_lines.append(pending.decode("utf-8", "replace"))

    def _close_files(self):
        try:
            self.proc.stdout.close()
        except Exception:
            pass

    def _abort(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if sig in (_signal.SIGTERM, _signal.SIGINT):
            self._signalled = sig      # a stop: exiting afterwards is expected
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Waits for the process to exit; returns its status or None."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=_signal.SIGTERM, check=True):
        """Graceful stop: signal, wait up to 10 s (then SIGKILL and fail),
        and require exit status 0."""
        if self.proc is None or self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                self.returncode = self.proc.returncode
                self._finish()
                if check:
                    raise HarnessError("verbd did not exit within %.0fs of %s; killed\ncommand: %s\n"
                                       "stderr: %s" % (self.STOP_TIMEOUT, sig.name, " ".join(self.command()),
                                                       self.stderr_text()))
                return self.returncode
            graceful = True
        else:
            # It had already exited: fine only if a test signalled it.
            graceful = self._signalled is not None
            sig = self._signalled or sig
        self.returncode = self.proc.returncode
        self._finish()
        if check and (self.returncode != 0 or not graceful):
            raise HarnessError("verbd exited with status %s (%s)\ncommand: %s\nstderr: %s" % (
                self.returncode, "after %s" % sig.name if graceful else "before it was stopped",
                " ".join(self.command()), self.stderr_text()))
        return self.returncode

    def _finish(self):
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._close_files()

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop(check=exc_type is None)
        finally:
            self.cleanup()
        return False

    def cleanup(self):
        self._abort()
        if self._stderr_file is not None:
            try:
                self._stderr_file.close()
                os.unlink(self._stderr_file.name)
            except OSError:
                pass

    def connect(self, **kw):
        kw.setdefault("tls", self.tls)
        return Conn(self.host, self.port, **kw)


def run_verbd(*args, timeout=10, cwd=None):
    """Runs verbd to completion (for --help, --version and bad usage)."""
    return subprocess.run([verbd_bin()] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, cwd=cwd)


# --------------------------------------------------------------------------
# HTTP responses
# --------------------------------------------------------------------------

class Headers:
    """An ordered list of (name, value) with case-insensitive lookup."""

    def __init__(self, items):
        self.items = list(items)

    def get(self, name, default=None):
        name = name.lower()
        for k, v in self.items:
            if k.lower() == name:
                return v
        return default

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.items if k.lower() == name]

    def __contains__(self, name):
        return self.get(name) is not None

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)

    def names(self):
        return [k for k, _ in self.items]

    def __repr__(self):
        return "Headers(%r)" % (self.items,)


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head, framing):
        self.version = version          # "HTTP/1.1"
        self.status = status            # int
        self.reason = reason            # str
        self.headers = headers          # Headers
        self.body = body                # bytes
        self.raw_head = raw_head        # bytes, up to and including CRLFCRLF
        self.framing = framing          # "none" | "length" | "chunked" | "close"

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def header_all(self, name):
        return self.headers.get_all(name)

    def connection_tokens(self):
        toks = []
        for v in self.headers.get_all("Connection"):
            toks += [t.strip().lower() for t in v.split(",") if t.strip()]
        return toks

    def media_type(self):
        ct = self.header("Content-Type")
        return None if ct is None else ct.split(";")[0].strip().lower()

    def __repr__(self):
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        return "<Response %d %s\n%s\nbody(%d)=%r>" % (
            self.status, self.reason, self.raw_head.decode("latin-1").rstrip(), len(self.body), body)


def no_body_status(status):
    return 100 <= status < 200 or status in (204, 304)


class Conn:
    """A raw client connection with a strict HTTP/1.1 response parser."""

    def __init__(self, host, port, timeout=5.0, rcvbuf=None, tls=False, server_hostname="localhost",
                 context=None):
        self.host, self.port = host, port
        self.timeout = timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        if tls:
            self.sock = TLSSocket(self.sock, server_hostname, context)
        self.buf = b""
        self.eof = False
        self.reset = False

    # -- sending --
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def send_parts(self, parts, delay=0.05):
        for i, p in enumerate(parts):
            if i:
                time.sleep(delay)
            self.send(p)

    def send_slowly(self, data, chunk=1, delay=0.005):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.send_parts([data[i:i + chunk] for i in range(0, len(data), chunk)], delay)

    def try_send(self, data):
        """Sends, returning False instead of raising if the peer is gone."""
        try:
            self.send(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- receiving --
    def _fill(self, timeout=None):
        """Reads once; returns the number of bytes added (0 on EOF)."""
        if self.eof:
            return 0
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.eof = self.reset = True
            return 0
        if not data:
            self.eof = True
            return 0
        self.buf += data
        return len(data)

    def _need(self, n, what):
        while len(self.buf) < n:
            if self._fill_or_raise(what) == 0:
                raise ConnectionClosed("connection closed while reading %s (have %d of %d bytes): %r"
                                       % (what, len(self.buf), n, self.buf[:200]))

    def _fill_or_raise(self, what):
        try:
            return self._fill()
        except socket.timeout:
            raise HarnessError("timed out after %.1fs waiting for %s; buffered: %r"
                               % (self.timeout, what, self.buf[:300])) from None

    def _read_line(self, what):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise ProtocolError("line too long in %s" % what)
            if self._fill_or_raise(what) == 0:
                raise ConnectionClosed("connection closed in %s: %r" % (what, self.buf[:200]))
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_response(self, method="GET"):
        """Reads one response (1xx interim responses are returned too).

        method: the request method this answers ("HEAD" responses have no
        body)."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise ProtocolError("response head too large")
            n = self._fill_or_raise("a response to %s" % method)
            if n == 0:
                if not self.buf:
                    raise ConnectionClosed("connection closed with no response to %s%s"
                                           % (method, " (reset)" if self.reset else ""))
                raise ConnectionClosed("connection closed inside a response head: %r" % self.buf[:500])
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        raw_head = head + b"\r\n\r\n"
        lines = head.split(b"\r\n")
        for ln in lines:
            if b"\n" in ln or b"\r" in ln:
                raise ProtocolError("bare CR or LF in response head: %r" % raw_head)
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3}) ([\t !-~\x80-\xff]*)$", lines[0])
        if not m:
            raise ProtocolError("malformed status line: %r" % lines[0])
        version = m.group(1).decode()
        status = int(m.group(2))
        reason = m.group(3).decode("latin-1")
        items = []
        for ln in lines[1:]:
            if b":" not in ln:
                raise ProtocolError("header line without colon: %r" % ln)
            name, value = ln.split(b":", 1)
            if not TOKEN_RE.match(name):
                raise ProtocolError("bad header name %r" % name)
            if ln[:1] in (b" ", b"\t"):
                raise ProtocolError("obs-fold in response: %r" % raw_head)
            items.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        headers = Headers(items)
        if method == "HEAD" or no_body_status(status):
            body, framing = b"", "none"
        else:
            te = headers.get_all("Transfer-Encoding")
            cl = headers.get_all("Content-Length")
            if te:
                codings = [c.strip().lower() for c in ",".join(te).split(",")]
                if codings[-1] == "chunked":
                    body, framing = self._read_chunked(), "chunked"
                else:
                    body, framing = self._read_to_close(), "close"
            elif cl:
                if len(set(cl)) != 1 or not re.match(r"^\d+$", cl[0]):
                    raise ProtocolError("bad Content-Length in response: %r" % cl)
                n = int(cl[0])
                self._need(n, "a %d-byte body" % n)
                body, self.buf = self.buf[:n], self.buf[n:]
                framing = "length"
            else:
                body, framing = self._read_to_close(), "close"
        return Response(version, status, reason, headers, body, raw_head, framing)

    def read_final_response(self, method="GET"):
        """Reads responses, skipping 1xx interim ones; returns (final, interims)."""
        interims = []
        while True:
            r = self.read_response(method)
            if 100 <= r.status < 200:
                interims.append(r)
                continue
            return r, interims

    def read_responses(self, methods):
        """Reads len(methods) pipelined responses (methods: list or count)."""
        if isinstance(methods, int):
            methods = ["GET"] * methods
        return [self.read_response(m) for m in methods]

    def read_all_responses(self, method="GET", timeout=5.0):
        """Reads responses until the server closes; returns them."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            if not self.buf:
                if self.eof:
                    return out
                try:
                    n = self._fill(timeout=max(0.01, deadline - time.monotonic()))
                except socket.timeout:
                    raise HarnessError("connection still open after %.1fs; responses so far: %r"
                                       % (timeout, out)) from None
                if n == 0:
                    return out
                continue
            out.append(self.read_response(method))

    def _read_chunked(self):
        body = b""
        while True:
            line = self._read_line("a chunk size")
            size_s = line.split(b";", 1)[0].strip()
            if not re.match(rb"^[0-9A-Fa-f]+$", size_s):
                raise ProtocolError("bad chunk size line %r" % line)
            size = int(size_s, 16)
            if size == 0:
                while self._read_line("a trailer") != b"":
                    pass
                return body
            self._need(size + 2, "chunk data")
            if self.buf[size:size + 2] != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
            body += self.buf[:size]
            self.buf = self.buf[size + 2:]

    def _read_to_close(self, timeout=None):
        while True:
            try:
                n = self._fill(timeout)
            except socket.timeout:
                raise HarnessError("body delimited by close but the connection stayed open") from None
            if n == 0:
                break
        body, self.buf = self.buf, b""
        return body

    def read_until_close(self, timeout=5.0):
        """Returns everything until EOF (raises if it does not come)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError("connection not closed within %.1fs; got %r" % (timeout, self.buf[:300]))
            try:
                self._fill(timeout=left)
            except socket.timeout:
                pass
        data, self.buf = self.buf, b""
        return data

    def is_closed(self, timeout=1.0):
        """True if the server closes (EOF or reset) within `timeout`, False
        if the connection is still open then.  Data arriving meanwhile is
        kept in self.buf."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(timeout=left)
            except socket.timeout:
                return False
        return True

    def request(self, method, target, headers=None, body=b"", version="HTTP/1.1", host="localhost"):
        self.send(build_request(method, target, headers, body, version, host))
        return self.read_response(method)


def build_request(method, target, headers=None, body=b"", version="HTTP/1.1", host="localhost"):
    """Builds request bytes.  headers: list of (name, value) or dict; a Host
    field is added first unless host is None or headers carry one."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = list(headers or [])
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None and not any(k.lower() == "host" for k, _ in headers):
        lines.append("Host: %s" % host)
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return raw + body


def get_request(target="/index.html", extra=""):
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (target, extra)).encode("latin-1")


def parse_multipart(content_type, body):
    """Parses a multipart/byteranges body; returns [(Headers, bytes)]."""
    m = re.search(r'boundary=("?)([^";]+)\1', content_type)
    if not m:
        raise ProtocolError("no boundary in %r" % content_type)
    delim = b"--" + m.group(2).encode()
    parts = []
    pos = body.find(delim)
    if pos < 0:
        raise ProtocolError("first boundary missing")
    while True:
        pos += len(delim)
        if body[pos:pos + 2] == b"--":
            return parts
        if body[pos:pos + 2] != b"\r\n":
            raise ProtocolError("boundary not followed by CRLF at %d" % pos)
        pos += 2
        hend = body.find(b"\r\n\r\n", pos)
        if hend < 0:
            raise ProtocolError("part head not terminated")
        items = []
        for ln in body[pos:hend].split(b"\r\n"):
            if ln:
                k, v = ln.split(b":", 1)
                items.append((k.decode().strip(), v.decode().strip()))
        nxt = body.find(b"\r\n" + delim, hend + 4)
        if nxt < 0:
            raise ProtocolError("part not followed by a boundary")
        parts.append((Headers(items), body[hend + 4:nxt]))
        pos = nxt + 2


# --------------------------------------------------------------------------
# Web root fixture
# --------------------------------------------------------------------------

class WebRoot:
    """A temporary directory:

        BASE/secret              outside the root; must never be served
        BASE/outside/inner.txt   outside the root (target of a dir symlink)
        BASE/root/               the web root:
            index.html           exactly 1024 bytes
            big.bin              65536 pseudo-random bytes
            sub/file.txt         a directory without index
            list/                for --listing: a.txt, '<b>&.txt', 'q"uote'.txt', 'sp ace.txt'
            pipe/0.txt..9.txt    distinct small files
            'name with spaces é.txt'
            empty.txt            0 bytes
            'dir with space'/f.txt
            .env                 hidden file
            style.css data.json image.png blob.verbdunknown
            link_in.html   -> index.html       (symlink inside the root)
            link_out       -> ../secret        (symlink leaving the root)
            dirlink_out    -> ../outside       (directory symlink leaving the root)
            loop           -> loop             (a symlink loop)
            fifo                               (a named pipe: must never block the server)
    """

    SPACE_NAME = "name with spaces \u00e9.txt"
    SPACE_URL = "/name%20with%20spaces%20%C3%A9.txt"

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="verbd-webroot-")
        self.root = os.path.join(self.base, "root")
        rnd = random.Random(20240601)
        self.secret = b"VERBD-SECRET-" + ("%032x" % rnd.getrandbits(128)).encode()
        self.outside_secret = b"VERBD-OUTSIDE-" + ("%032x" % rnd.getrandbits(128)).encode()
        self._write("../secret", self.secret + b"\n")
        os.mkdir(os.path.join(self.base, "outside"))
        self._write("../outside/inner.txt", self.outside_secret + b"\n")
        os.mkdir(self.root)
        head = b"<!doctype html>\n<html><head><title>verbd test</title></head><body>\n"
        tail = b"\n</body></html>\n"
        filler = b"x" * (1024 - len(head) - len(tail))
        self.index = head + filler + tail
        assert len(self.index) == 1024
        self._write("index.html", self.index)
        self.big = bytes(rnd.getrandbits(8) for _ in range(65536))
        self._write("big.bin", self.big)
        os.mkdir(os.path.join(self.root, "sub"))
        self.sub_file = b"the file in sub\n"
        self._write("sub/file.txt", self.sub_file)
        os.mkdir(os.path.join(self.root, "list"))
        self._write("list/a.txt", b"a\n")
        self._write("list/<b>&.txt", b"escaped\n")
        self._write("list/q\"uote'.txt", b"quoted\n")
        self._write("list/sp ace.txt", b"spaced\n")
        os.mkdir(os.path.join(self.root, "pipe"))
        for i in range(10):
            self._write("pipe/%d.txt" % i, ("pipe-%d\n" % i).encode())
        self.space_body = "spaces and \u00e9\n".encode()
        self._write(self.SPACE_NAME, self.space_body)
        self._write("empty.txt", b"")
        os.mkdir(os.path.join(self.root, "dir with space"))
        self._write("dir with space/f.txt", b"in dir with space\n")
        self._write(".env", b"SECRET_ENV=1\n")
        self._write("style.css", b"body { color: red }\n")
        self._write("data.json", b'{"a": 1}\n')
        self._write("image.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 24)
        self._write("blob.verbdunknown", b"unknown type\n")
        os.symlink("index.html", os.path.join(self.root, "link_in.html"))
        os.symlink("../secret", os.path.join(self.root, "link_out"))
        os.symlink("../outside", os.path.join(self.root, "dirlink_out"))
        os.symlink("loop", os.path.join(self.root, "loop"))
        os.mkfifo(os.path.join(self.root, "fifo"))
        # Fixed mtimes make Last-Modified predictable and in the past.
        self.mtime = 1700000000  # Tue, 14 Nov 2023 22:13:20 GMT
        for dirpath, dirnames, filenames in os.walk(self.root):
            for n in filenames:
                p = os.path.join(dirpath, n)
                if not os.path.islink(p):
                    os.utime(p, (self.mtime, self.mtime))

    def _write(self, rel, data):
        p = os.path.normpath(os.path.join(self.root, rel))
        with open(p, "wb") as f:
            f.write(data)

    def path(self, rel):
        return os.path.join(self.root, rel)

    def last_modified(self):
        return email.utils.formatdate(self.mtime, usegmt=True)

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)


_WEBROOT = None


def webroot():
    """The shared, read-only web root of this process."""
    global _WEBROOT
    if _WEBROOT is None:
        _WEBROOT = WebRoot()
        atexit.register(_WEBROOT.cleanup)
    return _WEBROOT


# --------------------------------------------------------------------------
# Test case base
# --------------------------------------------------------------------------

class VerbdTestCase(unittest.TestCase):
    """Starts a fresh server (on the shared web root) for each test."""

    server_args = ()

    def setUp(self):
        self.web = webroot()
        self.conns = []
        self.server = self.start_server(*self.server_args)

    def start_server(self, *args, root=None):
        srv = Server(self.web.root if root is None else root, *args).start()
        self.addCleanup(srv.cleanup)
        self._servers = getattr(self, "_servers", []) + [srv]
        return srv

    def tearDown(self):
        for c in self.conns:
            c.close()
        for srv in getattr(self, "_servers", []):
            srv.stop()

    # -- connections --
    def connect(self, server=None, **kw):
        c = (server or self.server).connect(**kw)
        self.conns.append(c)
        return c

    def exchange(self, raw, method="GET", conn=None):
        """Sends raw bytes on a new (or given) connection, reads one response."""
        c = conn or self.connect()
        c.send(raw)
        return c, c.read_response(method)

    def get(self, target, headers=None, method="GET", version="HTTP/1.1"):
        c = self.connect()
        r = c.request(method, target, headers, version=version)
        return c, r

    # -- assertions --
    def assertWellFormed(self, r, method="GET"):
        self.assertEqual(r.version, "HTTP/1.1", r)
        date = r.header("Date")
        self.assertIsNotNone(date, "no Date: %r" % r)
        self.assertRegex(date, IMF_FIXDATE_RE)
        self.assertEqual(r.header("Server"), "verbd", r)
        if no_body_status(r.status):
            self.assertIsNone(r.header("Content-Length"), "Content-Length on %d: %r" % (r.status, r))
            self.assertIsNone(r.header("Transfer-Encoding"), r)
        else:
            self.assertIsNotNone(r.header("Content-Length"), "no Content-Length: %r" % r)
            if method != "HEAD":
                self.assertEqual(int(r.header("Content-Length")), len(r.body), r)

    def assertStatus(self, r, status, method="GET"):
        self.assertEqual(r.status, status, r)
        self.assertWellFormed(r, method)

    def assertUsable(self, c):
        """The connection still works: a further GET gets its 200."""
        c.send(get_request("/index.html"))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, self.web.index)

    def assertClosed(self, c, timeout=2.0):
        self.assertTrue(c.is_closed(timeout), "server kept the connection open; buffered %r" % c.buf[:200])

    def assertOpen(self, c, timeout=0.3):
        self.assertFalse(c.is_closed(timeout), "server closed the connection")
        self.assertEqual(c.buf, b"", "unexpected extra bytes from server")

    def assertRejected(self, raw, status, conn=None):
        """The request is answered with `status` + Connection: close, then the
        connection is closed."""
        c, r = self.exchange(raw, conn=conn)
        self.assertStatus(r, status)
        self.assertIn("close", r.connection_tokens(), "no Connection: close on %r" % r)
        self.assertClosed(c)
        return r


def claim_fixed_port(test, port):
    """For a test that must listen on a fixed port (the default 8080): test
    files run at once, so hold a lock on the port until the test ends, and
    skip the test if something else listens there."""
    lock = open(os.path.join(tempfile.gettempdir(), "verbd-tests-port-%d.lock" % port), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    test.addCleanup(lock.close)  # runs after the cleanups added later
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        test.skipTest("port %d is busy" % port)
    finally:
        s.close()


def free_port():
    """A loopback port free at the moment of asking, for peers (nginx,
    Apache) that cannot announce the port they bound."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

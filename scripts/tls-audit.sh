#!/bin/sh
# Audits verbd's TLS with testssl.sh (Debian package testssl.sh): makes a
# throw-away certificate, starts verbd over TLS on a free loopback port,
# runs testssl against it and fails on any vulnerability, weak protocol or
# weak cipher it reports.
#
#   scripts/tls-audit.sh [--short] [--verbd BIN] [--out DIR]
#
#   (default)  testssl's full run, once with an ECDSA P-256 certificate and
#              once with an RSA 2048 one (make test-tls-audit)
#   --short    protocols, cipher categories, server preference,
#              vulnerabilities and each cipher offered (-p -s -P -U -e),
#              ECDSA only (make test)
#   --verbd    the binary to audit (default build/verbd)
#   --out      where testssl's JSON, its report and verbd's log are kept
#              (default: DIR-of-BIN/tls-audit)
#
# Exit status: 0 clean, 1 a finding or a failure, 77 testssl is not
# installed.  What testssl reports is judged by the rules below
# (check_json): every finding of severity LOW or above, and every WARN or
# FATAL (a test testssl could not run), fails unless ALLOWED lists it with
# its reason.  INFO lines are testssl's description of the server, not
# findings; some of them are checked too (the ciphers offered).
set -u
cd "$(dirname "$0")/.."

short=0
verbd=build/verbd
out=""
while [ $# -gt 0 ]; do
    case $1 in
        --short) short=1 ;;
        --verbd) verbd=$2; shift ;;
        --out) out=$2; shift ;;
        *) echo "usage: $0 [--short] [--verbd BIN] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done

testssl=$(command -v testssl || command -v testssl.sh || true)
if [ -z "$testssl" ]; then
    echo "tls-audit: testssl.sh is not installed (apt-get install testssl.sh, or scripts/deps.sh test)"
    exit 77
fi
for tool in openssl python3; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "tls-audit: $tool is missing (scripts/deps.sh test)"
        exit 1
    fi
done
if [ ! -x "$verbd" ]; then
    echo "tls-audit: $verbd is not an executable (make)"
    exit 1
fi
[ -n "$out" ] || out=$(dirname "$verbd")/tls-audit
rm -rf "$out"
mkdir -p "$out/www"
echo "verbd TLS audit" > "$out/www/index.html"

pid=""
stop_verbd() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pid=""
    fi
}
trap 'stop_verbd' EXIT
trap 'stop_verbd; exit 1' INT TERM

# A certificate for localhost valid for a year (short-lived ones are
# testssl findings of their own): ecdsa (P-256) or rsa (2048 bits).
make_cert() {
    case $1 in
        ecdsa) newkey="-newkey ec -pkeyopt ec_paramgen_curve:P-256" ;;
        rsa) newkey="-newkey rsa:2048" ;;
    esac
    # shellcheck disable=SC2086
    openssl req -x509 $newkey -nodes -days 365 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -keyout "$out/$1.key" -out "$out/$1.crt" >/dev/null 2>&1
}

# Starts verbd on 127.0.0.1, port 0 (a free one), and reads the port from
# its "listening on https://127.0.0.1:PORT/" line.
start_verbd() {
    "$verbd" "$out/www" --listen 127.0.0.1:0 --workers 2 --access-log off \
        --tls-certificate "$out/$1.crt" --tls-certificate-key "$out/$1.key" \
        > "$out/verbd-$1.out" 2> "$out/verbd-$1.log" &
    pid=$!
    port=""
    i=0
    while [ $i -lt 100 ]; do
        port=$(sed -n 's|.*listening on https://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' \
            "$out/verbd-$1.out" | head -n 1)
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "tls-audit: verbd did not start; its output:"
    cat "$out/verbd-$1.out" "$out/verbd-$1.log"
    return 1
}

# The rules.  testssl.sh 3.0's flat JSON is a list of
# {"id", "severity", "finding", ...}; severities are OK, INFO, LOW, MEDIUM,
# HIGH, CRITICAL, and WARN or FATAL when a test could not be run.
check_json() {
    python3 - "$1" "$2" <<'EOF'
import json, re, sys

path, label = sys.argv[1], sys.argv[2]

# Findings expected against a test instance on localhost, each with why it
# says nothing against verbd's TLS.  (id: (severity, reason)); a finding
# with another severity than the one listed is not allowed.
ALLOWED = {
    "engine_problem": ("WARN",
        "about testssl's own openssl binary (no GOST engine), not about the server"),
    "cert_revocation": ("HIGH",
        "CRL and OCSP URIs are written into a certificate by the CA that issues it; "
        "the self-signed test certificate has none and a server cannot add them"),
    "security_headers": ("MEDIUM",
        "X-Frame-Options, Content-Security-Policy and the like are a site's content "
        "policy, added per location with `header`; not part of the TLS configuration"),
    "HSTS": ("LOW",
        "Strict-Transport-Security commits a domain to HTTPS for clients; the operator "
        "adds it with `header` once a trusted certificate is in place (docs/tls.md); "
        "meaningless for localhost with a self-signed certificate"),
    "DNS_CAArecord": ("LOW",
        "CAA is a DNS record of the domain, not of the server; localhost has none"),
    # Allowed only when every cipher offered is checked below to be
    # ECDHE or TLS 1.3 with AEAD (STRONG_CIPHER).
    "cipher_order": ("HIGH",
        "verbd lets the client choose among its ciphers (no server preference), as "
        "Mozilla's intermediate profile does, because each one it offers is strong "
        "(checked: every cipher offered is ECDHE or TLS 1.3, with AEAD); "
        "testssl 3.0 rates any client-chosen order HIGH"),
}

RANK = {"OK": 0, "INFO": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4,
        "WARN": 5, "FATAL": 5}
STRONG_CIPHER = re.compile(
    r"^(TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256|AES_128_CCM_SHA256)"
    r"|ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305|AES(128|256)-CCM))$")

with open(path) as f:
    entries = json.load(f)
by_id = {}
for e in entries:
    by_id.setdefault(e["id"], []).append(e)

problems, allowed = [], []

def finding(id_):
    return by_id[id_][0]["finding"] if id_ in by_id else None

if "scanTime" not in by_id:
    problems.append("testssl did not finish its scan (no scanTime in %s)" % path)

# Protocols: 1.2 and 1.3 only.
for p in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
    f = finding(p)
    if f is None or not f.startswith("not offered"):
        problems.append("%s: %s (want: not offered)" % (p, f or "not tested"))
for p in ("TLS1_2", "TLS1_3"):
    f = finding(p)
    if f is None or not f.startswith("offered"):
        problems.append("%s: %s (want: offered)" % (p, f or "not tested"))

# Cipher categories, and each cipher offered.
for c in ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"):
    f = finding("cipherlist_" + c)
    if f is None or not f.startswith("not offered"):
        problems.append("cipherlist_%s: %s (want: not offered)" % (c, f or "not tested"))
ciphers = []
for e in entries:
    # -e: "cipher_xc02b" = "xc02b ECDHE-ECDSA-AES128-GCM-SHA256 ...";
    # -E: "cipher-tls1_2_xc02b" = "TLS 1.2 xc02b ECDHE-ECDSA-... ..."
    words = e["finding"].split()
    if re.match(r"^cipher_x[0-9a-f]+$", e["id"]) and len(words) > 1:
        ciphers.append(words[1])
    elif re.match(r"^cipher-tls1_[0-3]_x[0-9a-f]+$", e["id"]) and len(words) > 3:
        ciphers.append(words[3])
if not ciphers:
    problems.append("testssl listed no cipher offered (-e did not run?)")
weak = sorted(set(c for c in ciphers if not STRONG_CIPHER.match(c)))
if weak:
    problems.append("ciphers offered that are not ECDHE/TLS 1.3 with AEAD: " + " ".join(weak))

# Every finding above INFO, and every test testssl could not run.
for e in entries:
    sev = e["severity"]
    if RANK.get(sev, 5) == 0:
        continue
    rule = ALLOWED.get(e["id"])
    line = "%s %s: %s" % (sev, e["id"], e["finding"])
    if rule and rule[0] == sev and not (e["id"] == "cipher_order" and (weak or not ciphers)):
        allowed.append("%s\n      allowed: %s" % (line, rule[1]))
    else:
        problems.append(line)

for a in allowed:
    print("  allowed  " + a)
for p in problems:
    print("  FINDING  " + p)
print("%s: %d ciphers offered (%s), %d findings allowed, %d not"
      % (label, len(set(ciphers)), " ".join(sorted(set(ciphers))), len(allowed), len(problems)))
sys.exit(1 if problems else 0)
EOF
}

if [ $short = 1 ]; then
    kinds="ecdsa"
    sections="-p -s -P -U -e"
    what=short
else
    kinds="ecdsa rsa"
    sections=""
    what=full
fi

status=0
start=$(date +%s)
for kind in $kinds; do
    if ! make_cert $kind; then
        echo "FAIL tls-audit $kind: openssl req could not make a certificate"
        status=1
        continue
    fi
    if ! start_verbd $kind; then
        echo "FAIL tls-audit $kind: verbd did not start"
        status=1
        continue
    fi
    t0=$(date +%s)
    # --add-ca: the test certificate is its own trust anchor, so the chain
    # of trust is checked rather than reported as self-signed.  --nodns
    # none: nothing is looked up; --ip: the loopback address only.
    # shellcheck disable=SC2086
    "$testssl" --quiet --color 0 --warnings batch --nodns none --ip 127.0.0.1 \
        --add-ca "$out/$kind.crt" --connect-timeout 10 --openssl-timeout 10 \
        --jsonfile "$out/testssl-$kind.json" $sections "https://localhost:$port/" \
        > "$out/testssl-$kind.txt" 2>&1
    rc=$?
    stop_verbd
    t1=$(date +%s)
    label="tls-audit $kind ($what, testssl exit $rc, $((t1 - t0))s)"
    if [ ! -s "$out/testssl-$kind.json" ]; then
        echo "FAIL $label: no JSON; testssl said:"
        tail -n 20 "$out/testssl-$kind.txt"
        status=1
    elif check_json "$out/testssl-$kind.json" "$label" > "$out/check-$kind.txt"; then
        cat "$out/check-$kind.txt"
        echo "ok   $label"
    else
        cat "$out/check-$kind.txt"
        echo "FAIL $label: see $out/testssl-$kind.txt"
        status=1
    fi
done
echo "tls-audit: $what audit took $(($(date +%s) - start))s; reports in $out"
exit $status

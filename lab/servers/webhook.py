#!/usr/bin/env python3
"""cfgsnap lab: the webhook receiver of node webhook, and the check lab/verify.sh runs on its log.

  webhook.py serve --listen ADDR:PORT --secret-file FILE --log FILE
      Takes POSTs. Each request appends one JSON line to the log (and prints it):
      when, the path, whether X-Cfgsnap-Signature is "sha256=" and the HMAC-SHA256
      of the exact body under the secret (the first line of the secret file, as
      cfgsnap reads it), and the body, parsed when it is JSON. A correctly signed
      body gets 200; any other gets 401, which cfgsnap reports as refused
      credentials, so a secret that differs shows on the switch, not only here.
      Once it listens it creates /run/cfgsnap-lab.ready (the node's healthcheck).

  webhook.py check --log FILE --name NAME --user USER --last-change TIME [--stores N]
      Exit 0 if the log holds a correctly signed snapshot record named NAME, by
      USER, with that last-change (any RFC 3339 spelling of the same instant),
      that already names N stores; else print why and exit 1.

Standard library only: it runs in python:3.13-alpine as it is.
"""

import argparse
import datetime
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading

READY = "/run/cfgsnap-lab.ready"
MAX_BODY = 64 << 20


def read_secret(path):
    with open(path, "rb") as f:
        line = f.readline().rstrip(b"\r\n")
    if not line:
        sys.exit("webhook.py: %s is empty or has an empty first line" % path)
    return line


def signature_ok(secret, body, header):
    if not header or not header.startswith("sha256="):
        return False
    want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want.encode(), header.encode())


def serve(args):
    secret = read_secret(args.secret_file)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "cfgsnap-lab-webhook/1"

        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self.answer(411 if length < 0 else 413, "want a Content-Length of at most %d" % MAX_BODY)
                return
            body = self.rfile.read(length)
            ok = signature_ok(secret, body, self.headers.get("X-Cfgsnap-Signature"))
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode("utf-8", "replace")
            entry = {
                "received": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                "from": self.client_address[0],
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "signature": "ok" if ok else "bad",
                "body": parsed,
            }
            line = json.dumps(entry, sort_keys=True)
            with lock:
                with open(args.log, "a") as f:
                    f.write(line + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            print(line, flush=True)
            if ok:
                self.answer(200, "logged")
            else:
                self.answer(401, "bad or missing X-Cfgsnap-Signature")

        def answer(self, code, text):
            data = (text + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *a):
            # The JSON line above is the log; keep stderr for errors.
            pass

    host, _, port = args.listen.rpartition(":")
    httpd = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    if args.ready:
        open(args.ready, "w").close()
    print("webhook.py: listening on %s, logging to %s" % (args.listen, args.log), flush=True)
    httpd.serve_forever()


def instant(value):
    """An RFC 3339 time as a UTC datetime, to compare spellings of one instant."""
    if not isinstance(value, str):
        return None
    v = value.strip()
    if v.endswith("Z") or v.endswith("z"):
        v = v[:-1] + "+00:00"
    # Python before 3.11 takes at most 6 fraction digits.
    head, dot, rest = v.partition(".")
    if dot:
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        v = head + "." + (digits + "000000")[:6] + rest
    try:
        t = datetime.datetime.fromisoformat(v)
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return t.astimezone(datetime.timezone.utc)


def check(args):
    want_time = instant(args.last_change)
    if want_time is None:
        sys.exit("webhook.py check: --last-change %r is not an RFC 3339 time" % args.last_change)
    seen, why = 0, []
    try:
        lines = open(args.log).read().splitlines()
    except OSError as e:
        print("webhook.py check: no log yet: %s" % e)
        return 1
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        body = entry.get("body")
        if not isinstance(body, dict) or body.get("name") != args.name:
            continue
        seen += 1
        problems = []
        if entry.get("signature") != "ok":
            problems.append("signature %s" % entry.get("signature"))
        if body.get("user") != args.user:
            problems.append("user %r, want %r" % (body.get("user"), args.user))
        if instant(body.get("last_change")) != want_time:
            problems.append("last_change %r, want %r" % (body.get("last_change"), args.last_change))
        stored = body.get("stored") or []
        if args.stores is not None and len(stored) != args.stores:
            problems.append("%d stores named (%s), want %d" % (len(stored), ", ".join(stored), args.stores))
        if not problems:
            print("webhook: %s by %s, signed; stores: %s" % (args.name, args.user, ", ".join(stored) or "none"))
            return 0
        why.append("; ".join(problems))
    if seen == 0:
        print("webhook.py check: no record named %s in %s (%d lines)" % (args.name, args.log, len(lines)))
    else:
        print("webhook.py check: %d record(s) named %s, none right: %s" % (seen, args.name, " | ".join(why)))
    return 1


def main():
    p = argparse.ArgumentParser(description="cfgsnap lab webhook receiver")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", default="0.0.0.0:8080")
    s.add_argument("--secret-file", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--ready", default=READY, help="file created once listening ('' for none)")
    c = sub.add_parser("check")
    c.add_argument("--log", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--user", required=True)
    c.add_argument("--last-change", required=True)
    c.add_argument("--stores", type=int)
    args = p.parse_args()
    if args.cmd == "serve":
        serve(args)
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())

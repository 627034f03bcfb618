# cfgsnap.py: SR Linux event-handler script that hands each event to cfgsnap.
#
# Thin on purpose: it does not interpret the event. It passes the input string,
# hex-encoded, to `cfgsnap handle HEX` in a run-script action, and the binary
# decodes, checks and acts on it. Hex means no character of the input can reach
# a shell, whether or not the event handler runs cmdline through one, and the
# binary gets the exact bytes it was called with. The few options read here are
# the ones that decide how the binary is started; the binary reads all options
# itself from the event (and rejects typos loudly).
#
# Runs on MicroPython 1.18+ (what SR Linux embeds) and on CPython 3. It uses json
# only: binascii is not confirmed on the switch, so hex is encoded by hand.
# Tests: eventhandler-scripts/script_test.go (both interpreters).

import json

DEFAULT_BINARY = "/usr/local/bin/cfgsnap"
DEFAULT_SPOOL_DIR = "/etc/opt/srlinux/cfgsnap"
DEFAULT_RETRY = "60"
SUDO = "/usr/bin/sudo -n "
PATH_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._+-"
HEX_DIGITS = b"0123456789abcdef"
# Linux refuses one argument longer than MAX_ARG_STRLEN (128 KiB with its NUL),
# and the whole cmdline is one argument when the event handler runs it via sh -c.
MAX_CMDLINE = 131071


def option(options, name, default):
    # Values arrive as strings, or as lists of strings for `values [...]`;
    # as in the binary, the last value wins.
    value = options.get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    if value is None:
        return default
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def shown(value):
    # One printable line for the instance state, however hostile the value:
    # json.dumps escapes newlines and control characters.
    return json.dumps(value[:60]) + ("..." if len(value) > 60 else "")


def valid_binary(path):
    # Only characters that mean nothing to a shell, so the cmdline needs no quoting.
    return len(path) > 1 and path[0] == "/" and all(c in PATH_CHARS for c in path)


def millis(seconds):
    # Seconds ("60", "0.5") in whole milliseconds, or None unless 0 to 86400.
    # Only ASCII digits and one dot: int() and float() alone accept more forms
    # ("1e3", non-ASCII digits), and not the same ones in both interpreters.
    parts = seconds.split(".")
    whole = parts[0]
    frac = parts[1] if len(parts) == 2 else ""
    digits = whole + frac
    if len(parts) > 2 or not digits or len(whole) > 5 or not all(c in "0123456789" for c in digits):
        return None
    ms = int(whole or "0") * 1000 + int((frac + "000")[:3])
    return ms if ms <= 86400000 else None


def has_pending(spool_dir):
    # The binary keeps SPOOL_DIR/pending: the number of snapshots still waiting
    # for delivery. Missing, unreadable or not a plain number counts as none.
    try:
        with open(spool_dir + "/pending", "rb") as f:
            data = f.read(32).strip()
    except Exception:
        return False
    digits = len(data) > 0 and all(48 <= b <= 57 for b in data)
    return digits and any(b != 48 for b in data)


def to_hex(data):
    # One preallocated bytearray: MicroPython's heap is small, a list of
    # two-character strings would cost far more.
    out = bytearray(2 * len(data))
    for i in range(len(data)):
        out[2 * i] = HEX_DIGITS[data[i] >> 4]
        out[2 * i + 1] = HEX_DIGITS[data[i] & 15]
    return str(out, "ascii")


def event_handler_main(in_json_str):
    data = in_json_str.encode("utf-8")
    if not data:
        # Nothing to hex-encode: "handle" would get no argument at all.
        print("cfgsnap.py: error: empty event; cfgsnap not run")
        return json.dumps({"actions": []})

    # A malformed event still goes to the binary, with default options here:
    # the binary reports malformed events clearly, and a switch whose event
    # handler sends something unexpected should be heard from, not ignored.
    options = {}
    try:
        event = json.loads(in_json_str)
        if isinstance(event, dict) and isinstance(event.get("options"), dict):
            options = event["options"]
    except Exception:
        pass

    binary = option(options, "binary", DEFAULT_BINARY)
    if not valid_binary(binary):
        print("cfgsnap.py: error: option binary must be an absolute path of A-Z a-z 0-9 / . _ + - only, got %s; cfgsnap not run" % shown(binary))
        return json.dumps({"actions": []})

    sudo = option(options, "sudo", "auto")
    if sudo not in ("auto", "true", "false"):
        print("cfgsnap.py: warning: option sudo must be auto, true or false, got %s; using auto" % shown(sudo))
        sudo = "auto"
    if sudo == "auto":
        # netns none means no namespace switch, the only thing sudo is for.
        sudo = "false" if option(options, "netns", "auto") == "none" else "true"
    head = (SUDO if sudo == "true" else "") + binary + " handle "
    if len(head) + 2 * len(data) > MAX_CMDLINE:
        print("cfgsnap.py: error: event of %d bytes is too long to pass on a command line; cfgsnap not run" % len(data))
        return json.dumps({"actions": []})

    actions = []
    retry = option(options, "retry-interval", DEFAULT_RETRY)
    delay = millis(retry)
    if delay is None:
        print("cfgsnap.py: warning: option retry-interval must be seconds from 0 to 86400, got %s; using %s" % (shown(retry), DEFAULT_RETRY))
        delay = millis(DEFAULT_RETRY)
    if delay > 0 and has_pending(option(options, "spool-dir", DEFAULT_SPOOL_DIR)):
        # Snapshots wait for delivery: have the event handler call us again with
        # the same input after the delay (the binary deduplicates). The form, an
        # action whose value is the delay in whole milliseconds, is the one used
        # in saogawa/srl-event-handler, mac-table-dump/periodic_script_runner.py
        # ({"reinvoke-with-delay": 10000}) and mac-dup-enh/mac-dup-enh4.py.
        # It goes before run-script in case a failed or timed-out action stops
        # the ones after it: a failing run is what leaves snapshots waiting.
        actions.append({"reinvoke-with-delay": delay})
    # always-execute: a reinvocation or a reload repeats the same input, hence
    # the same cmdline, and without the flag the event handler may skip an
    # action identical to the previous run's (the periodic runner cited above,
    # which repeats one command, sets it too).
    actions.append({"run-script": {"cmdline": head + to_hex(data), "always-execute": True}})
    return json.dumps({"actions": actions})

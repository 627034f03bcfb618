# cfgsnap.py: SR Linux event-handler script that hands each event to cfgsnap.
#
# Thin on purpose: it does not check the event. It passes the input string,
# hex-encoded, to `cfgsnap handle HEX` in a run-script action, and the binary
# decodes, checks and acts on it. Hex means no character of the input can reach
# a shell, whether or not the event handler runs cmdline through one, and the
# binary gets the exact bytes it was called with. The few options read here are
# the ones that decide how the binary is started; the binary reads all options
# itself from the event (and rejects typos loudly).
#
# Which program runs is root's choice, not the instance's: BINARY below. The
# script lives in root's eventmgr folder, while the instance's options are
# anyone's who may configure the switch, and the cmdline may run as root
# (sudo, or run-as-user). Installed elsewhere? Edit BINARY here.
#
# The one thing it remembers, in the event handler's persistent-data, is the
# last-change it last handed on, to decide when to ask for a second look (see
# the retry rule in event_handler_main). The event-handler instance that runs
# this script is cfgsnap's own, not shared with other scripts, so that one key
# is all its persistent-data holds: the script reads nothing else there, and
# returns that key alone.
#
# Runs on MicroPython 1.18+ (what SR Linux embeds) and on CPython 3. It uses json
# only: binascii is not confirmed on the switch, so hex is encoded by hand.
# Tests: eventhandler-scripts/script_test.go (both interpreters).

import json

BINARY = "/usr/local/bin/cfgsnap"
DEFAULT_SPOOL_DIR = "/etc/opt/srlinux/cfgsnap"
DEFAULT_RETRY = "60"
SUDO = "/usr/bin/sudo -n "
PATH_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._+-"
HEX_DIGITS = b"0123456789abcdef"
# Linux refuses one argument longer than MAX_ARG_STRLEN (128 KiB with its NUL),
# and the whole cmdline is one argument when the event handler runs it via sh -c.
MAX_CMDLINE = 131071
LAST_CHANGE_PATH = "system configuration last-change"
# The persistent-data key, the instance's only one: any other key found there
# is ignored, and not written back.
MEMORY_KEY = "cfgsnap-last-change"
# A real last-change is 24 characters (2025-09-20T11:02:08.456Z); the bound keeps
# what is remembered small whatever the event carries.
MAX_LAST_CHANGE = 64


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
    return isinstance(path, str) and len(path) > 1 and path[0] == "/" and all(c in PATH_CHARS for c in path)


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


def usable(value):
    # A printable ASCII string of 1 to MAX_LAST_CHANGE characters: the binary
    # refuses all other last-change values but a time with dozens of fraction
    # digits, so they leave no snapshot that needs a second look, and what is
    # remembered stays small, and plain JSON in both interpreters.
    return isinstance(value, str) and 0 < len(value) <= MAX_LAST_CHANGE and all(" " <= c <= "~" for c in value)


def last_change(event):
    # The value of the first "system configuration last-change" path, the one
    # the binary reads too, if usable(); else None (the pending rule still
    # applies).
    paths = event.get("paths")
    if not isinstance(paths, list):
        return None
    for p in paths:
        if isinstance(p, dict) and p.get("path") == LAST_CHANGE_PATH:
            value = p.get("value")
            return value if usable(value) else None
    return None


def remembered(event):
    # The last-change the previous run handed on, if the persistent-data is an
    # object holding a usable one; else None, silently: nothing else in it is
    # ours (see MEMORY_KEY).
    data = event.get("persistent-data")
    value = data.get(MEMORY_KEY) if isinstance(data, dict) else None
    return value if usable(value) else None


def reply(actions, memory):
    # The output, with persistent-data only when there is a last-change to
    # remember. It is ASCII as json.dumps writes it, in both interpreters: the
    # actions hold hex, a checked path and numbers, memory a usable() value.
    out = {"actions": actions}
    if memory is not None:
        out["persistent-data"] = {MEMORY_KEY: memory}
    return json.dumps(out)


def event_handler_main(in_json_str):
    data = in_json_str.encode("utf-8")
    if not data:
        # Nothing to hex-encode: "handle" would get no argument at all.
        print("cfgsnap.py: error: empty event; cfgsnap not run")
        return reply([], None)

    # A malformed event still goes to the binary, with default options here:
    # the binary reports malformed events clearly, and a switch whose event
    # handler sends something unexpected should be heard from, not ignored.
    # One that is not a JSON object has no last-change and no remembered one:
    # it gets no persistent-data back, and a retry only while snapshots wait
    # (the binary refuses it, so it adds none).
    options = {}
    current = None  # the event's last-change, if usable
    previous = None  # the one remembered in persistent-data, if usable
    try:
        event = json.loads(in_json_str)
    except Exception:
        event = None
    if isinstance(event, dict):
        if isinstance(event.get("options"), dict):
            options = event["options"]
        current = last_change(event)
        previous = remembered(event)

    # From here on, the returns that run nothing remember what was remembered:
    # nothing new was handed on.
    # An option "binary" in the instance is not read here: the binary refuses it
    # loudly, which is how an old instance learns where the setting went.
    if not valid_binary(BINARY):
        print("cfgsnap.py: error: BINARY at the top of cfgsnap.py must be an absolute path of A-Z a-z 0-9 / . _ + - only, got %s; cfgsnap not run" % shown(str(BINARY)))
        return reply([], previous)
    binary = BINARY

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
        return reply([], previous)

    actions = []
    retry = option(options, "retry-interval", DEFAULT_RETRY)
    delay = millis(retry)
    if delay is None:
        print("cfgsnap.py: warning: option retry-interval must be seconds from 0 to 86400, got %s; using %s" % (shown(retry), DEFAULT_RETRY))
        delay = millis(DEFAULT_RETRY)

    # When to retry. SPOOL_DIR/pending is read now, before the binary this run
    # starts has tried to deliver: it shows what earlier runs left waiting, not
    # what this run's snapshot will do. So a last-change not handed on before
    # (a new commit, or the first run after boot or enable, which has no
    # persistent-data) always gets one reinvocation, the binary's second look
    # at a first delivery that may fail; a reinvocation, which carries the
    # persistent-data this run returns, hence the same last-change, asks for
    # another only while snapshots wait. Without a usable last-change there is
    # nothing new to look at again, so the pending rule alone applies.
    new = current is not None and current != previous
    if delay > 0 and (new or has_pending(option(options, "spool-dir", DEFAULT_SPOOL_DIR))):
        # The event handler calls us again after the delay with the same paths
        # and options, and the persistent-data returned below (the binary
        # deduplicates the repeated event). The form, an action whose value is
        # the delay in whole milliseconds, is the one used in
        # saogawa/srl-event-handler, mac-table-dump/periodic_script_runner.py
        # ({"reinvoke-with-delay": 10000}) and mac-dup-enh/mac-dup-enh4.py.
        # It goes before run-script in case a failed or timed-out action stops
        # the ones after it: a failing run is what leaves snapshots waiting.
        actions.append({"reinvoke-with-delay": delay})
    # always-execute: a reinvocation or a reload can repeat the previous input,
    # hence the same cmdline, and without the flag the event handler may skip an
    # action identical to the previous run's (the periodic runner cited above,
    # which repeats one command, sets it too).
    actions.append({"run-script": {"cmdline": head + to_hex(data), "always-execute": True}})
    # Remember what was handed on, whatever retry-interval is: a later change
    # to it comes with a commit, hence a new last-change anyway. Without a
    # usable one, what was remembered stays.
    return reply(actions, current if current is not None else previous)

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
# The one thing it remembers, in the event handler's persistent-data, is the
# last-change it last handed on, to decide when to ask for a second look (see
# the retry rule in event_handler_main).
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
LAST_CHANGE_PATH = "system configuration last-change"
# The persistent-data key this script owns; every other key is written back as
# it came, so that nothing another user of the instance keeps there is lost.
MEMORY_KEY = "cfgsnap-last-change"
# A real last-change is 24 characters (2025-09-20T11:02:08.456Z); the bound keeps
# what is remembered small whatever the event carries.
MAX_LAST_CHANGE = 64
# How deep a persistent-data value may nest and still be written back. The check
# walks it without recursion, and json.dumps, which does recurse, then stays far
# from MicroPython's small stack.
MAX_DEPTH = 32


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


def last_change(event):
    # The value of the first "system configuration last-change" path, the one
    # the binary reads too. None when there is none, or when it is not a
    # printable ASCII string of at most MAX_LAST_CHANGE characters: the binary
    # refuses all such values but a time with dozens of fraction digits, so
    # they leave no snapshot that needs a second look (the pending rule still
    # applies), and what is remembered stays small and plain.
    paths = event.get("paths")
    if not isinstance(paths, list):
        return None
    for p in paths:
        if isinstance(p, dict) and p.get("path") == LAST_CHANGE_PATH:
            value = p.get("value")
            if isinstance(value, str) and 0 < len(value) <= MAX_LAST_CHANGE and all(" " <= c <= "~" for c in value):
                return value
            return None
    return None


def writable(value):
    # Whether json.dumps writes value back as it came, the same in both
    # interpreters: plain JSON values nested at most MAX_DEPTH deep. Numbers past
    # a double's range load as inf, which no JSON can hold. Walked with a list,
    # not recursion (MicroPython's stack is small).
    todo = [(value, 0)]
    while todo:
        v, depth = todo.pop()
        if isinstance(v, (list, dict)):
            if depth >= MAX_DEPTH:
                return False
            for x in (v.values() if isinstance(v, dict) else v):
                todo.append((x, depth + 1))
        elif isinstance(v, float):
            if v - v != 0:
                return False
        elif not (v is None or isinstance(v, (str, int, bool))):
            # bool is named: in MicroPython it is no subclass of int.
            return False
    return True


def persistent(event):
    # The incoming persistent-data as an object to write back. The event handler
    # hands each run what the run before returned, so a key left out of the
    # output may be lost: keep every key but those whose value cannot be
    # written back, and say so when there are any.
    data = event.get("persistent-data")
    if data is None:
        return {}
    if not isinstance(data, dict):
        # Named, not printed: it may be huge, or nested too deep to print.
        # bool before number: in CPython it is a subclass of int.
        kind = "a list" if isinstance(data, list) else "a string" if isinstance(data, str) else "true or false" if isinstance(data, bool) else "a number"
        print("cfgsnap.py: warning: persistent-data is %s, not an object; replaced" % kind)
        return {}
    kept = {}
    dropped = []
    for key in data:
        if writable(data[key]):
            kept[key] = data[key]
        else:
            dropped.append(key)
    if dropped:
        print("cfgsnap.py: warning: persistent-data: dropped %d key(s) nested over %d levels or holding a number out of range, first %s" % (len(dropped), MAX_DEPTH, shown(dropped[0])))
    return kept


def ascii_json(value):
    # json.dumps(value) in ASCII only. CPython escapes every non-ASCII character;
    # MicroPython writes them as they are, and writes a surrogate from the input
    # (the \ud83d of an escaped emoji) as bytes that are not UTF-8, which the
    # event handler could refuse along with every action. So escape what is left
    # as \uXXXX, as CPython does (a code point above U+FFFF as a surrogate pair;
    # MicroPython holds each lone surrogate as three bytes, decoded here as one).
    text = json.dumps(value)
    data = text.encode("utf-8")
    if len(data) == len(text):
        return text
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            out.append(b)
            i += 1
            continue
        n = 1 if b < 0xE0 else 2 if b < 0xF0 else 3  # continuation bytes
        code = b & (0x3F >> n)
        for c in data[i + 1:i + 1 + n]:
            code = (code << 6) | (c & 0x3F)
        i += 1 + n
        if code >= 0x10000:
            code -= 0x10000
            out.extend(("\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))).encode("ascii"))
        else:
            out.extend(("\\u%04x" % code).encode("ascii"))
    return str(out, "ascii")


def reply(actions, memory):
    # The output. persistent-data goes only when there is something to keep:
    # an empty object holds nothing the next run could use. The actions are
    # ASCII already (hex, a checked path, numbers); persistent-data is made so.
    if not memory:
        return json.dumps({"actions": actions})
    return '{"actions": %s, "persistent-data": %s}' % (json.dumps(actions), ascii_json(memory))


def event_handler_main(in_json_str):
    data = in_json_str.encode("utf-8")
    if not data:
        # Nothing to hex-encode: "handle" would get no argument at all.
        print("cfgsnap.py: error: empty event; cfgsnap not run")
        return reply([], None)

    # A malformed event still goes to the binary, with default options here:
    # the binary reports malformed events clearly, and a switch whose event
    # handler sends something unexpected should be heard from, not ignored.
    # One that is not a JSON object has no persistent-data to keep either, and
    # no last-change: it gets no persistent-data back, and a retry only while
    # snapshots wait (the binary refuses it, so it adds none).
    options = {}
    memory = None  # the persistent-data to return; None: not an object
    current = None  # the event's last-change, if usable
    try:
        event = json.loads(in_json_str)
    except Exception:
        event = None
    if isinstance(event, dict):
        if isinstance(event.get("options"), dict):
            options = event["options"]
        memory = persistent(event)
        current = last_change(event)

    # From here on, the returns that run nothing still give back the incoming
    # persistent-data (what persistent() kept of it) unchanged: nothing was
    # handed on, so there is nothing new to remember, and nothing is lost.
    binary = option(options, "binary", DEFAULT_BINARY)
    if not valid_binary(binary):
        print("cfgsnap.py: error: option binary must be an absolute path of A-Z a-z 0-9 / . _ + - only, got %s; cfgsnap not run" % shown(binary))
        return reply([], memory)

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
        return reply([], memory)

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
    remembered = memory.get(MEMORY_KEY) if memory else None
    new = current is not None and current != remembered
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
    if current is not None:
        # Remember what was handed on, whatever retry-interval is: a later
        # change to it comes with a commit, hence a new last-change anyway.
        memory[MEMORY_KEY] = current
    return reply(actions, memory)

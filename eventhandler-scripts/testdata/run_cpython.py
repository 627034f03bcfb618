"""Runs an event-handler script in CPython exactly as ../upython/run.mjs runs it
in MicroPython: same command line, same output, so that the tests can hold both
interpreters to the same assertions.

  python3 run_cpython.py [--mirror DIR]... SCRIPT.py [INPUT.json]
  python3 run_cpython.py --batch SCRIPT.py < CASES.json

--mirror is accepted and ignored: CPython sees the host's files.
"""

import contextlib
import importlib.util
import io
import json
import sys
import traceback

sys.dont_write_bytecode = True  # leave no __pycache__ beside the script

def run_case(path, text):
    printed = io.StringIO()
    output = error = None
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            # A fresh module per case, as run.mjs uses a fresh interpreter.
            spec = importlib.util.spec_from_file_location("eh_script", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            output = module.event_handler_main(text)
        if not isinstance(output, str):
            error = "event_handler_main returned %s, not a string" % type(output).__name__
            output = None
    except BaseException:
        error = traceback.format_exc()
    return {"output": output, "printed": printed.getvalue(), "error": error}


def usage(msg):
    sys.stderr.write("run_cpython.py: %s\n%s" % (msg, __doc__))
    sys.exit(2)


def main(argv):
    batch = False
    rest = []
    i = 0
    while i < len(argv):
        if argv[i] == "--batch":
            batch = True
        elif argv[i] == "--mirror":
            i += 1
            if i >= len(argv):
                usage("--mirror needs a folder")
        elif argv[i].startswith("--"):
            usage("unknown flag " + argv[i])
        else:
            rest.append(argv[i])
        i += 1
    if not 1 <= len(rest) <= (1 if batch else 2):
        usage("wrong number of arguments")

    if len(rest) == 2:
        with open(rest[1], "rb") as f:
            text = f.read().decode("utf-8")
    else:
        text = sys.stdin.buffer.read().decode("utf-8")

    if batch:
        results = [run_case(rest[0], c["input"]) for c in json.loads(text)]
        sys.stdout.write(json.dumps(results) + "\n")
        return 0
    r = run_case(rest[0], text)
    for line in r["printed"].split("\n"):
        if line:
            sys.stderr.write("script: " + line + "\n")
    if r["error"] is not None:
        sys.stderr.write("run_cpython.py: " + r["error"] + "\n")
        return 1
    sys.stdout.write(r["output"] + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

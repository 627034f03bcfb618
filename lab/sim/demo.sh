#!/usr/bin/env bash
# make demo: one simulated commit on this machine, end to end.
#   the switch     lab/sim/sr_cli (a stand-in) serving a real SR Linux config from ../shared/fixtures
#   the commit     user alice, comment "demo: describe ethernet-1/1", last-change = now
#   the script     eventhandler-scripts/cfgsnap.py, run in real MicroPython (Node)
#   the run-script its cmdline, run by /bin/sh exactly as returned
#   the binary     bin/cfgsnap: handle returns at once, a detached worker delivers
#   the target     file://demo-out/backups (no outside server needed)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/demo-out
fixture=$root/../shared/fixtures/srlinux/srl-config-dcf-leaf11.json
[ -f "$fixture" ] || { echo "demo: $fixture not found: the repository must sit beside shared/" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/switch"
cp lab/sim/sr_cli "$out/switch/sr_cli"
# The running configuration as `info from running / | as json` prints it: no
# _preamble. The fixture sets no host-name; the switch is called leaf11.
python3 - "$fixture" "$out/switch/running.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d.pop("_preamble", None)
d["srl_nokia-system:system"]["srl_nokia-system-name:name"] = {"host-name": "leaf11"}
json.dump(d, open(sys.argv[2], "w"), indent=2)
PY

# The commit: the switch records it, then sets last-change.
started=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.05
last_change=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
cat >"$out/switch/commits.json" <<JSON
{"system": {"configuration": {"commit": [
  {"id": 1, "type": "shared", "name": "", "status": "complete", "comment": "", "username": "admin", "started": "2025-09-20T10:00:00.000Z", "ended": "2025-09-20T10:00:01.000Z"},
  {"id": 2, "type": "shared", "name": "", "status": "complete", "comment": "demo: describe ethernet-1/1", "username": "alice", "started": "$started", "ended": "$last_change"}
]}}}
JSON

# The event handler's input for this commit, with the instance's options.
cat >"$out/input.json" <<JSON
{"paths":[{"path":"system configuration last-change","value":"$last_change"}],"schemas":[{"path":"system configuration last-change"}],
 "options":{"target":"file://$out/backups","source":"sr_cli","sr-cli":"$out/switch/sr_cli","netns":"none","spool-dir":"$out/spool"}}
JSON

# The script, installed as on a switch whose cfgsnap is not at /usr/local/bin:
# its BINARY line edited (which program runs is root's choice, not the instance's).
sed 's|^BINARY = "/usr/local/bin/cfgsnap"$|BINARY = "'"$root"'/bin/cfgsnap"|' eventhandler-scripts/cfgsnap.py >"$out/cfgsnap.py"
grep -q "^BINARY = \"$root/bin/cfgsnap\"$" "$out/cfgsnap.py" || { echo "demo: could not set BINARY in cfgsnap.py" >&2; exit 1; }

echo "== event handler: cfgsnap.py in MicroPython"
output=$(node eventhandler-scripts/upython/run.mjs "$out/cfgsnap.py" <"$out/input.json")
echo "$output" | cut -c1-160
cmdline=$(python3 -c 'import json,sys; print([a["run-script"]["cmdline"] for a in json.loads(sys.argv[1])["actions"] if "run-script" in a][0])' "$output")

echo "== run-script: /bin/sh -c <cmdline>"
t0=$(date +%s%N)
/bin/sh -c "$cmdline"
t1=$(date +%s%N)
echo "   returned in $(( (t1 - t0) / 1000000 )) ms"

echo "== waiting for the worker"
for _ in $(seq 100); do
	[ "$(cat "$out/spool/pending" 2>/dev/null)" = 0 ] && [ -n "$(find "$out/backups" -type f -name '*.json' 2>/dev/null)" ] && break
	sleep 0.1
done
echo "== landed"
found=0
while IFS= read -r f; do
	found=1
	printf '   %s  %s bytes\n' "${f#"$out"/}" "$(stat -c %s "$f")"
	if cmp -s "$f" "$out/switch/running.json"; then echo "   content: identical to the switch's running configuration"; else echo "   content: DIFFERS"; exit 1; fi
done < <(find "$out/backups" -type f ! -name '*.rec.json' ! -name '*.sig' | sort)
[ $found = 1 ] || { echo "   nothing; worker log:"; cat "$out/spool/worker.log" >&2; exit 1; }
# Beside each snapshot, its record: the hashes and names the chain links (see README, Signed records).
while IFS= read -r f; do
	printf '   %s  %s bytes: its record (sha256 %s)\n' "${f#"$out"/}" "$(stat -c %s "$f")" "$(sha256sum <"$f" | cut -c1-16)..."
done < <(find "$out/backups" -type f -name '*.rec.json' | sort)
echo "== worker log"
sed 's/^/   /' "$out/spool/worker.log"

#!/usr/bin/env bash
# lab/verify.sh (make lab-verify): on the lab that make lab-up deployed, one commit by
# a named user, then proof from every server that it got the snapshot of that
# commit, named after that user and that time, and from the switch that the
# event-handler instance recorded no error for it.
#
#   1. commit   alice (a local user of configs/leaf1.cli) sets mgmt0's description
#               to a fresh nonce over JSON-RPC; the switch records the commit as hers
#   2. expect   last-change and the newest commit from the switch's state: the
#               snapshot is HOST/HOST_<last-change as 20250920T110208.456Z>_alice.json
#   3. servers  sftp: the file in /backups, holding the nonce; scp: the same in
#               /backups-scp; git: the newest commit of HOST.json on main, authored by
#               alice at last-change, holding the nonce; s3: the object's metadata
#               (user, last-change) over S3 and its content; webhook: a signed
#               record of it in the receiver's log that names the four stores
#   4. switch   nothing left in the spool, no FAILED in the last report, and in
#               `info from state system event-handler instance cfgsnap`: oper-state
#               up, no last-errored-execution from the commit on, and statistics
#               execution-errors no higher than before it
#
# Needs docker, curl 7.76 or later (--aws-sigv4, --fail-with-body) and python3 (JSON), and the lab
# running. VERIFY_TIMEOUT (seconds, default 120) bounds the wait for deliveries.
# lab_test.go runs this script against a rehearsal of the lab on the build
# machine (no Docker there): a stand-in docker command and JSON-RPC server.
set -euo pipefail
cd "$(dirname "$0")"

lab=cfgsnap
node() { echo "clab-$lab-$1"; }
timeout=${VERIFY_TIMEOUT:-120}
state=${LAB_STATE:-.state} # what setup.sh made: the S3 keys (lab_test.go points it elsewhere)

# alice and her password, from the startup configuration: one place for both.
user=alice
password=$(sed -n "s/^set \/ system aaa authentication user $user password //p" configs/leaf1.cli)
[ -n "$password" ] || { echo "verify: no password for $user in configs/leaf1.cli" >&2; exit 1; }

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

for c in docker curl python3; do
	command -v "$c" >/dev/null || fail "$c is missing"
done
for n in leaf1 sftp git s3 webhook; do
	[ "$(docker inspect -f '{{.State.Running}}' "$(node $n)" 2>/dev/null)" = true ] ||
		fail "container $(node $n) is not running: make lab-up first"
done
# Addresses as docker has them, so this script never disagrees with the topology.
addr() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(node "$1")"; }
switch_ip=$(addr leaf1)
s3_ip=$(addr s3)

# json PATH... < JSON: the value at PATH (object keys, list indexes) with YANG
# module prefixes ("srl_nokia-system:") dropped from keys; strings bare, the rest
# as JSON, nothing when absent.
json() {
	python3 -c '
import json, sys
def plain(v):
    if isinstance(v, dict):
        return {k.split(":")[-1]: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v
v = plain(json.load(sys.stdin))
for p in sys.argv[1:]:
    if isinstance(v, list) and p.isdigit() and int(p) < len(v):
        v = v[int(p)]
    elif isinstance(v, dict) and p in v:
        v = v[p]
    else:
        sys.exit(0)
print(v if isinstance(v, str) else json.dumps(v))
' "$@"
}

# rpc METHOD PARAMS: a JSON-RPC call to the switch as alice; prints the result,
# fails on an error answer.
rpc() {
	local body answer
	body=$(printf '{"jsonrpc":"2.0","id":1,"method":"%s","params":%s}' "$1" "$2")
	# The credentials go to curl on stdin (-K -), not in its argument list.
	answer=$(printf 'user = "%s:%s"\n' "$user" "$password" | curl -sS --fail-with-body --max-time 30 -K - \
		-H 'Content-Type: application/json' -d "$body" "http://$switch_ip/jsonrpc") ||
		fail "JSON-RPC $1 as $user: ${answer:-no answer}"
	python3 -c '
import json, sys
a = json.loads(sys.argv[1])
if "error" in a:
    sys.exit("JSON-RPC error: " + json.dumps(a["error"]))
print(json.dumps(a["result"]))
' "$answer" || fail "JSON-RPC $1 as $user was refused: $answer"
}
state_of() { rpc get "{\"commands\":[{\"path\":\"$1\",\"datastore\":\"state\"}]}" | json 0; }

# eventually SECONDS DESCRIPTION COMMAND...: run COMMAND every 2 s until it
# succeeds; its output shows once, from the try that succeeded or the last one.
eventually() {
	local limit=$1 what=$2 end=$((SECONDS + $1)) out
	shift 2
	until out=$("$@" 2>&1); do
		if [ $SECONDS -ge $end ]; then
			[ -z "$out" ] || echo "$out" >&2
			fail "$what: not within ${limit}s"
		fi
		sleep 2
	done
	[ -z "$out" ] || echo "$out"
}

step "1. commit as $user over JSON-RPC ($switch_ip)"
instance=$(state_of "/system/event-handler/instance[name=cfgsnap]")
[ "$(json oper-state <<<"$instance")" = up ] ||
	fail "event-handler instance cfgsnap is not up: oper-state $(json oper-state <<<"$instance"), $(json oper-down-reason <<<"$instance")"
errors_before=$(json statistics execution-errors <<<"$instance")
before=$(state_of /system/configuration/last-change)
nonce="cfgsnap-lab-verify-$(date -u +%Y%m%dT%H%M%SZ)-$RANDOM$RANDOM"
rpc set "{\"commands\":[{\"action\":\"update\",\"path\":\"/interface[name=mgmt0]/description\",\"value\":\"$nonce\"}]}" >/dev/null
echo "committed: interface mgmt0 description $nonce"

step "2. the commit, as the switch recorded it"
for _ in $(seq 10); do
	conf=$(state_of /system/configuration)
	last_change=$(json last-change <<<"$conf")
	[ -z "$last_change" ] || [ "$last_change" = "$before" ] || break
	sleep 1
done
if [ -z "$last_change" ] || [ "$last_change" = "$before" ]; then
	fail "last-change did not move ($before -> $last_change)"
fi
read -r commit_id commit_user commit_status < <(python3 -c '
import json, sys
cs = json.loads(sys.argv[1]) or []
c = max(cs, key=lambda c: int(c.get("id", 0)))
print(c.get("id"), c.get("username") or "-", c.get("status") or "-")
' "$(json commit <<<"$conf")") || fail "no commit list in the state"
echo "last-change $last_change; newest commit $commit_id by $commit_user ($commit_status)"
[ "$commit_user" = "$user" ] || fail "the newest commit is by $commit_user, not $user"
host=$(state_of /system/name/host-name)
stamp=$(date -u -d "$last_change" +%Y%m%dT%H%M%S.%3NZ) # cfgsnap's {time}
name="$host/${host}_${stamp}_${user}.json"
echo "expected snapshot: $name"

step "3. every server"
has_nonce() { docker exec "$(node "$1")" grep -qF "$nonce" "$2" 2>/dev/null; }
eventually "$timeout" "sftp: /backups/$name holding the nonce" has_nonce sftp "/backups/$name"
docker exec "$(node sftp)" ls -l "/backups/$name"
eventually "$timeout" "scp: /backups-scp/$name holding the nonce" has_nonce sftp "/backups-scp/$name"
docker exec "$(node sftp)" ls -l "/backups-scp/$name"

repo=/srv/git/configs.git
git_log() { docker exec -u git "$(node git)" git --git-dir=$repo log -1 --format="$1" main -- "$host.json" 2>/dev/null; }
git_has() { [ "$(git_log %an)" = "$user" ] && docker exec -u git "$(node git)" git --git-dir=$repo show "main:$host.json" | grep -qF "$nonce"; }
eventually "$timeout" "git: a commit of $host.json by $user holding the nonce" git_has
echo "git: $(git_log '%h %an <%ae> %aI %s')"
[ "$(git_log %at)" = "$(date -u -d "$last_change" +%s)" ] ||
	fail "git: author date $(git_log %aI) is not last-change $last_change"

# S3 over S3: HEAD, signed with the switch's own keys (SigV4; the empty body's
# SHA-256 goes in x-amz-content-sha256, which the gateway requires).
empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
s3_head() {
	printf 'user = "%s:%s"\n' "$(head -n1 "$state/leaf1/s3-access-key")" "$(head -n1 "$state/leaf1/s3-secret-key")" |
		curl -sS --fail --max-time 10 -I -K - --aws-sigv4 "aws:amz:us-east-1:s3" \
			-H "x-amz-content-sha256: $empty_sha" "http://$s3_ip:7070/cfgsnap/srl/$name" | tr -d '\r'
}
s3_has() { s3_head | grep -qi "^x-amz-meta-user: $user\$" && has_nonce s3 "/data/cfgsnap/srl/$name"; }
eventually "$timeout" "s3: object cfgsnap/srl/$name by $user holding the nonce" s3_has
s3_head | grep -i '^x-amz-meta-'
s3_time=$(s3_head | sed -n 's/^x-amz-meta-last-change: //Ip')
[ "$(date -u -d "$s3_time" +%s%3N)" = "$(date -u -d "$last_change" +%s%3N)" ] ||
	fail "s3: x-amz-meta-last-change $s3_time is not last-change $last_change"

webhook_has() {
	docker exec "$(node webhook)" python3 /cfgsnap-lab/webhook.py check --log /var/log/cfgsnap-webhook.jsonl \
		--name "$name" --user "$user" --last-change "$last_change" --stores 4
}
eventually "$timeout" "webhook: a signed record of $name naming 4 stores" webhook_has

step "4. the switch"
# The spool's status is root's (0600): read the spool as root, whatever user docker exec defaults to.
spool=/etc/opt/srlinux/cfgsnap
spool_empty() { [ "$(docker exec -u 0 "$(node leaf1)" cat $spool/pending)" = 0 ]; }
eventually 30 "the spool on leaf1 empty ($spool/pending 0; see $spool/worker.log)" spool_empty
report=$(docker exec -u 0 "$(node leaf1)" cat $spool/status)
echo "last report: $report"
case $report in *FAILED*) fail "the last report names a failure" ;; esac

docker exec "$(node leaf1)" sr_cli -d "info from state system event-handler instance cfgsnap" || true
instance=$(state_of "/system/event-handler/instance[name=cfgsnap]")
python3 - "$instance" "$last_change" "$errors_before" <<'PY' || fail "the event-handler instance state shows errors"
import datetime, json, re, sys

def when(s):
    # "2025-09-20T11:01:22.609Z", perhaps followed by " (8 minutes ago)" as the CLI shows it.
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", s or "")
    if not m:
        return None
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return t + datetime.timedelta(seconds=float("0" + (m.group(2) or "")))

inst = json.loads(sys.argv[1])  # state_of has dropped the module prefixes
commit = when(sys.argv[2])
ok = True
if inst.get("oper-state") != "up":
    print("oper-state %s (%s)" % (inst.get("oper-state"), inst.get("oper-down-reason")))
    ok = False
stats = inst.get("statistics") or {}
print("statistics: %s" % json.dumps(stats, sort_keys=True))
before, now = sys.argv[3], stats.get("execution-errors")
if before.isdigit() and now is not None and int(now) > int(before):
    print("execution-errors went from %s to %s since the commit" % (before, now))
    ok = False
last = inst.get("last-execution") or {}
print("last-execution %s: %s" % (last.get("start-time"), (last.get("stdout-stderr") or "").strip()))
err = inst.get("last-errored-execution")
if err:
    started = when(err.get("start-time"))
    detail = "%s: %s" % (err.get("oper-down-reason"), err.get("oper-down-reason-detail"))
    if started is None or commit is None or started >= commit:
        print("last-errored-execution at %s, not before the commit (%s): %s" % (err.get("start-time"), sys.argv[2], detail))
        ok = False
    else:
        print("note: an errored execution before the commit, at %s: %s" % (err.get("start-time"), detail))
else:
    print("no errored execution")
sys.exit(0 if ok else 1)
PY

printf '\nPASS: commit %s by %s at %s reached sftp, scp, git, s3 and the webhook as %s\n' \
	"$commit_id" "$user" "$last_change" "$name"

#!/usr/bin/env bash
# lab/setup.sh [STATE-DIR]: the lab's keys and secrets, made fresh by `make lab-up`
# before containerlab deploys, into lab/.state (git-ignored: no private key is
# ever committed). Each run starts from nothing, so a redeploy gets new keys.
#
#   leaf1/id_ed25519            the switch's SSH key                  option identity
#   leaf1/id_ed25519.pub        its public half: the only authorized key of backup@sftp and git@git
#   leaf1/known_hosts           the servers' host keys, pinned        option known-hosts
#   leaf1/s3-access-key         S3 keys, also the gateway's root keys options s3-access-key-file, s3-secret-key-file
#   leaf1/s3-secret-key
#   leaf1/webhook-secret        HMAC secret, also the receiver's      option webhook-secret-file
#   sftp/ssh_host_ed25519_key   host key of node sftp
#   git/ssh_host_ed25519_key    host key of node git
#
# The servers' host keys are made here, not by the servers when they start, so
# the switch's known_hosts is complete before anything runs: no host key is ever
# taken on first sight. Every file above is bound into a node by
# cfgsnap.clab.yml (the switch's into cfgsnap's own folder,
# /etc/opt/srlinux/cfgsnap), and lab_test.go runs this script into a temporary
# folder to check that it makes exactly the files the binds name.
set -euo pipefail

lab=$(cd "$(dirname "$0")" && pwd)
state=${1:-$lab/.state}
# It is emptied first: refuse anything but a folder called .state.
[ "$(basename "$state")" = .state ] || {
	echo "setup.sh: the state folder must be called .state, not $state" >&2
	exit 2
}

# The servers' management addresses: keep in step with mgmt-ipv4 in
# cfgsnap.clab.yml and the targets in configs/leaf1.cli (lab_test.go checks).
declare -A ip=([sftp]=172.20.42.11 [git]=172.20.42.12)

command -v ssh-keygen >/dev/null || {
	echo "setup.sh: ssh-keygen is missing (apt-get install openssh-client)" >&2
	exit 1
}

# The binds keep each file's owner, and cfgsnap (root on the switch) takes a
# key file from the instance only when root owns it: make lab-up runs as root.
[ "$(id -u)" = 0 ] || echo "setup.sh: warning: not root: the switch's cfgsnap will refuse keys owned by uid $(id -u); run make lab-up as root" >&2

umask 077
rm -rf "$state"
mkdir -p "$state/leaf1" "$state/sftp" "$state/git"

# The switch's key, without a passphrase (cfgsnap refuses protected keys).
ssh-keygen -q -t ed25519 -N '' -C cfgsnap@leaf1 -f "$state/leaf1/id_ed25519"

: >"$state/leaf1/known_hosts"
for srv in sftp git; do
	key=$state/$srv/ssh_host_ed25519_key
	ssh-keygen -q -t ed25519 -N '' -C "$srv.cfgsnap-lab" -f "$key"
	# Port 22, so the plain "ADDRESS TYPE KEY" form, not "[ADDRESS]:PORT".
	printf '%s %s\n' "${ip[$srv]}" "$(cut -d' ' -f1,2 "$key.pub")" >>"$state/leaf1/known_hosts"
	# The public half is in known_hosts now; it is bound nowhere else.
	rm "$key.pub"
done

# Random hex; od reads exactly the bytes asked for, so no pipe is cut short.
random() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
printf 'AK%s\n' "$(random 9 | tr a-f A-F)" >"$state/leaf1/s3-access-key"
printf '%s\n' "$(random 20)" >"$state/leaf1/s3-secret-key"
printf '%s\n' "$(random 32)" >"$state/leaf1/webhook-secret"

echo "setup.sh: keys and secrets in $state"
echo "  switch key:     $(ssh-keygen -lf "$state/leaf1/id_ed25519.pub")"
while read -r host type key; do
	echo "  pinned $host: $(printf '%s %s\n' "$type" "$key" | ssh-keygen -lf - | cut -d' ' -f1,2)"
done <"$state/leaf1/known_hosts"

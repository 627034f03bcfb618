#!/bin/sh
# cfgsnap lab: entry point (cmd) of nodes sftp and git, on Alpine.
#   sshd.sh sftp   user backup: SFTP into /backups, SCP into /backups-scp
#   sshd.sh git    user git (git-shell): bare repository /srv/git/configs.git, branch main, empty
#
# OpenSSH, and git, come from Alpine's packages at start (the node needs to
# reach its package mirror). The keys come from lab/setup.sh, bound read-only:
#   /cfgsnap-lab/ssh_host_ed25519_key   this server's host key, pinned in the switch's known_hosts
#   /cfgsnap-lab/authorized_keys        the switch's public key, the only key let in
# Passwords are off: the switch's key is the one way in. Safe to run again
# (the restart policy of linux nodes restarts it).
set -eu

role=${1:-}
case $role in
sftp) user=backup home=/home/backup shell=/bin/sh pkgs=openssh ;;
git) user=git home=/srv/git shell=/usr/bin/git-shell pkgs="openssh git" ;;
*)
	echo "usage: sshd.sh sftp|git" >&2
	exit 2
	;;
esac
ready=/run/cfgsnap-lab.ready
rm -f "$ready"

# shellcheck disable=SC2086 # a list of packages
apk add --no-cache $pkgs >/dev/null

if ! id "$user" >/dev/null 2>&1; then
	adduser -D -h "$home" -s "$shell" "$user"
fi
# adduser -D locks the password with "!", and OpenSSH without PAM refuses
# every login to a locked account, keys included; "*" matches no password
# but is not a lock.
sed -i "s/^$user:[^:]*:/$user:*:/" /etc/shadow

install -d -o "$user" -g "$user" -m 0700 "$home/.ssh"
install -o "$user" -g "$user" -m 0600 /cfgsnap-lab/authorized_keys "$home/.ssh/authorized_keys"
install -o root -g root -m 0600 /cfgsnap-lab/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key

case $role in
sftp)
	install -d -o backup -g backup -m 0700 /backups /backups-scp
	;;
git)
	repo=/srv/git/configs.git
	if [ ! -d "$repo" ]; then
		git init -q --bare -b main "$repo"
		chown -R git:git "$repo"
	fi
	;;
esac

cat >/etc/ssh/sshd_config <<EOF
# Written by /cfgsnap-lab/sshd.sh ($role).
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
AllowUsers $user
PermitRootLogin no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
/usr/sbin/sshd -t -f /etc/ssh/sshd_config

echo "sshd.sh: $role ready, host key $(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key | cut -d' ' -f2)"
touch "$ready"
exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config

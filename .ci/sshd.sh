#!/usr/bin/env bash
# Starts an OpenSSH server on 127.0.0.1:2222 for the remote-host tests, logging in as a dedicated
# unprivileged account, tandem-ci, whose shell is a plain /bin/sh that reads no start-up files:
# nothing in root's or a developer's shell start-up (root's ~/.bashrc here runs pyenv, about 0.5 s
# a command) decides whether the tests pass, and the SDK is tested as a non-root user drives a
# remote host. tandem-ci is in the libvirt and libvirt-qemu groups, as an administrator would
# set up a remote libvirt host for a non-root user: qemu+ssh:// reaches qemu:///system and the
# guest channels' sockets.
#
# The keys live in one place per machine ($TANDEM_SSH_DIR, default ~/.cache/tandem-ci/ssh) and
# .ci/ssh links to it, so every clone on the machine shares one server and one key. The tests
# read the account's name from .ci/ssh/user.
set -euo pipefail
USER_NAME=tandem-ci
DIR="${TANDEM_SSH_DIR:-$HOME/.cache/tandem-ci/ssh}"
CI_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$CI_DIR")"
LINK="$CI_DIR/ssh"
mkdir -p "$DIR" /run/sshd
chmod 700 "$DIR"
if [ -d "$LINK" ] && [ ! -L "$LINK" ]; then rm -rf "$LINK"; fi
ln -sfn "$DIR" "$LINK"
[ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/host_ed25519"
[ -f "$DIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/client_ed25519"
echo "$USER_NAME" > "$DIR/user"

# The account: a home of its own, /bin/sh (dash: no rc file for a non-interactive command), and
# the libvirt group where libvirt is installed.
if ! id "$USER_NAME" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/sh --comment "Tandem remote-host tests" "$USER_NAME"
fi
# '*' (no password can match) rather than useradd's '!' (locked): without PAM, sshd refuses a
# locked account even for a key.
usermod --shell /bin/sh --password '*' "$USER_NAME"
# libvirt: use qemu:///system; libvirt-qemu: open a running VM's guest-channel socket, which
# libvirt makes under /var/lib/libvirt/qemu/channel (0750, group libvirt-qemu).
for g in libvirt libvirt-qemu; do
  if getent group "$g" >/dev/null; then usermod -a -G "$g" "$USER_NAME"; fi
done
HOME_DIR="$(getent passwd "$USER_NAME" | cut -d: -f6)"
install -d -m 700 -o "$USER_NAME" -g "$USER_NAME" "$HOME_DIR/.ssh"
install -m 600 -o "$USER_NAME" -g "$USER_NAME" "$DIR/client_ed25519.pub" "$HOME_DIR/.ssh/authorized_keys"
# No start-up files that a login shell would read.
rm -f "$HOME_DIR/.profile" "$HOME_DIR/.bashrc" "$HOME_DIR/.bash_profile" "$HOME_DIR/.bash_logout"

# The tests run programs of the checkout remotely (fixtures, the repository's Node.js): the
# account must be able to reach the checkout. Grant traversal (not listing) on each directory
# above it that lacks it, and say so.
d="$ROOT"
while [ "$d" != "/" ]; do
  if ! su -s /bin/sh "$USER_NAME" -c "test -x '$d'" 2>/dev/null; then
    echo "sshd.sh: granting others traversal (o+x) on $d so $USER_NAME reaches the checkout"
    chmod o+x "$d"
  fi
  d="$(dirname "$d")"
done

echo "[127.0.0.1]:2222 $(cut -d' ' -f1,2 "$DIR/host_ed25519.pub")" > "$DIR/known_hosts"
cat > "$DIR/sshd_config" <<CONF
Port 2222
ListenAddress 127.0.0.1
HostKey $DIR/host_ed25519
PermitRootLogin no
AllowUsers $USER_NAME
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PidFile $DIR/sshd.pid
StrictModes yes
UsePAM no
PrintMotd no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
MaxStartups 100:30:200
MaxSessions 100
CONF
ok() { ssh -q -o BatchMode=yes -o ConnectTimeout=10 -o UserKnownHostsFile="$DIR/known_hosts" -i "$DIR/client_ed25519" -p 2222 "$USER_NAME@127.0.0.1" true; }
running_with_this_config() {
  [ -f "$DIR/sshd.pid" ] && kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null &&
    tr '\0' ' ' < "/proc/$(cat "$DIR/sshd.pid")/cmdline" | grep -qF -- "-f $DIR/sshd_config"
}
# sshd reads its configuration at start: restart it so a changed configuration takes effect.
if running_with_this_config; then kill "$(cat "$DIR/sshd.pid")" || true; fi
# Something else on port 2222 (an sshd from an older layout): replace it.
pkill -f 'sshd -f .*/\.ci/ssh/sshd_config' 2>/dev/null || true
pkill -f "sshd -f $DIR/sshd_config" 2>/dev/null || true
for i in $(seq 1 20); do pgrep -f "sshd -f $DIR/sshd_config" >/dev/null || break; sleep 0.25; done
/usr/sbin/sshd -f "$DIR/sshd_config"
for i in $(seq 1 40); do
  ok && exit 0
  sleep 0.5
done
echo "sshd on 127.0.0.1:2222 did not accept the test key for $USER_NAME" >&2
exit 1

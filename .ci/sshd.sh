#!/usr/bin/env bash
# Starts an OpenSSH server on 127.0.0.1:2222 for remote-host tests, with a key for root that
# the tests find in .ci/ssh/ (created here, never committed). The keys live in one place per
# machine ($TANDEM_SSH_DIR, default ~/.cache/tandem-ci/ssh) and .ci/ssh links to it, so every
# clone on the machine (a developer's tree, CI's fresh clone) shares one server and one key.
set -euo pipefail
DIR="${TANDEM_SSH_DIR:-$HOME/.cache/tandem-ci/ssh}"
LINK="$(cd "$(dirname "$0")" && pwd)/ssh"
mkdir -p "$DIR" /run/sshd
chmod 700 "$DIR"
if [ -d "$LINK" ] && [ ! -L "$LINK" ]; then rm -rf "$LINK"; fi
ln -sfn "$DIR" "$LINK"
[ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/host_ed25519"
[ -f "$DIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/client_ed25519"
mkdir -p /root/.ssh && chmod 700 /root/.ssh
grep -qF "$(cut -d' ' -f2 "$DIR/client_ed25519.pub")" /root/.ssh/authorized_keys 2>/dev/null || cat "$DIR/client_ed25519.pub" >> /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
echo "[127.0.0.1]:2222 $(cut -d' ' -f1,2 "$DIR/host_ed25519.pub")" > "$DIR/known_hosts"
cat > "$DIR/sshd_config" <<CONF
Port 2222
ListenAddress 127.0.0.1
HostKey $DIR/host_ed25519
PermitRootLogin prohibit-password
PasswordAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile /root/.ssh/authorized_keys
PidFile $DIR/sshd.pid
StrictModes no
UsePAM no
MaxStartups 100:30:200
MaxSessions 100
CONF
ok() { ssh -q -o BatchMode=yes -o ConnectTimeout=3 -o UserKnownHostsFile="$DIR/known_hosts" -i "$DIR/client_ed25519" -p 2222 root@127.0.0.1 true; }
if [ -f "$DIR/sshd.pid" ] && kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null && ok; then exit 0; fi
# Something else on port 2222 (an sshd from an older layout): replace it.
pkill -f 'sshd -f .*/\.ci/ssh/sshd_config' 2>/dev/null || true
pkill -f "sshd -f $DIR/sshd_config" 2>/dev/null || true
sleep 0.5
/usr/sbin/sshd -f "$DIR/sshd_config"
for i in $(seq 1 20); do
  ok && exit 0
  sleep 0.5
done
echo "sshd on 127.0.0.1:2222 did not accept the test key" >&2
exit 1

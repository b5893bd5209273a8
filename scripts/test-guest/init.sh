#!/bin/sh
# /init of the Tandem test guest (busybox sh, PID 1). Mounts the kernel's file systems, loads
# the virtio modules, mounts the persistent disk (formatting it on first boot), then keeps the
# guest agent running as a service manager would: restarted whenever it ends.
/bin/busybox mkdir -p /bin /proc /sys /dev /run /tmp /mnt/state /etc
/bin/busybox --install -s /bin
export PATH=/usr/bin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
log() { echo "tandem-init: $*" >/dev/console; }
log "kernel $(uname -r) up $(cut -d' ' -f1 /proc/uptime) s"

# Order matters (each needs the ones before it), and a device may appear only after its bus
# driver is in: retry until every module is loaded.
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console virtio_blk failover net_failover virtio_net evdev button"
KMOD=/lib/modules/$(uname -r)
round=0
while :; do
  missing=""
  for m in $MODULES; do
    grep -q "^$m " /proc/modules || insmod "$KMOD/$m.ko" 2>/dev/null || missing="$missing $m"
  done
  [ -z "$missing" ] && break
  round=$((round + 1))
  if [ $round -ge 100 ]; then log "modules not loaded:$missing"; break; fi
  sleep 0.1
done

# The persistent disk (/dev/vda): the initramfs is RAM, so whatever must survive a reboot
# (the agent's state, the computer name) lives here.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ -b /dev/vda ]; then
  magic=$(dd if=/dev/vda bs=1 skip=1080 count=2 2>/dev/null | hexdump -e '2/1 "%02x"')
  if [ "$magic" != "53ef" ]; then
    log "formatting the persistent disk /dev/vda (first boot)"
    mke2fs -q -L tandem-state /dev/vda >/dev/null
  fi
  mount -t ext4 /dev/vda /mnt/state || { log "cannot mount /dev/vda"; mount -t tmpfs tmpfs /mnt/state; }
else
  log "no persistent disk: state is lost at reboot"
  mount -t tmpfs tmpfs /mnt/state
fi
[ -s /mnt/state/hostname ] || echo tandem-guest >/mnt/state/hostname
ln -sf /mnt/state/hostname /etc/hostname
hostname -F /etc/hostname
mkdir -p /mnt/state/agent

ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  # tandem.net=manual on the kernel command line: leave eth0 without an address, for the tests
  # of first-time setup's network step (the agent configures it, statically or by DHCP).
  case " $(cat /proc/cmdline) " in
    *" tandem.net=manual "*) log "eth0 up without an address (tandem.net=manual)" ;;
    *) (udhcpc -i eth0 -q -n -t 10 -s /etc/udhcpc.script >/dev/null 2>&1 &) ;;
  esac
fi
# tandem.reboot-required on the kernel command line: the guest says a restart is pending, as
# Debian's packages do with /run/reboot-required (the restart tests of tandem guest setup).
case " $(cat /proc/cmdline) " in
  *" tandem.reboot-required "*) echo '*** System restart required ***' >/run/reboot-required ;;
esac

# The ACPI power button (a graceful stop from the host) powers the guest off.
acpid -c /etc/acpi -l /run/acpid.log -p /run/acpid.pid

# A virtio-serial port by its name under /sys/class/virtio-ports.
port_dev() {
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${p##*/}"; return 0; }
  done
  return 1
}

# Tests only: a shell on the port org.tandem.test.0 when the VM has one (the tests attach it;
# a workspace's VM never does). Reading a port no host is connected to ends at once.
control() {
  dev=$(port_dev org.tandem.test.0) || return 0
  log "test control port on $dev"
  while :; do
    sh <>"$dev" >&0 2>&0
    sleep 1
  done
}
control &

AGENT=/opt/tandem/node_modules/@tandem/guest-agent/dist/main.js
agent_service() {
  while :; do
    if [ -f "$AGENT" ]; then
      node "$AGENT" --port org.tandem.agent.0 --state-dir /mnt/state/agent &
    else
      node /opt/tandem/stand-in.mjs &
    fi
    echo $! >/run/tandem-agent.pid
    log "agent started (pid $!)"
    wait $!
    log "agent ended ($?), restarting"
    sleep 1
  done
}
agent_service &

# A shell on the serial console (virsh console), for looking around by hand.
while :; do
  setsid cttyhack sh -l </dev/ttyS0 >/dev/ttyS0 2>&1
  sleep 1
done

#!/usr/bin/env bash
# mmdebstrap's customize hook for the box machines' root filesystem (build.sh): runs on the host
# with the finished tree as $1.
set -euo pipefail
root=${1:?usage: customize.sh ROOT}

# Every machine gets its own machine-id (proof/box/machine writes it into its upper dir) and its
# own SSH host keys (cloud-init creates them on first boot: ssh_deletekeys).
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/etc/hostname" "$root"/etc/ssh/ssh_host_*

# udev masked: /sys is writable in a machine and the machines share the host's kernel, so a udev
# in a machine would trigger uevents for the host's own devices. Containers need no device manager.
for u in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-udev-trigger.service systemd-udev-settle.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done

# cloud-init: only NoCloud (the seed dir the box writes), and no network config: the box sets each
# machine's address from the host, as Proxmox's network-config does for the lab's VMs.
cat >"$root/etc/cloud/cloud.cfg.d/90-infralab-box.cfg" <<'CFG'
# infralab box machine (proof/box/rootfs/customize.sh)
datasource_list: [ NoCloud, None ]
network: {config: disabled}
CFG

# The machines resolve no names: the box's apt repository and registry are addressed by IP.
rm -f "$root/etc/resolv.conf"
printf '# infralab box machine: no DNS (apt and registry are addressed by IP)\n' >"$root/etc/resolv.conf"

rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/lib/cloud/*

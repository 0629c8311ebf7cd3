package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// bootConfigPrefix starts every VM's SMBIOS serial; the rest is bootConfig's digest.
const bootConfigPrefix = "infralab-boot-"

// bootConfig is a digest of every VM setting that takes effect only at the VM's next cold start.
//
// The VMs have rebootAfterUpdate off (a config edit would otherwise reboot every affected VM at
// once, undrained: bpg proxmoxtf/resource/vm/vm.go, vmUpdateDiskLocationAndSize), so a change of
// one of these leaves the running VM on its old settings:
//   - cores, sockets, CPU type and memory: Proxmox keeps them pending on a running VM unless CPU
//     or memory hotplug is on (qemu-server src/PVE/QemuServer.pm, vmconfig_hotplug_pending);
//   - the NIC's bridge and MTU: written to the config, used by the next QEMU process;
//   - IP, gateway, DNS, search domain and the user-data: cloud-init reads them from the drive
//     Proxmox rebuilds at every start (src/PVE/QemuServer/Cloudinit.pm), i.e. at the next boot.
//
// Disk size is not here: the provider grows a disk online.
//
// The digest goes into SMBIOS serial. smbios1 is not hotpluggable either, so Proxmox holds the new
// serial as a pending change until the same cold start applies everything else: `qm pending`
// on the host, or /sys/class/dmi/id/product_serial in the guest against the node's bootConfig
// output, says whether a VM still has to reboot (docs/runbooks/reboot-nodes.md).
func bootConfig(a *NodesArgs, v VMArgs, cpuType, address, userData string) string {
	ud := sha256.Sum256([]byte(userData))
	fields := []string{
		fmt.Sprintf("cores=%d", v.Cores),
		"sockets=1",
		"cpu=" + cpuType,
		fmt.Sprintf("memory=%d", v.MemoryMiB),
		"bridge=" + a.Network.Bridge,
		fmt.Sprintf("mtu=%d", a.Network.MTU),
		"ip=" + address,
		"gateway=" + a.Network.Gateway,
		"dns=" + strings.Join(a.Network.DNS, ","),
		"search=" + a.Network.SearchDomain,
		"userData=" + hex.EncodeToString(ud[:]),
	}
	sum := sha256.Sum256([]byte(strings.Join(fields, "\n")))
	return bootConfigPrefix + hex.EncodeToString(sum[:8])
}

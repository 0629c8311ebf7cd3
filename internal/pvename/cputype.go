package pvename

import (
	"slices"
	"strings"
)

// cpuTypes are the QEMU CPU models bpg terraform-provider-proxmox v0.95.0 accepts for a VM's
// cpu.type (proxmoxtf/resource/vm/validators.go, CPUTypeValidator); it also accepts custom-<name>
// for a model defined in /etc/pve/virtual-guest/cpu-models.conf.
var cpuTypes = []string{
	"486", "Broadwell", "Broadwell-IBRS", "Broadwell-noTSX", "Broadwell-noTSX-IBRS",
	"Cascadelake-Server", "Cascadelake-Server-noTSX", "Cascadelake-Server-v2", "Cascadelake-Server-v4",
	"Cascadelake-Server-v5", "Conroe", "Cooperlake", "Cooperlake-v2", "EPYC", "EPYC-Genoa", "EPYC-IBPB",
	"EPYC-Milan", "EPYC-Rome", "EPYC-Rome-v2", "EPYC-Rome-v3", "EPYC-Rome-v4", "EPYC-v3", "EPYC-v4",
	"Haswell", "Haswell-IBRS", "Haswell-noTSX", "Haswell-noTSX-IBRS", "Icelake-Client",
	"Icelake-Client-noTSX", "Icelake-Server", "Icelake-Server-noTSX", "Icelake-Server-v3",
	"Icelake-Server-v4", "Icelake-Server-v5", "Icelake-Server-v6", "IvyBridge", "IvyBridge-IBRS",
	"KnightsMill", "Nehalem", "Nehalem-IBRS", "Opteron_G1", "Opteron_G2", "Opteron_G3", "Opteron_G4",
	"Opteron_G5", "Penryn", "SandyBridge", "SandyBridge-IBRS", "SapphireRapids", "Skylake-Client",
	"Skylake-Client-IBRS", "Skylake-Client-noTSX-IBRS", "Skylake-Client-v4", "Skylake-Server",
	"Skylake-Server-IBRS", "Skylake-Server-noTSX-IBRS", "Skylake-Server-v4", "Skylake-Server-v5",
	"Westmere", "Westmere-IBRS", "athlon", "core2duo", "coreduo", "host", "kvm32", "kvm64", "max",
	"pentium", "pentium2", "pentium3", "phenom", "qemu32", "qemu64", "x86-64-v2", "x86-64-v2-AES",
	"x86-64-v3", "x86-64-v4",
}

// CPUType reports whether s is a VM CPU type the provider accepts: a QEMU model (case-sensitive,
// as the provider checks it) or custom-<name>.
func CPUType(s string) bool {
	return slices.Contains(cpuTypes, s) || (strings.HasPrefix(s, "custom-") && len(s) > len("custom-"))
}

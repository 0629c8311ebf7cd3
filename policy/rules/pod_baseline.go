package rules

import (
	"fmt"
	"slices"
	"strings"
)

// The remaining Pod Security controls (baseline ones that restricted includes): /proc mount,
// SELinux, AppArmor, sysctls and Windows host processes.

var allowedSELinuxTypes = []string{"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

// safeSysctls is the Pod Security baseline list of namespaced sysctls.
var safeSysctls = []string{
	"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
}

func checkSecurityContextExtras(f *finder, label string, sc node, podLevel bool) {
	se := sc.get("seLinuxOptions")
	if t, set, known := readString(f, label, se.get("type")); known && set && !slices.Contains(allowedSELinuxTypes, t) {
		f.bad(label, se.get("type").path, fmt.Sprintf("seLinuxOptions.type %s is not allowed", t),
			"remove it or use container_t, container_init_t or container_kvm_t")
	}
	for _, key := range []string{"user", "role"} {
		if v, set, known := readString(f, label, se.get(key)); known && set && v != "" {
			f.bad(label, se.get(key).path, "seLinuxOptions."+key+" is set", "remove seLinuxOptions."+key)
		}
	}
	aa := sc.at("appArmorProfile", "type")
	if t, set, known := readString(f, label, aa); known && set && t == "Unconfined" {
		f.bad(label, aa.path, "appArmorProfile.type is Unconfined", "set appArmorProfile.type: RuntimeDefault or remove it")
	}
	hp := sc.at("windowsOptions", "hostProcess")
	if v, set, known := readBool(f, label, hp); known && set && v {
		f.bad(label, hp.path, "windowsOptions.hostProcess is true", "remove windowsOptions.hostProcess")
	}
	if podLevel {
		sysctls := sc.get("sysctls")
		items, ok := sysctls.items()
		if !ok {
			f.unknown(label, sysctls.path)
		}
		for _, it := range items {
			name, set, known := readString(f, label, it.get("name"))
			if known && set && !slices.Contains(safeSysctls, name) {
				f.bad(label, it.path, fmt.Sprintf("sysctl %s is not in the Pod Security safe set", name),
					"remove it; allowed are "+strings.Join(safeSysctls, ", "))
			}
		}
		return
	}
	pm := sc.get("procMount")
	if v, set, known := readString(f, label, pm); known && set && v != "Default" {
		f.bad(label, pm.path, fmt.Sprintf("procMount is %s", v), "remove procMount or set it to Default")
	}
}

func checkBaselineExtras(f *finder, p pod) {
	checkSecurityContextExtras(f, "", p.spec.get("securityContext"), true)
	eachContainer(f, p, func(c container) {
		checkSecurityContextExtras(f, c.label, c.get("securityContext"), false)
	})
	annotations, ok := p.meta.get("annotations").entries()
	if !ok {
		f.unknown("", p.meta.get("annotations").path)
	}
	for _, a := range annotations {
		if !strings.HasPrefix(a.key, "container.apparmor.security.beta.kubernetes.io/") {
			continue
		}
		if v, set, known := readString(f, "", a.node); known && set && v != "runtime/default" && !strings.HasPrefix(v, "localhost/") {
			f.bad("", a.path, fmt.Sprintf("AppArmor annotation %s is %q", a.key, v),
				"use runtime/default or localhost/<profile>, or the appArmorProfile field")
		}
	}
}

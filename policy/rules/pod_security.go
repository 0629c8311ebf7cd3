package rules

import (
	"fmt"
	"slices"
	"strings"
)

// The Pod Security "restricted" rules. Each checks every container, init container and
// ephemeral container; a container-level setting wins over the pod-level one.

// readBool reads an optional bool. known=false means the value is unknown (already reported).
func readBool(f *finder, label string, n node) (val, set, known bool) {
	if n.unknown {
		f.unknown(label, n.path)
		return false, false, false
	}
	v, ok := n.boolean()
	return v, ok, true
}

func readString(f *finder, label string, n node) (val string, set, known bool) {
	if n.unknown {
		f.unknown(label, n.path)
		return "", false, false
	}
	v, ok := n.str()
	return v, ok, true
}

func checkRunAsNonRoot(f *finder, p pod) {
	podNode := p.spec.at("securityContext", "runAsNonRoot")
	podVal, podSet, podKnown := readBool(f, "", podNode)
	if podSet && !podVal {
		f.bad("", podNode.path, "runAsNonRoot is false at pod level",
			"set spec.securityContext.runAsNonRoot: true (or remove it and set it on every container)")
	}
	eachContainer(f, p, func(c container) {
		n := c.at("securityContext", "runAsNonRoot")
		v, set, known := readBool(f, c.label, n)
		switch {
		case !known:
		case set && v:
		case set:
			f.bad(c.label, n.path, "runAsNonRoot is false, so the container may run as root",
				"set securityContext.runAsNonRoot: true on this container")
		case !podKnown:
		case podSet && podVal:
		default:
			f.bad(c.label, n.path, "runAsNonRoot is not set on the container or the pod, so it may run as root",
				"set securityContext.runAsNonRoot: true on the pod (pod template spec.securityContext) or on this container")
		}
	})
}

func checkRunAsUserGroup(f *finder, p pod) {
	check := func(label string, sc node, where string) {
		for _, key := range []string{"runAsUser", "runAsGroup"} {
			n := sc.get(key)
			if n.unknown {
				f.unknown(label, n.path)
				continue
			}
			if v, ok := n.number(); ok && v == 0 {
				f.bad(label, n.path, fmt.Sprintf("%s is 0 (root) %s", key, where),
					fmt.Sprintf("set %s to a non-zero id such as 65532, or remove it and let the image's non-root user apply", key))
			}
		}
	}
	check("", p.spec.get("securityContext"), "at pod level")
	eachContainer(f, p, func(c container) { check(c.label, c.get("securityContext"), "") })
}

func checkPrivilegeEscalation(f *finder, p pod) {
	eachContainer(f, p, func(c container) {
		n := c.at("securityContext", "allowPrivilegeEscalation")
		v, set, known := readBool(f, c.label, n)
		if known && (!set || v) {
			what := "allowPrivilegeEscalation is not set (it defaults to true)"
			if set {
				what = "allowPrivilegeEscalation is true"
			}
			f.bad(c.label, n.path, what, "set securityContext.allowPrivilegeEscalation: false on this container")
		}
	})
}

func checkPrivileged(f *finder, p pod) {
	eachContainer(f, p, func(c container) {
		n := c.at("securityContext", "privileged")
		if v, set, known := readBool(f, c.label, n); known && set && v {
			f.bad(c.label, n.path, "privileged is true: the container gets full access to the host",
				"remove securityContext.privileged or set it to false")
		}
	})
}

func checkCapabilities(f *finder, p pod) {
	eachContainer(f, p, func(c container) {
		caps := c.at("securityContext", "capabilities")
		drop := caps.get("drop")
		items, ok := drop.items()
		if !ok {
			f.unknown(c.label, drop.path)
		} else {
			hasAll, unknown := false, false
			for _, it := range items {
				if it.unknown {
					unknown = true
				}
				if s, _ := it.str(); s == "ALL" {
					hasAll = true
				}
			}
			switch {
			case hasAll:
			case unknown:
				f.unknown(c.label, drop.path)
			default:
				f.bad(c.label, drop.path, "capabilities.drop does not contain ALL",
					`set securityContext.capabilities.drop: ["ALL"] on this container`)
			}
		}
		add := caps.get("add")
		items, ok = add.items()
		if !ok {
			f.unknown(c.label, add.path)
			return
		}
		for _, it := range items {
			s, set, known := readString(f, c.label, it)
			if known && set && s != "NET_BIND_SERVICE" {
				f.bad(c.label, it.path, fmt.Sprintf("capabilities.add contains %s; only NET_BIND_SERVICE is allowed", s),
					"remove it from securityContext.capabilities.add")
			}
		}
	})
}

var allowedSeccomp = []string{"RuntimeDefault", "Localhost"}

func checkSeccomp(f *finder, p pod) {
	podNode := p.spec.at("securityContext", "seccompProfile", "type")
	podType, podSet, podKnown := readString(f, "", podNode)
	if podSet && !slices.Contains(allowedSeccomp, podType) {
		f.bad("", podNode.path, fmt.Sprintf("seccompProfile.type is %s at pod level", podType),
			"set spec.securityContext.seccompProfile.type: RuntimeDefault (or Localhost with a profile)")
	}
	eachContainer(f, p, func(c container) {
		n := c.at("securityContext", "seccompProfile", "type")
		t, set, known := readString(f, c.label, n)
		switch {
		case !known:
		case set && slices.Contains(allowedSeccomp, t):
		case set:
			f.bad(c.label, n.path, fmt.Sprintf("seccompProfile.type is %s", t),
				"set securityContext.seccompProfile.type: RuntimeDefault (or Localhost) on this container")
		case !podKnown:
		case podSet:
			// pod level decides; an invalid pod-level type was reported above.
		default:
			f.bad(c.label, n.path, "no seccomp profile is set on the container or the pod",
				"set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod (or on this container)")
		}
	})
}

func checkReadOnlyRoot(f *finder, p pod) {
	eachContainer(f, p, func(c container) {
		n := c.at("securityContext", "readOnlyRootFilesystem")
		v, set, known := readBool(f, c.label, n)
		if known && !(set && v) {
			f.bad(c.label, n.path, "readOnlyRootFilesystem is not true, so the container can write to its image",
				"set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it must write")
		}
	})
}

func checkHostAccess(f *finder, p pod) {
	for _, key := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		n := p.spec.get(key)
		if v, set, known := readBool(f, "", n); known && set && v {
			f.bad("", n.path, key+" is true: the pod shares the host's namespace",
				"remove "+key+" (or set it to false)")
		}
	}
	vols := p.spec.get("volumes")
	items, ok := vols.items()
	if !ok {
		f.unknown("", vols.path)
	}
	for _, v := range items {
		if v.unknown {
			f.unknown("", v.path)
			continue
		}
		if hp := v.get("hostPath"); !hp.missing {
			name, _ := v.get("name").str()
			f.bad("", hp.path, fmt.Sprintf("volume %q mounts a hostPath", name),
				"use an emptyDir, configMap, secret or persistentVolumeClaim volume instead")
		}
	}
	eachContainer(f, p, func(c container) {
		ports := c.get("ports")
		items, ok := ports.items()
		if !ok {
			f.unknown(c.label, ports.path)
			return
		}
		for _, port := range items {
			n := port.get("hostPort")
			if n.unknown {
				f.unknown(c.label, n.path)
			} else if v, ok := n.number(); ok && v != 0 {
				f.bad(c.label, n.path, fmt.Sprintf("hostPort %d binds a port on the node", int(v)),
					"remove hostPort and expose the port through a Service")
			}
		}
	})
}

// restrictedVolumeTypes is the Pod Security "restricted" list of volume sources.
var restrictedVolumeTypes = []string{"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
	"persistentVolumeClaim", "projected", "secret"}

func checkVolumeTypes(f *finder, p pod) {
	vols := p.spec.get("volumes")
	items, ok := vols.items()
	if !ok {
		f.unknown("", vols.path)
		return
	}
	for _, v := range items {
		es, ok := v.entries()
		if !ok {
			f.unknown("", v.path)
			continue
		}
		name, _ := v.get("name").str()
		for _, e := range es {
			// hostPath is reported by pod-host-access with its own fix.
			if e.key == "name" || e.key == "hostPath" || slices.Contains(restrictedVolumeTypes, e.key) {
				continue
			}
			f.bad("", e.path, fmt.Sprintf("volume %q has type %s, which Pod Security restricted forbids", name, e.key),
				"use one of "+strings.Join(restrictedVolumeTypes, ", ")+" (a PersistentVolumeClaim for network storage)")
		}
	}
}

package rules

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Rules of the pack's own, beyond Pod Security: what a pod needs to behave on a shared node.

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

func checkReadOnlyRoot(f *finder, p pod) {
	if p.isWindows() {
		return // Kubernetes forbids readOnlyRootFilesystem on Windows pods.
	}
	eachContainer(f, p, func(c container) {
		n := c.at("securityContext", "readOnlyRootFilesystem")
		v, set, known := readBool(f, c.label, n)
		if known && !(set && v) {
			f.bad(c.label, n.path, "readOnlyRootFilesystem is not true, so the container can write to its image",
				"set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it must write")
		}
	})
}

// MinID is the lowest UID and GID pod-high-uid-gid accepts. Accounts of the node itself (system
// users, the distribution's login users from 1000) sit below it, so a process that escapes its
// container as such an id owns nothing on the host.
const MinID = 10000

func checkEphemeralStorage(f *finder, p pod) {
	eachContainer(f, p, func(c container) {
		if c.ephemeral {
			return // Kubernetes forbids resources on ephemeral containers.
		}
		for _, kind := range []string{"requests", "limits"} {
			n := c.at("resources", kind, "ephemeral-storage")
			switch {
			case n.unknown:
				f.unknown(c.label, n.path)
			case n.missing:
				f.bad(c.label, n.path, fmt.Sprintf("resources.%s.ephemeral-storage is not set", kind),
					fmt.Sprintf(`set resources.%s["ephemeral-storage"] on this container (e.g. "256Mi"), large enough for its logs, writable layer and emptyDir volumes`, kind))
			}
		}
	})
}

// probeHandlers are the keys of a probe that say what it checks (the rest is timing).
var probeHandlers = []string{"exec", "httpGet", "tcpSocket", "grpc"}

func checkProbesDistinct(f *finder, p pod) {
	eachContainer(f, p, func(c container) {
		live, ready := c.get("livenessProbe"), c.get("readinessProbe")
		if live.missing || ready.missing {
			return
		}
		lh, lok := probeHandler(live)
		rh, rok := probeHandler(ready)
		switch {
		case !lok:
			f.unknown(c.label, live.path)
		case !rok:
			f.unknown(c.label, ready.path)
		case lh != "" && lh == rh:
			f.bad(c.label, live.path, "livenessProbe runs the same check as readinessProbe ("+lh+
				"): when something that check depends on is down, the kubelet restarts pods that only needed to stop taking traffic",
				"make livenessProbe check only that the process itself responds (an endpoint that touches no dependency, or tcpSocket on its port) and keep dependencies in readinessProbe")
		}
	})
}

// probeHandler renders what a probe checks; ok=false when a part of it is unknown.
func probeHandler(probe node) (string, bool) {
	var unknown []string
	parts := map[string]any{}
	for _, k := range probeHandlers {
		if n := probe.get(k); !n.missing {
			parts[k] = plain(n, k, &unknown)
		}
	}
	if probe.unknown || len(unknown) > 0 {
		return "", false
	}
	if len(parts) == 0 {
		return "", true
	}
	data, _ := json.Marshal(parts) // map keys are sorted, so equal handlers render equally
	return string(data), true
}

func checkHighIDs(f *finder, p pod) {
	if p.isWindows() || p.hostUsersFalse() {
		return // Windows pods have no such ids; a user namespace maps them to unprivileged host ids.
	}
	const fix = "run as ids of 10000 or more (the image's files must be readable by that user; fsGroup gives it its volumes), or add an exception with a reason to the pack config"
	psc := p.spec.get("securityContext")
	tooLow := func(label string, n node, what string, zeroIsOthers bool) {
		if n.unknown {
			f.unknown(label, n.path)
			return
		}
		v, ok := n.number()
		if !ok || v >= MinID || (zeroIsOthers && v == 0) {
			return
		}
		f.bad(label, n.path, fmt.Sprintf("%s is %d, below %d, so it can be an account of the node", what, int64(v), MinID), fix)
	}
	// runAsUser 0 is pod-run-as-user-group's (Pod Security), with its own fix.
	tooLow("", psc.get("runAsUser"), "runAsUser", true)
	tooLow("", psc.get("runAsGroup"), "runAsGroup", false)
	tooLow("", psc.get("fsGroup"), "fsGroup", false)
	groups := psc.get("supplementalGroups")
	if items, ok := groups.items(); !ok {
		f.unknown("", groups.path)
	} else {
		for _, g := range items {
			tooLow("", g, "a supplemental group", false)
		}
	}
	eachContainer(f, p, func(c container) {
		sc := c.get("securityContext")
		for _, key := range []string{"runAsUser", "runAsGroup"} {
			n := sc.get(key)
			if !n.missing {
				tooLow(c.label, n, key, key == "runAsUser")
				continue
			}
			podN := psc.get(key)
			if podN.unknown {
				continue // listed above
			}
			if podN.missing {
				f.bad(c.label, n.path, key+" is not set on the container or the pod, so the image decides the id",
					"set securityContext."+key+" to 10000 or more on the pod or this container")
			}
		}
	})
}

var pullPolicies = []string{"Always", "IfNotPresent", "Never"}

func checkImagePullPolicy(f *finder, p pod, s Settings) {
	eachContainer(f, p, func(c container) {
		n := c.get("imagePullPolicy")
		policy, set, known := readString(f, c.label, n)
		if !known {
			return
		}
		switch {
		case !set:
			f.bad(c.label, n.path, "imagePullPolicy is not set, so Kubernetes derives it from the tag (Always for :latest or no tag, else IfNotPresent)",
				"set imagePullPolicy: Never or IfNotPresent for images loaded onto the nodes, IfNotPresent with an image pinned by digest when a registry serves it")
			return
		case !slices.Contains(pullPolicies, policy):
			f.bad(c.label, n.path, fmt.Sprintf("imagePullPolicy %q is not a pull policy", policy), "use Always, IfNotPresent or Never")
			return
		}
		if !s.Images.RequireDigest || policy == "Never" {
			return
		}
		img := c.get("image")
		ref, set, known := readString(f, c.label, img)
		if known && set {
			if _, digest := imageTag(ref); !digest {
				f.bad(c.label, img.path, fmt.Sprintf("image %q is pulled (imagePullPolicy %s) by tag, and this stack requires digests", ref, policy),
					"pin it by digest (name:tag@sha256:<digest>), or load the image onto the nodes and use imagePullPolicy: Never")
			}
		}
	})
}

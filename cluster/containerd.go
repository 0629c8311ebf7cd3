package cluster

import (
	"fmt"
	"strconv"
	"strings"
)

// The container runtime every node runs. Debian 12's containerd is 1.6.20, end of life since
// 2025-08-23 and below what Kubernetes 1.35 supports; prepare-node installs containerd 2.x from
// Docker's apt repository instead (the containerd.io package: containerd plus runc, signed with
// Docker's release key, whose fingerprint prepare-node pins). That is a maintained repository for
// every supported image (Debian 12, Debian 13, Ubuntu 24.04); containerd's own GitHub release
// tarballs would need a runc and a unit file of their own and a sha256 that cannot be computed
// here (no release downloads from this machine).

// DefaultContainerdVersion is containerd 2.3, the LTS line (supported until 2028-04-30, and the
// runtime containerd recommends for Kubernetes 1.36 and 1.37), at the newest patch Docker has
// packaged that we can show: docker/packaging tag containerd/v2.3.3-68 (2026-07-10). Sources:
// RELEASES.md of github.com/containerd/containerd/v2 v2.4.2 ("Current State of containerd
// Releases": 2.2 ends 2026-11-06, 2.3 LTS 2026-04-30 to 2028-04-30; "Kubernetes Support").
const DefaultContainerdVersion = "2.3.3"

// sandboxImage is the pause image kubeadm expects: constants.PauseVersion "3.10.1" in
// registry.k8s.io (k8s.io/kubernetes v1.35.4 and v1.34.4 cmd/kubeadm/app/constants/constants.go,
// images.GetPauseImage). containerd 2.3.3's own default is pause:3.10.2, which kubeadm's preflight
// reports as inconsistent (preflight/checks.go) and which would be pulled in addition.
const sandboxImage = "registry.k8s.io/pause:3.10.1"

// minContainerd is the oldest containerd 2.x that containerd's Kubernetes support matrix lists
// for a Kubernetes minor (RELEASES.md of containerd v2.4.2: 1.34 "2.1.3+, 2.0.6+", 1.35
// "2.2.0+, 2.1.5+", 1.36 "2.3.0+, 2.2.0+", 1.37 "2.4.0+, 2.3.0+").
var minContainerd = map[int][3]int{34: {2, 0, 6}, 35: {2, 1, 5}, 36: {2, 2, 0}, 37: {2, 3, 0}}

// checkContainerdVersion says what is wrong with containerd version v for Kubernetes k (x.y.z),
// or "".
func checkContainerdVersion(v, k string) string {
	have, ok := parseVersion(v)
	if !ok || have[0] != 2 {
		return fmt.Sprintf("%q must be an exact containerd 2.x version, e.g. %s", v, DefaultContainerdVersion)
	}
	kv, ok := parseVersion(k)
	if !ok {
		return ""
	}
	low, known := minContainerd[kv[1]]
	if known && less(have, low) {
		return fmt.Sprintf("containerd %s is older than %d.%d.%d, the oldest containerd 2.x supported with Kubernetes 1.%d", v, low[0], low[1], low[2], kv[1])
	}
	return ""
}

func parseVersion(s string) ([3]int, bool) {
	var out [3]int
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// containerdVersion is ContainerdVersion or the default.
func (a *KubeadmArgs) containerdVersion() string {
	if a.ContainerdVersion == "" {
		return DefaultContainerdVersion
	}
	return a.ContainerdVersion
}

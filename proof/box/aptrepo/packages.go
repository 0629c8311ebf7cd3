package aptrepo

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed upstream/kubelet.service upstream/10-kubeadm.conf upstream/kubelet.env
var upstreamFiles embed.FS

// Binaries are the pinned builds the packages are made of (hack/tools.sh kube, containerd2 and
// box-packages put them in ~/.cache/infralab/tools).
type Binaries struct {
	Kubeadm, Kubelet, Kubectl   string
	Containerd, Ctr, Shim, Runc string
	Crictl                      string
	// CNIDir holds the CNI plugin binaries (bridge, host-local, loopback, portmap, ...).
	CNIDir string
	// ContainerdUnit is containerd.service from the containerd source of ContainerdVersion.
	ContainerdUnit string
}

// Versions are the upstream versions packaged. KubernetesRevision is the Debian revision
// pkgs.k8s.io gives every package: the spec's Release (1) plus the Open Build Service's build
// counter (.1), hence 1.35.4-1.1; prepare-node.sh matches the upstream version prefix only.
type Versions struct {
	Kubernetes, CRITools, CNIPlugins, Containerd string
}

const (
	kubernetesRevision = "1.1"
	// containerdRevision: download.docker.com names containerd.io <upstream>-1 (e.g. 1.7.27-1).
	containerdRevision = "1"
	k8sMaintainer      = "Kubernetes Authors <dev@kubernetes.io>"
)

// KubernetesDebs are the packages of pkgs.k8s.io's core:/stable:/vX.Y repository, laid out as
// kubernetes/release's cmd/krel/templates/latest/*/*.spec install them with debbuild
// (%{_bindir} = /usr/bin, %{_unitdir} = /usr/lib/systemd/system, %{_sharedstatedir} = /var/lib),
// with the dependencies of its metadata.yaml for this version: kubelet >= 1.28 needs
// kubernetes-cni >= 1.2.0 (plus the spec's iptables >= 1.4.21, mount, util-linux); kubeadm >= 1.32
// has none (its cri-tools/kubelet/kubectl dependencies ended with 1.31).
func KubernetesDebs(b Binaries, v Versions) ([]*Deb, error) {
	unit, err := upstreamFiles.ReadFile("upstream/kubelet.service")
	if err != nil {
		return nil, err
	}
	dropIn, err := upstreamFiles.ReadFile("upstream/10-kubeadm.conf")
	if err != nil {
		return nil, err
	}
	// kubeadm.spec: sed -i 's;/etc/sysconfig/kubelet;/etc/default/kubelet;g' 10-kubeadm.conf
	dropIn = []byte(strings.ReplaceAll(string(dropIn), "/etc/sysconfig/kubelet", "/etc/default/kubelet"))
	env, err := upstreamFiles.ReadFile("upstream/kubelet.env")
	if err != nil {
		return nil, err
	}
	cni, err := cniFiles(b.CNIDir)
	if err != nil {
		return nil, err
	}
	k8s := v.Kubernetes + "-" + kubernetesRevision
	meta := func(section, summary string, depends ...string) [][2]string {
		f := [][2]string{{"Maintainer", k8sMaintainer}}
		if len(depends) > 0 {
			f = append(f, [2]string{"Depends", strings.Join(depends, ", ")})
		}
		return append(f, [2]string{"Section", section}, [2]string{"Priority", "optional"},
			[2]string{"Homepage", "https://kubernetes.io"}, [2]string{"Description", summary + "."})
	}
	bin := func(name, src string) File { return File{Path: "/usr/bin/" + name, Mode: 0o755, Source: src} }
	return []*Deb{
		{Name: "kubeadm", Version: k8s, Arch: "amd64",
			Fields: meta("admin", "Command-line utility for administering a Kubernetes cluster"),
			Files: []File{bin("kubeadm", b.Kubeadm),
				{Path: "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", Mode: 0o644, Data: dropIn}}},
		{Name: "kubelet", Version: k8s, Arch: "amd64",
			Fields: meta("net", "Node agent for Kubernetes clusters",
				"iptables (>= 1.4.21)", "kubernetes-cni (>= 1.2.0)", "mount", "util-linux"),
			Files: []File{bin("kubelet", b.Kubelet),
				{Path: "/usr/lib/systemd/system/kubelet.service", Mode: 0o644, Data: unit},
				{Path: "/var/lib/kubelet/.kubelet-keep", Mode: 0o644, Data: []byte{}},
				{Path: "/etc/kubernetes/manifests/.kubelet-keep", Mode: 0o644, Data: []byte{}},
				{Path: "/etc/default/kubelet", Mode: 0o644, Data: env, Conffile: true}},
			Scripts: systemdScripts("kubelet.service")},
		{Name: "kubectl", Version: k8s, Arch: "amd64",
			Fields: meta("admin", "Command-line utility for interacting with a Kubernetes cluster"),
			Files:  []File{bin("kubectl", b.Kubectl)}},
		{Name: "cri-tools", Version: v.CRITools + "-" + kubernetesRevision, Arch: "amd64",
			Fields: meta("admin", "Command-line utility for interacting with a container runtime"),
			Files:  []File{bin("crictl", b.Crictl)}},
		{Name: "kubernetes-cni", Version: v.CNIPlugins + "-" + kubernetesRevision, Arch: "amd64",
			Fields: meta("net", "Binaries required to provision kubernetes container networking"),
			Files:  append(cni, File{Path: "/etc/cni/net.d/.kubernetes-cni-keep", Mode: 0o644, Data: []byte{}})},
	}, nil
}

// ContainerdDeb is download.docker.com's containerd.io: containerd, its runc shim, ctr and runc in
// /usr/bin, containerd's own unit with the binary path moved to /usr/bin, and a config.toml
// conffile that disables the CRI plugin (prepare-node writes its own; --force-confold keeps it).
// It replaces Debian's containerd and runc, as Docker's does.
func ContainerdDeb(b Binaries, v Versions) (*Deb, error) {
	unit, err := os.ReadFile(b.ContainerdUnit)
	if err != nil {
		return nil, fmt.Errorf("containerd.service of containerd %s: %w", v.Containerd, err)
	}
	unit = []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/containerd", "/usr/bin/containerd"))
	bin := func(name, src string) File { return File{Path: "/usr/bin/" + name, Mode: 0o755, Source: src} }
	return &Deb{Name: "containerd.io", Version: v.Containerd + "-" + containerdRevision, Arch: "amd64",
		Fields: [][2]string{{"Maintainer", "Containerd team <help@containerd.io>"},
			// runc is built with cgo and the seccomp tag: libc and libseccomp, as Docker's.
			{"Depends", "libc6 (>= 2.34), libseccomp2 (>= 2.5.0)"},
			{"Conflicts", "containerd, runc"}, {"Replaces", "containerd, runc"}, {"Provides", "containerd, runc"},
			{"Section", "devel"}, {"Priority", "optional"}, {"Homepage", "https://containerd.io"},
			{"Description", "An open and reliable container runtime"}},
		Files: []File{bin("containerd", b.Containerd), bin("containerd-shim-runc-v2", b.Shim), bin("ctr", b.Ctr), bin("runc", b.Runc),
			{Path: "/lib/systemd/system/containerd.service", Mode: 0o644, Data: unit},
			{Path: "/etc/containerd/config.toml", Mode: 0o644, Data: []byte(dockerConfig), Conffile: true}},
		Scripts: systemdScripts("containerd.service"),
	}, nil
}

// dockerConfig is the effect of the config.toml containerd.io ships: the CRI plugin disabled
// (Docker itself does not need it), which is why prepare-node writes its own config.
const dockerConfig = "# containerd.io's default: the CRI plugin is off until configured (prepare-node writes this file).\ndisabled_plugins = [\"cri\"]\n"

// systemdScripts enable and (re)start UNIT on install and stop it on removal, as the packages'
// %systemd_post/%systemd_preun (debhelper's deb-systemd-helper) do; without systemd running (a
// chroot) they only leave the enablement to the next boot.
func systemdScripts(unit string) map[string]string {
	return map[string]string{
		"postinst": fmt.Sprintf(`#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	systemctl enable %[1]s >/dev/null 2>&1 || true
	systemctl restart %[1]s >/dev/null 2>&1 || true
fi
`, unit),
		"prerm": fmt.Sprintf(`#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop %[1]s >/dev/null 2>&1 || true
	systemctl disable %[1]s >/dev/null 2>&1 || true
fi
`, unit),
	}
}

// cniFiles are the plugin binaries in /opt/cni/bin, as kubernetes-cni.spec copies the release
// tarball there.
func cniFiles(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("CNI plugins: %w", err)
	}
	var out []File
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, File{Path: "/opt/cni/bin/" + e.Name(), Mode: 0o755, Source: filepath.Join(dir, e.Name())})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("CNI plugins: %s holds no binaries (hack/tools.sh box-packages)", dir)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

package images

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The control-plane images kubeadm pulls (`kubeadm config images list`): kube-apiserver,
// kube-controller-manager, kube-scheduler, kube-proxy, etcd, coredns and pause, made from the
// pinned binaries for the box's registry (proof/box/registry), so `kubeadm init` with an
// imageRepository needs nothing from registry.k8s.io.
//
// Paths and commands are the ones kubeadm v1.35.4 runs: its static pods call `kube-apiserver`,
// `kube-controller-manager`, `kube-scheduler` and `etcd` by name (phases/controlplane/manifests.go,
// phases/etcd/local.go), so the binaries sit in /usr/local/bin, which PATH names, as in
// upstream's images; kube-proxy's DaemonSet runs /usr/local/bin/kube-proxy
// (phases/addons/proxy/manifests.go); CoreDNS's Deployment gives only args, so the entrypoint is
// /coredns (phases/addons/dns/manifests.go). The tags are the versions the binaries report (etcd
// with upstream's image revision suffix "-0"), so a binary that drifts from what kubeadm names
// shows up as a tag `kubeadm config images list` does not find.
//
// These images are not in Names(): the node never imports them. ControlPlaneNames lists them.

// PauseTag is the sandbox image tag kubeadm v1.35.4 names (constants.PauseVersion). The image is
// our cmd/pause, which prints no version; cluster/containerd.go's sandboxImage names the same tag.
const PauseTag = "3.10.1"

// etcdImageRevision is the suffix upstream's etcd images carry after the etcd version
// (registry.k8s.io/etcd:3.6.6-0; kubeadm's constants.DefaultEtcdVersion).
const etcdImageRevision = "-0"

var (
	rootUser = account{name: "root", uid: 0, gid: 0, home: "/root"}
	// The control plane runs as root, as kubeadm's static pods expect (no runAsUser unless the
	// RootlessControlPlane feature gate is on).
	controlPlaneEnv = []string{"PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"}
	kubeVersionRE   = regexp.MustCompile(`Kubernetes v([0-9]+\.[0-9]+\.[0-9]+)`)
	etcdVersionRE   = regexp.MustCompile(`etcd Version: ([0-9]+\.[0-9]+\.[0-9]+)`)
)

func controlPlaneSpecs() []spec {
	var out []spec
	for _, n := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		out = append(out, spec{
			name: n, description: n + " built by `make tools` (hack/tools.sh kube), static", user: rootUser,
			versionOf: kubeVersionOf(n), collect: collectKube(n),
			config: v1.Config{Entrypoint: []string{"/usr/local/bin/" + n}, Env: controlPlaneEnv},
		})
	}
	return append(out,
		spec{
			name: "etcd", description: "etcd at kubeadm's version (hack/tools.sh box-registry), static", user: rootUser,
			versionOf: etcdVersion, collect: collectEtcd,
			config: v1.Config{Entrypoint: []string{"/usr/local/bin/etcd"}, Env: controlPlaneEnv,
				ExposedPorts: ports("2379/tcp", "2380/tcp")},
		},
		spec{
			name: "coredns", description: "CoreDNS at kubeadm's version (hack/tools.sh box-registry), static",
			user: nobodyUser, versionOf: kubeadmCoreDNSVersion, collect: collectKubeadmCoreDNS,
			config: v1.Config{Entrypoint: []string{"/coredns"}, Cmd: []string{"-conf", "/etc/coredns/Corefile"},
				ExposedPorts: ports("53/udp", "53/tcp", "9153/tcp")},
		},
		spec{
			name: "pause", description: "pod sandbox: our cmd/pause, static", user: pauseUser,
			version: PauseTag, collect: collectPause,
			config: v1.Config{Entrypoint: []string{"/pause"}},
		},
	)
}

// ControlPlaneNames lists the control-plane images, in build order.
func ControlPlaneNames() []string {
	var out []string
	for _, s := range controlPlaneSpecs() {
		out = append(out, s.name)
	}
	return out
}

// BuildControlPlane makes the control-plane images into OutDir (cached by content like Build).
// Use an OutDir of their own: OutDir/images.json is what the node imports.
func (b *Builder) BuildControlPlane(ctx context.Context) ([]Result, error) {
	return b.buildSpecs(ctx, controlPlaneSpecs())
}

func (b *Builder) kubeBinary(n string) (string, error) {
	p := filepath.Join(b.toolsDir(), n)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s binary: %w; run: hack/tools.sh kube", n, err)
	}
	return p, nil
}

func kubeVersionOf(n string) func(context.Context, *Builder) (string, error) {
	return func(ctx context.Context, b *Builder) (string, error) {
		bin, err := b.kubeBinary(n)
		if err != nil {
			return "", err
		}
		v, err := reportedVersion(ctx, bin, kubeVersionRE, "no Kubernetes vX.Y.Z", "--version")
		return "v" + v, err
	}
}

func collectKube(n string) func(context.Context, *Builder, *fileSet) ([]string, error) {
	return func(ctx context.Context, b *Builder, f *fileSet) ([]string, error) {
		bin, err := b.kubeBinary(n)
		if err != nil {
			return nil, err
		}
		if err := addRootBinary(f, bin, "/usr/local/bin/"+n, n == "kube-proxy"); err != nil {
			return nil, err
		}
		if n != "kube-proxy" {
			return nil, nil
		}
		return addIptables(f)
	}
}

// addRootBinary puts a static binary at dest on a base layer for root. mergedUsr adds Debian's
// /lib -> usr/lib links, for images that also carry Debian files.
func addRootBinary(f *fileSet, bin, dest string, mergedUsr bool) error {
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	if err := addBase(f, rootUser, mergedUsr); err != nil {
		return err
	}
	f.addData(dest, 0o755, 0, 0, data)
	return nil
}

// iptablesPackages are the Debian packages kube-proxy's iptables mode execs: iptables,
// iptables-save/-restore (nft and legacy, as Debian's alternatives choose) and conntrack, which
// it calls to flush UDP entries. Upstream's image carries the same tools (distroless-iptables).
var iptablesPackages = []string{"iptables", "conntrack"}

// addIptables adds the iptables and conntrack commands with the Debian alternatives links they
// resolve through, and the xtables extensions iptables loads with dlopen (which ldd cannot see).
func addIptables(f *fileSet) ([]string, error) {
	for _, c := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
		"ip6tables-restore", "iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore",
		"iptables-nft", "iptables-nft-save", "iptables-nft-restore", "conntrack"} {
		if err := f.addHost("/usr/sbin/" + c); err != nil {
			return nil, fmt.Errorf("%w; run: apt-get install -y iptables conntrack", err)
		}
	}
	ext, err := filepath.Glob("/usr/lib/*-linux-gnu/xtables")
	if err != nil || len(ext) == 0 {
		return nil, fmt.Errorf("no xtables extension folder under /usr/lib/*-linux-gnu; run: apt-get install -y iptables")
	}
	if err := f.addTree(ext[0], nil); err != nil {
		return nil, err
	}
	// iptables takes a lock file here; kube-proxy's DaemonSet mounts /run/xtables.lock over it.
	f.addDir("/run", 0o755, 0, 0)
	return iptablesPackages, nil
}

// toolsCache is ~/.cache/infralab/tools (INFRALAB_CACHE, XDG_CACHE_HOME honoured), where
// hack/tools.sh keeps builds that are not linked into .tools/bin.
func (b *Builder) toolsCache() string {
	if b.ToolsCache != "" {
		return b.ToolsCache
	}
	if c := os.Getenv("INFRALAB_CACHE"); c != "" {
		return filepath.Join(c, "tools")
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "infralab", "tools")
}

// cachedTool is NAME from hack/tools.sh's cache folder NAME-v<value of versionKey in
// hack/versions.env>.
func (b *Builder) cachedTool(name, versionKey string) (string, error) {
	vs, err := PinnedVersions(b.RepoDir)
	if err != nil {
		return "", err
	}
	v := vs[versionKey]
	if v == "" {
		return "", fmt.Errorf("hack/versions.env has no %s", versionKey)
	}
	p := filepath.Join(b.toolsCache(), name+"-v"+v, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s v%s: %w; run: hack/tools.sh box-registry", name, v, err)
	}
	return p, nil
}

// PinnedVersions reads hack/versions.env under repoDir (KEY=value lines).
func PinnedVersions(repoDir string) (map[string]string, error) {
	fh, err := os.Open(filepath.Join(repoDir, "hack", "versions.env"))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out, sc.Err()
}

func etcdVersion(ctx context.Context, b *Builder) (string, error) {
	bin, err := b.cachedTool("etcd", "KUBEADM_ETCD_VERSION")
	if err != nil {
		return "", err
	}
	v, err := reportedVersion(ctx, bin, etcdVersionRE, "no etcd Version: X.Y.Z", "--version")
	return v + etcdImageRevision, err
}

func collectEtcd(_ context.Context, b *Builder, f *fileSet) ([]string, error) {
	bin, err := b.cachedTool("etcd", "KUBEADM_ETCD_VERSION")
	if err != nil {
		return nil, err
	}
	if err := addRootBinary(f, bin, "/usr/local/bin/etcd", false); err != nil {
		return nil, err
	}
	// kubeadm mounts the data dir at /var/lib/etcd; it must exist on a read-only root.
	f.addDir("/var/lib/etcd", 0o700, 0, 0)
	return nil, nil
}

func kubeadmCoreDNSVersion(ctx context.Context, b *Builder) (string, error) {
	bin, err := b.cachedTool("coredns", "KUBEADM_COREDNS_VERSION")
	if err != nil {
		return "", err
	}
	v, err := reportedVersion(ctx, bin, corednsVersionRE, "no CoreDNS-X.Y.Z", "-version")
	return "v" + v, err
}

func collectKubeadmCoreDNS(_ context.Context, b *Builder, f *fileSet) ([]string, error) {
	bin, err := b.cachedTool("coredns", "KUBEADM_COREDNS_VERSION")
	if err != nil {
		return nil, err
	}
	if err := addNobodyBinary(f, bin, "/coredns"); err != nil {
		return nil, err
	}
	f.addData("/etc/coredns/Corefile", 0o644, 0, 0, []byte(corednsConfig))
	return nil, nil
}

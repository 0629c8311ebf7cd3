package images

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Calico's images for the lab's Installation, from the binaries `hack/tools.sh calico` builds
// out of the Calico v3.31.0 and tigera/operator v1.40.0 git tags (the Go proxy refuses the calico
// module). Each has the repository path and tag tigera/operator v1.40.0 computes
// (pkg/components/calico.go: Image "calico/node", Version "v3.31.0"; references.go GetReference:
// <Installation.spec.registry>/<image>:<version>), so with registry "infralab.local" the operator
// renders exactly these references, and a registry that serves them under the same paths serves
// the lab's Installation with only spec.registry changed. Inside, each binary is where upstream's
// Dockerfile puts it (the operator's probes and commands name those paths).
//
// Not built, because the lab's Installation does not deploy them (cluster/calico.go says why):
// calico/apiserver, calico/pod2daemon-flexvol, calico/csi, calico/node-driver-registrar,
// calico/goldmane, calico/whisker, calico/key-cert-provisioner.

// calicoDir is where `hack/tools.sh calico` links its cache folder (bin/ and share/).
func (b *Builder) calicoDir() string {
	if b.CalicoDir != "" {
		return b.CalicoDir
	}
	return filepath.Join(b.RepoDir, ".tools", "calico")
}

const calicoGroup = "calico"

// rootUser is shared with the control-plane images (controlplane.go).

// calicoUser is the uid upstream's typha and kube-controllers images run as (USER 999 in
// typha/docker-image/Dockerfile and kube-controllers/Dockerfile); the operator sets its own
// runAsUser on the pods, the image's is the fallback.
var calicoUser = account{name: "calico", uid: 999, gid: 999, home: "/"}

func calicoSpecs() []spec {
	return []spec{
		{
			name: "calico/node", group: calicoGroup, user: rootUser,
			description: "calico-node (felix, the node daemon) with upstream's runit services, Debian's iptables/ipset/runit",
			versionOf:   calicoVersion,
			collect:     collectCalicoNode,
			config: v1.Config{
				// Upstream: CMD ["start_runit"], ENV SVDIR=/etc/service/enabled (node/Dockerfile.amd64).
				Cmd: []string{"start_runit"},
				Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SVDIR=/etc/service/enabled"},
			},
		},
		{
			name: "calico/cni", group: calicoGroup, user: rootUser,
			description: "Calico's CNI plugin, IPAM and installer, with Debian's reference plugins",
			versionOf:   calicoVersion,
			collect:     collectCalicoCNI,
			config: v1.Config{
				// Upstream: WORKDIR /opt/cni/bin, CMD ["/opt/cni/bin/install"] (cni-plugin/Dockerfile).
				Cmd:        []string{"/opt/cni/bin/install"},
				Env:        []string{"PATH=/opt/cni/bin:/usr/bin"},
				WorkingDir: "/opt/cni/bin",
			},
		},
		{
			name: "calico/kube-controllers", group: calicoGroup, user: calicoUser,
			description: "Calico's kube-controllers", versionOf: calicoVersion,
			collect: collectKubeControllers,
			config:  v1.Config{Entrypoint: []string{"/usr/bin/wrapper", "/usr/bin/kube-controllers"}},
		},
		{
			name: "calico/typha", group: calicoGroup, user: calicoUser,
			description: "Calico's typha", versionOf: calicoVersion,
			collect: collectTypha,
			config:  v1.Config{Cmd: []string{"/usr/bin/calico-typha"}},
		},
		{
			name: "tigera/operator", group: calicoGroup, user: nobodyUser,
			description: "tigera/operator, the version tigera-operator.yaml of Calico v3.31.0 runs",
			versionOf:   operatorVersion,
			collect:     collectOperator,
			// The manifest runs `command: [operator]`, found on PATH (build/Dockerfile: /usr/bin/operator).
			config: v1.Config{Env: []string{"PATH=/usr/bin"}, Entrypoint: []string{"/usr/bin/operator"}},
		},
	}
}

// CalicoNames lists the Calico images; they are built only when named (Build with nil builds
// the embedded node's images, which need no Calico).
func CalicoNames() []string {
	var out []string
	for _, s := range calicoSpecs() {
		out = append(out, s.name)
	}
	return out
}

// BuildCalico makes the Calico images and the tigera operator's (CalicoNames) into OutDir,
// cached by content like Build.
func (b *Builder) BuildCalico(ctx context.Context) ([]Result, error) {
	return b.Build(ctx, CalicoNames())
}

// CalicoManifest is the path of manifests/<name> of the Calico build (tigera-operator.yaml,
// operator-crds.yaml: hack/tools.sh checked them against hack/versions.env's sha256).
func (b *Builder) CalicoManifest(name string) (string, error) {
	return b.calicoFile(filepath.Join("share", "manifests", name))
}

func (b *Builder) calicoFile(rel string) (string, error) {
	p := filepath.Join(b.calicoDir(), rel)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("calico build output: %w; run: hack/tools.sh calico", err)
	}
	return p, nil
}

var calicoVersionRE = regexp.MustCompile(`(v[0-9]+\.[0-9]+\.[0-9]+)`)

// calicoVersion tags the image with the version calico-node reports (hack/tools.sh stamps
// buildinfo.Version), e.g. v3.31.0, the tag the operator asks for.
func calicoVersion(ctx context.Context, b *Builder) (string, error) {
	bin, err := b.calicoFile("bin/calico-node")
	if err != nil {
		return "", err
	}
	return reportedVersion(ctx, bin, calicoVersionRE, "no vX.Y.Z (build it with hack/tools.sh calico)", "-v")
}

// operatorBinary is the operator hack/tools.sh calico links into the tools folder.
func (b *Builder) operatorBinary() (string, error) {
	p := filepath.Join(b.toolsDir(), "operator")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("tigera/operator binary: %w; run: hack/tools.sh calico", err)
	}
	return p, nil
}

func operatorVersion(ctx context.Context, b *Builder) (string, error) {
	bin, err := b.operatorBinary()
	if err != nil {
		return "", err
	}
	return reportedVersion(ctx, bin, calicoVersionRE, "no vX.Y.Z (build it with hack/tools.sh calico)", "--version")
}

// addCalicoBinary puts a static binary of the build at dest.
func (b *Builder) addCalicoBinary(f *fileSet, rel, dest string) error {
	p, err := b.calicoFile(rel)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	f.addData(dest, 0o755, 0, 0, data)
	return nil
}

// addCalicoTree copies a folder of the build's share/ to dest, keeping modes.
func (b *Builder) addCalicoTree(f *fileSet, rel, dest string) error {
	root, err := b.calicoFile(rel)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		target := filepath.Join(dest, r)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			f.addDir(target, info.Mode().Perm(), 0, 0)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			f.addData(target, info.Mode().Perm(), 0, 0, data)
		}
		return nil
	})
}

// calicoNodePackages are the Debian packages whose programs calico/node runs: runit supervises
// the services upstream's start_runit enables, bash and busybox run their scripts (the log/run
// scripts are bash: `tee >(svlogd ...)`), felix programs the dataplane with iptables/ipset
// (it detects legacy vs nft with iptables-legacy-save and iptables-nft-save), conntrack and ip.
var calicoNodePackages = []string{"runit", "bash", "busybox-static", "iptables", "ipset", "conntrack", "iproute2"}

func collectCalicoNode(ctx context.Context, b *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, rootUser, true); err != nil {
		return nil, err
	}
	// Upstream: COPY calico-node /bin/calico-node (the probes run /bin/calico-node -felix-ready);
	// /bin is the merged-/usr link here.
	if err := b.addCalicoBinary(f, "bin/calico-node", "/usr/bin/calico-node"); err != nil {
		return nil, err
	}
	// Upstream: COPY filesystem/etc/ /etc and filesystem/sbin/* /usr/sbin/ (hack/tools.sh kept
	// them without BIRD's and confd's services).
	if err := b.addCalicoTree(f, "share/node-filesystem/etc", "/etc"); err != nil {
		return nil, err
	}
	if err := b.addCalicoTree(f, "share/node-filesystem/sbin", "/usr/sbin"); err != nil {
		return nil, err
	}
	for _, p := range []string{"/usr/bin/runsvdir", "/usr/bin/runsv", "/usr/bin/sv", "/usr/bin/svlogd", "/usr/bin/bash",
		"/usr/sbin/ipset", "/usr/sbin/conntrack", "/usr/bin/ip"} {
		if err := f.addHost(p); err != nil {
			return nil, fmt.Errorf("%w; run: apt-get install -y %s", err, strings.Join(calicoNodePackages, " "))
		}
	}
	if err := f.addHost("/bin/busybox"); err != nil {
		return nil, fmt.Errorf("busybox: %w; run: apt-get install -y busybox-static", err)
	}
	// What start_runit, rc.local and the run scripts call besides the above.
	for _, applet := range []string{"sh", "cat", "cp", "mkdir", "rm", "env", "which", "tee", "touch", "echo", "ls", "sleep"} {
		f.addLink("/usr/bin/"+applet, "busybox")
	}
	files, err := dpkgFiles(ctx, "iptables")
	if err != nil {
		return nil, err
	}
	for _, p := range files {
		if strings.HasPrefix(p, "/usr/sbin/") || strings.HasPrefix(p, "/usr/lib/x86_64-linux-gnu/xtables/") {
			if st, err := os.Lstat(p); err == nil && !st.IsDir() {
				if err := f.addHost(p); err != nil {
					return nil, err
				}
			}
		}
	}
	// Upstream sets the alternatives to legacy (node/Dockerfile.amd64); felix picks the backend
	// itself (FELIX_IPTABLESBACKEND=Auto) and calls iptables-legacy-* or iptables-nft-* by name.
	for _, fam := range []string{"iptables", "ip6tables"} {
		for _, suffix := range []string{"", "-save", "-restore"} {
			f.addLink("/usr/sbin/"+fam+suffix, fam+"-legacy"+suffix)
		}
	}
	for _, d := range []string{"/var/lib/calico", "/var/run/calico", "/var/log/calico", "/etc/cni/net.d", "/opt/cni/bin"} {
		f.addDir(d, 0o755, 0, 0)
	}
	return calicoNodePackages, addCACerts(f)
}

// cniReferencePlugins are the plugins upstream's calico/cni image ships besides Calico's own
// (its conflist chains bandwidth and portmap); here they are Debian's containernetworking-plugins.
var cniReferencePlugins = []string{"bandwidth", "host-local", "loopback", "portmap", "tuning"}

func collectCalicoCNI(_ context.Context, b *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, rootUser, true); err != nil {
		return nil, err
	}
	for _, bin := range []string{"calico", "install"} {
		if err := b.addCalicoBinary(f, "bin/"+bin, "/opt/cni/bin/"+bin); err != nil {
			return nil, err
		}
	}
	// Upstream's cni-plugin Makefile: ln -sf ./calico calico-ipam.
	f.addLink("/opt/cni/bin/calico-ipam", "calico")
	for _, p := range cniReferencePlugins {
		src := "/usr/lib/cni/" + p
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("%w; run: apt-get install -y containernetworking-plugins", err)
		}
		f.addData("/opt/cni/bin/"+p, 0o755, 0, 0, data)
	}
	if err := b.addCalicoBinary(f, "share/LICENSE", "/licenses/LICENSE"); err != nil {
		return nil, err
	}
	return []string{"containernetworking-plugins"}, nil
}

func collectKubeControllers(_ context.Context, b *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, calicoUser, false); err != nil {
		return nil, err
	}
	for _, bin := range []string{"kube-controllers", "check-status", "wrapper"} {
		if err := b.addCalicoBinary(f, "bin/"+bin, "/usr/bin/"+bin); err != nil {
			return nil, err
		}
	}
	// Upstream pre-creates these owned by 999 (kube-controllers/Dockerfile): check-status reads
	// the status file the controllers write, on a read-only root.
	u := calicoUser
	f.addDir("/status", 0o755, u.uid, u.gid)
	f.addData("/status/status.json", 0o644, u.uid, u.gid, nil)
	f.addDir("/profiles", 0o755, u.uid, u.gid)
	f.addData("/profiles/mem.pprof", 0o644, u.uid, u.gid, nil)
	f.addData("/profiles/cpu.pprof", 0o644, u.uid, u.gid, nil)
	return nil, nil
}

func collectTypha(_ context.Context, b *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, calicoUser, false); err != nil {
		return nil, err
	}
	if err := b.addCalicoBinary(f, "bin/calico-typha", "/usr/bin/calico-typha"); err != nil {
		return nil, err
	}
	if err := b.addCalicoBinary(f, "share/typha/typha.cfg", "/etc/calico/typha.cfg"); err != nil {
		return nil, err
	}
	return nil, nil
}

func collectOperator(_ context.Context, b *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, nobodyUser, false); err != nil {
		return nil, err
	}
	bin, err := b.operatorBinary()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	f.addData("/usr/bin/operator", 0o755, 0, 0, data)
	return nil, addCACerts(f)
}

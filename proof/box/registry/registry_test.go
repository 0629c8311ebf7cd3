package registry

import (
	"archive/tar"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/infralab/infralab/cluster"
	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/images"
)

// registryBinary is the distribution registry hack/tools.sh box-registry builds.
func registryBinary(t *testing.T) string {
	t.Helper()
	vs, err := images.PinnedVersions(testenv.RepoRoot())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(testenv.CacheDir(), "tools", "registry-v"+vs["DISTRIBUTION_VERSION"], "registry")
	if _, err := os.Stat(p); err != nil {
		msg := p + " missing; run: hack/tools.sh box-registry"
		if testenv.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func startRegistry(t *testing.T) (*Registry, string) {
	t.Helper()
	return startRegistryOn(t, freeLoopback(t))
}

func startRegistryOn(t *testing.T, addr string) (*Registry, string) {
	t.Helper()
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Start(ctx, Config{StateDir: state, Addr: addr, Binary: registryBinary(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Error(err)
		}
	})
	return r, state
}

// TestRegistryTLSWithBoxCA: the box CA and the server certificate are written with the right
// modes and names; the registry answers only clients that trust the box CA; Stop (also from the
// pid file, as box-down does) leaves nothing listening and no pid file.
func TestRegistryTLSWithBoxCA(t *testing.T) {
	r, state := startRegistry(t)
	for file, mode := range map[string]os.FileMode{
		CACertFile: 0o644, CAKeyFile: 0o600,
		filepath.Join(dirName, certFile): 0o644, filepath.Join(dirName, keyFile): 0o600,
	} {
		st, err := os.Stat(filepath.Join(state, file))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %o, want %o", file, st.Mode().Perm(), mode)
		}
	}
	pemBytes, err := os.ReadFile(filepath.Join(state, dirName, certFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var sans []string
	for _, ip := range cert.IPAddresses {
		sans = append(sans, ip.String())
	}
	if strings.Join(sans, ",") != "127.0.0.1" {
		t.Errorf("server certificate SANs %v, want [127.0.0.1] for a registry on loopback", sans)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: r.CA.Pool()}); err != nil {
		t.Errorf("server certificate does not verify against the box CA: %v", err)
	}

	resp, err := r.Client().Get(r.URL + "/v2/")
	if err != nil {
		t.Fatalf("GET /v2/ with the box CA: %v", err)
	}
	resp.Body.Close()
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	if _, err := plain.Get(r.URL + "/v2/"); err == nil || !isUnknownAuthority(err) {
		t.Fatalf("GET /v2/ without the box CA: want an unknown-authority error, got %v", err)
	}

	// A second Start on the same state dir replaces the first (pid file), keeping the CA.
	ca1 := r.CA.CertPEM
	if err := Stop(state); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, dirName, pidFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", r.Addr)
	}
	ca, err := EnsureCA(state)
	if err != nil {
		t.Fatal(err)
	}
	if string(ca.CertPEM) != string(ca1) {
		t.Error("EnsureCA made a new CA although one existed")
	}
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua) || strings.Contains(err.Error(), "certificate signed by unknown authority")
}

// TestBoxCAIncompleteIsAnError: a key without its certificate is reported, not replaced.
func TestBoxCAIncompleteIsAnError(t *testing.T) {
	dir := t.TempDir()
	if _, err := EnsureCA(dir); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, CACertFile))
	if _, err := EnsureCA(dir); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("EnsureCA with only a key: %v, want an 'incomplete' error", err)
	}
}

// TestControlPlaneImagesFromTheBoxRegistry builds the control-plane images, pushes them, and
// checks them the way kubeadm and containerd will use them: real kubeadm, given the cluster
// layer's own rendered config with imageRepository set, names exactly the tags in the registry;
// pulls verify against the box CA and fail without it; the pulled binaries run from the image's
// own root filesystem and report the pinned versions.
func TestControlPlaneImagesFromTheBoxRegistry(t *testing.T) {
	testenv.RequireRoot(t) // chroot into the unpacked images
	kubeadm := testenv.Tool(t, "kubeadm")
	r, _ := startRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	b := &images.Builder{OutDir: filepath.Join(testenv.CacheDir(), "images", "controlplane"), RepoDir: testenv.RepoRoot(), Log: testWriter{t}}
	start := time.Now()
	built, err := b.BuildControlPlane(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d images in %s", len(built), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	pushed, err := r.Push(ctx, DefaultPrefix, built)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pushed in %s", time.Since(start).Round(time.Millisecond))
	again, err := r.Push(ctx, DefaultPrefix, built)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range again {
		if !p.Skipped || p.Digest != pushed[i].Digest {
			t.Errorf("second push of %s sent it again (skipped=%v)", p.Ref, p.Skipped)
		}
	}

	// kubeadm's own list, from the config the cluster layer renders.
	args := &cluster.KubeadmArgs{
		ClusterName: "infralab", KubernetesVersion: pinnedKube(t),
		ControlPlane: cluster.Node{Name: "k8s-cp-1", IP: "10.77.0.10"}, SSHUser: "debian",
		SSHPrivateKey: pulumi.String("unused"), EncryptionKey: pulumi.String("unused"),
		PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", CalicoVersion: cluster.DefaultCalicoVersion,
		ImageRepository: r.ImageRepository(DefaultPrefix), ImageRepositoryCA: string(r.CA.CertPEM),
	}
	cfg, err := cluster.KubeadmConfig(args)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "kubeadm.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, kubeadm, "config", "images", "list", "--config", cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("kubeadm config images list: %v\n%s", err, out)
	}
	want := strings.Fields(string(out))
	have, err := r.Tags(ctx, DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	sort.Strings(have)
	if strings.Join(want, "\n") != strings.Join(have, "\n") {
		t.Fatalf("kubeadm names\n  %s\nthe registry holds\n  %s", strings.Join(want, "\n  "), strings.Join(have, "\n  "))
	}

	// Pulls: with the box CA they succeed, without it they fail on the certificate.
	sizes := map[string]int64{}
	for _, ref := range want {
		tag, err := name.NewTag(ref, name.StrictValidation)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(tag, remote.WithContext(ctx), remote.WithTransport(r.Transport()))
		if err != nil {
			t.Fatalf("pull %s with the box CA: %v", ref, err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range m.Layers {
			sizes[ref] += l.Size
		}
		t.Logf("%s: %.1f MiB compressed", ref, float64(sizes[ref])/(1<<20))
	}
	tag, _ := name.NewTag(want[0], name.StrictValidation)
	if _, err := remote.Image(tag, remote.WithContext(ctx), remote.WithTransport(&http.Transport{})); err == nil || !isUnknownAuthority(err) {
		t.Fatalf("pull %s without the box CA: want an unknown-authority error, got %v", want[0], err)
	}

	// The binaries run from their image's root filesystem, as the runtime starts them.
	v := "v" + pinnedKube(t)
	vs, _ := images.PinnedVersions(testenv.RepoRoot())
	repo := r.ImageRepository(DefaultPrefix)
	for _, c := range []struct{ ref, want string }{
		{repo + "/kube-apiserver:" + v, "Kubernetes " + v},
		{repo + "/kube-controller-manager:" + v, "Kubernetes " + v},
		{repo + "/kube-scheduler:" + v, "Kubernetes " + v},
		{repo + "/kube-proxy:" + v, "Kubernetes " + v},
		{repo + "/etcd:" + vs["KUBEADM_ETCD_VERSION"] + "-0", "etcd Version: " + vs["KUBEADM_ETCD_VERSION"]},
		{repo + "/coredns:v" + vs["KUBEADM_COREDNS_VERSION"], "CoreDNS-" + vs["KUBEADM_COREDNS_VERSION"]},
	} {
		root := unpack(t, ctx, r, c.ref)
		img := pull(t, ctx, r, c.ref)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		arg := "--version"
		if strings.Contains(c.ref, "/coredns:") {
			arg = "-version"
		}
		got := runIn(t, root, cf.Config, append(cf.Config.Entrypoint, arg)...)
		if !strings.Contains(got, c.want) {
			t.Errorf("%s %s printed %q, want %q", c.ref, arg, got, c.want)
		}
		if strings.Contains(c.ref, "/kube-proxy:") {
			// kube-proxy's iptables mode execs these from the image: Debian's binaries with their libraries.
			for _, tool := range []string{"iptables", "iptables-restore", "ip6tables-save", "conntrack"} {
				if out := runIn(t, root, cf.Config, tool, "--version"); !strings.Contains(out, "v") {
					t.Errorf("kube-proxy image: %s --version printed %q", tool, out)
				}
			}
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func pinnedKube(t *testing.T) string {
	return testenv.PinnedVersions(t)["KUBERNETES_VERSION"]
}

func pull(t *testing.T, ctx context.Context, r *Registry, ref string) v1.Image {
	t.Helper()
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(tag, remote.WithContext(ctx), remote.WithTransport(r.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// unpack writes the pulled image's flattened filesystem into a temporary folder.
func unpack(t *testing.T, ctx context.Context, r *Registry, ref string) string {
	t.Helper()
	root := t.TempDir()
	rc := mutate.Extract(pull(t, ctx, r, ref))
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(p), 0o755)
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777); err == nil {
				_, err = io.Copy(f, tr)
				f.Close()
			}
		}
		if err != nil {
			t.Fatalf("unpack %s: %s: %v", ref, h.Name, err)
		}
	}
	return root
}

// runIn runs argv chrooted into root with the image's environment, as its container would
// (PATH resolves relative commands the way kubeadm's manifests name them).
func runIn(t *testing.T, root string, cfg v1.Config, argv ...string) string {
	t.Helper()
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, e := range cfg.Env {
		if strings.HasPrefix(e, "PATH=") {
			path = strings.TrimPrefix(e, "PATH=")
		}
	}
	bin := argv[0]
	if !strings.HasPrefix(bin, "/") {
		for _, d := range filepath.SplitList(path) {
			if _, err := os.Lstat(filepath.Join(root, d, bin)); err == nil {
				bin = filepath.Join(d, bin)
				break
			}
		}
	}
	cmd := exec.Command(bin, argv[1:]...)
	cmd.Env = append([]string{}, cfg.Env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%v in %s: %v: %s", argv, root, err, out)
	}
	return string(out)
}

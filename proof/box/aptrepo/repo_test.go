package aptrepo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// aptGet runs apt-get in a throwaway apt root: apt-get -o Dir=... never touches the host's apt state.
func aptGet(t *testing.T, root string, args ...string) (string, error) {
	t.Helper()
	return aptTool(t, "apt-get", root, args...)
}

func aptTool(t *testing.T, tool, root string, args ...string) (string, error) {
	t.Helper()
	base := []string{"-o", "Dir=" + root, "-o", "Dir::State::status=" + filepath.Join(root, "status"),
		"-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1", "-o", "APT::Architecture=amd64"}
	cmd := exec.Command(tool, append(base, args...)...)
	cmd.Env = append(os.Environ(), "APT_CONFIG="+filepath.Join(root, "apt.conf"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestKubernetesRepoVerifiesAndRefusesTampering serves a signed pkgs.k8s.io-layout repository on
// loopback; the real apt verifies it with the pinned key and resolves kubeadm=1.35.4-1.1, and
// refuses the repository once its Packages index is changed.
func TestKubernetesRepoVerifiesAndRefusesTampering(t *testing.T) {
	ctx := context.Background()
	state, err := os.MkdirTemp("", "apt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(state)
	key, err := EnsureKey(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()
	bin := filepath.Join(state, "bin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cni := filepath.Join(state, "cni")
	_ = os.MkdirAll(cni, 0o755)
	_ = os.WriteFile(filepath.Join(cni, "bridge"), []byte("x"), 0o755)
	debs, err := KubernetesDebs(Binaries{Kubeadm: bin, Kubelet: bin, Kubectl: bin, Crictl: bin, CNIDir: cni},
		Versions{Kubernetes: "1.35.4", CRITools: "1.34.0", CNIPlugins: "1.9.0"})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(state, "www")
	dir, err := WriteKubernetes(ctx, root, "1.35.4", key, debs)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(state, "containerd.service")
	_ = os.WriteFile(unit, []byte("[Service]\nExecStart=/usr/local/bin/containerd\n"), 0o644)
	cd, err := ContainerdDeb(Binaries{Containerd: bin, Ctr: bin, Shim: bin, Runc: bin, ContainerdUnit: unit}, Versions{Containerd: "2.3.3"})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteDocker(ctx, root, key, []*Deb{cd}); err != nil {
		t.Fatal(err)
	}
	srv, err := Serve("127.0.0.1:0", root)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	apt := filepath.Join(state, "aptroot")
	for _, d := range []string{"etc/apt/sources.list.d", "etc/apt/preferences.d", "etc/apt/apt.conf.d", "etc/apt/trusted.gpg.d", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial"} {
		_ = os.MkdirAll(filepath.Join(apt, d), 0o755)
	}
	_ = os.WriteFile(filepath.Join(apt, "status"), nil, 0o644)
	_ = os.WriteFile(filepath.Join(apt, "apt.conf"), nil, 0o644)
	keyring := filepath.Join(apt, "k8s.gpg")
	if out, err := exec.Command("gpg", "--batch", "--yes", "--dearmor", "-o", keyring, filepath.Join(dir, "Release.key")).CombinedOutput(); err != nil {
		t.Fatalf("dearmor: %v %s", err, out)
	}
	src := "deb [signed-by=" + keyring + "] http://" + srv.Addr + "/core:/stable:/v1.35/deb/ /\n" +
		"deb [signed-by=" + keyring + "] http://" + srv.Addr + "/linux/debian bookworm stable\n"
	_ = os.WriteFile(filepath.Join(apt, "etc/apt/sources.list"), []byte(src), 0o644)
	if out, err := aptGet(t, apt, "update"); err != nil || strings.Contains(out, "W:") || strings.Contains(out, "E:") {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	out, err := aptGet(t, apt, "install", "--download-only", "-y", "--no-install-recommends", "kubeadm=1.35.4-1.1")
	if err != nil || !strings.Contains(out, "kubeadm") {
		t.Fatalf("install --download-only: %v\n%s", err, out)
	}

	if out, err := aptTool(t, "apt-cache", apt, "policy", "containerd.io"); err != nil || !strings.Contains(out, "Candidate: 2.3.3-1") {
		t.Fatalf("containerd.io from the docker layout: %v\n%s", err, out)
	}

	// Tampered: one byte of Packages changed after signing.
	p := filepath.Join(dir, "Packages")
	b, _ := os.ReadFile(p)
	_ = os.WriteFile(p, []byte(strings.Replace(string(b), "Section: admin", "Section: adminx", 1)), 0o644)
	_ = os.Remove(p + ".gz")
	_ = os.RemoveAll(filepath.Join(apt, "var/lib/apt/lists"))
	_ = os.MkdirAll(filepath.Join(apt, "var/lib/apt/lists/partial"), 0o755)
	out, err = aptGet(t, apt, "update")
	if err == nil && !strings.Contains(out, "Hash Sum mismatch") && !strings.Contains(out, "E:") && !strings.Contains(out, "W:") {
		t.Fatalf("apt accepted a tampered Packages:\n%s", out)
	}
}

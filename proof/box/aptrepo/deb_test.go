package aptrepo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKubeadmDebHasUpstreamLayout builds kubeadm's deb from a stand-in binary and lets the real
// dpkg-deb read it: the control fields and the drop-in at pkgs.k8s.io's path, with
// /etc/default/kubelet as the deb spec seds it.
func TestKubeadmDebHasUpstreamLayout(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cni := filepath.Join(dir, "cni")
	if err := os.MkdirAll(cni, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cni, "bridge"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	debs, err := KubernetesDebs(Binaries{Kubeadm: bin, Kubelet: bin, Kubectl: bin, Crictl: bin, CNIDir: cni},
		Versions{Kubernetes: "1.35.4", CRITools: "1.34.0", CNIPlugins: "1.9.0"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := writeDeb(debs[0], dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != "kubeadm_1.35.4-1.1_amd64.deb" {
		t.Errorf("file name %s", filepath.Base(p))
	}
	info, err := exec.Command("dpkg-deb", "-I", p).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -I: %v: %s", err, info)
	}
	for _, want := range []string{"Package: kubeadm", "Version: 1.35.4-1.1", "Architecture: amd64"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("control lacks %q:\n%s", want, info)
		}
	}
	list, err := exec.Command("dpkg-deb", "-c", p).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v: %s", err, list)
	}
	for _, want := range []string{"./usr/bin/kubeadm", "./usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"} {
		if !strings.Contains(string(list), want) {
			t.Errorf("contents lack %s:\n%s", want, list)
		}
	}
	x := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", p, x).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v: %s", err, out)
	}
	dropIn, err := os.ReadFile(filepath.Join(x, "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dropIn), "EnvironmentFile=-/etc/default/kubelet") || strings.Contains(string(dropIn), "sysconfig") {
		t.Errorf("drop-in not as the deb spec installs it:\n%s", dropIn)
	}
}

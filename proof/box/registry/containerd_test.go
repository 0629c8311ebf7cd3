package registry

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/images"
)

// TestContainerdPullsThroughCRIWithTheBoxCA: the containerd the lab's nodes run (2.x, the
// pinned build), configured by the cluster layer's own prepare-node helpers (containerd_config
// and ensure_registry_hosts from cluster/scripts), pulls kubeadm's pause image from the box
// registry through the CRI, as the kubelet does: TLS verified against the box CA from
// hosts.toml. Without that hosts.toml the same pull fails on the certificate.
func TestContainerdPullsThroughCRIWithTheBoxCA(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.Tool(t, "containerd2")
	t.Log("waiting for the node lock")
	testenv.ExclusiveNode(t) // containerd mounts and snapshots on this host
	t.Log("node lock taken")
	// Not loopback: containerd treats a localhost registry as plain HTTP with fallback and never
	// checks its certificate (containerd v2.3.3 core/remotes/docker/config/hosts.go and
	// internal/cri/server/images/image_pull.go, docker.IsLocalhost), which would make this test
	// pass without any CA. An address of the test's own on a veth it creates, as the box's
	// registry listens on its bridge.
	ip := testAddress(t)
	r, _ := startRegistryOn(t, net.JoinHostPort(ip, "5443"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := &images.Builder{OutDir: filepath.Join(testenv.CacheDir(), "images", "controlplane"), RepoDir: testenv.RepoRoot()}
	built, err := b.BuildControlPlane(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pause []images.Result
	for _, x := range built {
		if x.Name == "pause" {
			pause = append(pause, x)
		}
	}
	if _, err := r.Push(ctx, DefaultPrefix, pause); err != nil {
		t.Fatal(err)
	}
	ref := r.ImageRepository(DefaultPrefix) + "/pause:" + images.PauseTag

	dir, err := os.MkdirTemp("", "infralab-cri-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	certs := filepath.Join(dir, "certs.d")
	scripts := filepath.Join(testenv.RepoRoot(), "cluster", "scripts")
	if err := os.Symlink(bin, filepath.Join(dir, "containerd")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", `set -euo pipefail; source "$1"; source "$2"; ensure_registry_hosts; containerd_config "$3"`,
		"test", filepath.Join(scripts, "lib.sh"), filepath.Join(scripts, "registry-hosts.sh"), ref)
	cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "PHASE=test", "NODE_NAME=test",
		"IMAGE_REGISTRY_HOST=" + r.Addr, "REGISTRY_CERTS_DIR=" + certs,
		"IMAGE_REGISTRY_CA_B64=" + base64.StdEncoding.EncodeToString(r.CA.CertPEM)}
	cfg, err := cmd.Output()
	if err != nil {
		t.Fatalf("prepare-node's containerd helpers: %v", err)
	}
	// The node's config, moved to folders of this test's own (root, state, socket), so it never
	// meets another containerd on this host.
	sock := filepath.Join(dir, "containerd.sock")
	lines := strings.SplitN(string(cfg), "\n", 3)
	own := fmt.Sprintf("root = '%s/root'\nstate = '%s/state'\n", dir, dir)
	// Config version 4 (containerd 2.3) moved the listeners into server plugins; a top-level
	// [grpc] is then ignored (seen: the daemon took /run/containerd/containerd.sock).
	listen := fmt.Sprintf("\n[grpc]\n  address = '%s'\n[ttrpc]\n  address = '%s.ttrpc'\n", sock, sock)
	if strings.TrimSpace(lines[1]) == "version = 4" {
		listen = fmt.Sprintf("\n[plugins.'io.containerd.server.v1.grpc']\n  address = '%s'\n[plugins.'io.containerd.server.v1.ttrpc']\n  address = '%s.ttrpc'\n", sock, sock)
	}
	full := lines[0] + "\n" + lines[1] + "\n" + own + lines[2] + listen
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	dump, err := exec.Command(bin, "--config", cfgPath, "config", "dump").Output()
	if err != nil || !strings.Contains(string(dump), "address = '"+sock+"'") {
		t.Fatalf("the test's containerd config does not move the socket to %s (err %v): refusing to start a daemon on the host's default socket", sock, err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	daemon := exec.Command(bin, "--config", cfgPath)
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = daemon.Process.Kill()
		_ = daemon.Wait()
		// The overlay snapshotter may leave mounts under root if killed mid-pull.
		_ = exec.Command("sh", "-c", `grep -o " `+dir+`[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`).Run()
	})

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	imgs := runtimeapi.NewImageServiceClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = imgs.ImageFsInfo(cctx, &runtimeapi.ImageFsInfoRequest{})
		ccancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		log, _ := os.ReadFile(logf.Name())
		t.Fatalf("containerd CRI not ready: %v\n%s", err, tail(log))
	}

	t.Log("containerd CRI ready")
	start := time.Now()
	pctx, pcancel := context.WithTimeout(ctx, time.Minute)
	defer pcancel()
	resp, err := imgs.PullImage(pctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		log, _ := os.ReadFile(logf.Name())
		t.Fatalf("CRI pull %s with hosts.toml and the box CA: %v\n%s", ref, err, tail(log))
	}
	t.Logf("CRI pulled %s as %s in %s", ref, resp.ImageRef, time.Since(start).Round(time.Millisecond))

	// A second registry (its own box CA, no hosts.toml for its host): the system roots do not
	// know that CA, so the same image from there must fail on the certificate. (Removing the
	// first host's hosts.toml is no test: containerd reuses its open TLS connection.)
	other, _ := startRegistryOn(t, net.JoinHostPort(ip, "5444"))
	if _, err := other.Push(ctx, DefaultPrefix, pause); err != nil {
		t.Fatal(err)
	}
	otherRef := other.ImageRepository(DefaultPrefix) + "/pause:" + images.PauseTag
	_, err = imgs.PullImage(pctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: otherRef}})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("CRI pull %s, whose host has no hosts.toml: want a certificate error, got %v", otherRef, err)
	}
	t.Logf("without the CA: %v", err)
}

// testAddress puts 10.78.0.1/32 on a veth pair of this test's own (removed at cleanup).
func testAddress(t *testing.T) string {
	t.Helper()
	const link, peer, ip = "ilregt0", "ilregt1", "10.78.0.1"
	_ = exec.Command("ip", "link", "del", link).Run() // left by a killed run
	for _, args := range [][]string{
		{"link", "add", link, "type", "veth", "peer", "name", peer},
		{"addr", "add", ip + "/32", "dev", link},
		{"link", "set", link, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", link).Run() })
	return ip
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// containerdConfig: own root, state and socket; the CRI plugin with the local pause image,
// restrict_oom_score_adj (without CAP_SYS_RESOURCE runc cannot lower a container's
// oom_score_adj and every pod fails with "can't get final child's PID from pipe"), cgroupfs,
// overlayfs and our CNI config folder.
func containerdConfig(n *Node, pauseRef string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[8]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
`, n.path("containerd", "root"), n.path("containerd", "state"), n.ContainerdSocket(),
		n.ContainerdSocket()+".ttrpc", n.path("containerd", "opt"), pauseRef, n.path("cni", "net.d"),
		n.path("containerd", "runc"))
}

// imageEntry is one line of proof/images' images.json.
type imageEntry struct {
	Name string `json:"name"`
	Ref  string `json:"ref"`
	Path string `json:"path"`
}

func readImages(index string) (map[string]imageEntry, error) {
	data, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("images index: %w (build the images: go run ./cmd/infralab-images build --out DIR)", err)
	}
	var list []imageEntry
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("images index %s: %w", index, err)
	}
	out := map[string]imageEntry{}
	for _, e := range list {
		out[e.Name] = e
	}
	for _, need := range []string{"pause", "coredns"} {
		if _, ok := out[need]; !ok {
			return nil, fmt.Errorf("images index %s has no %s image: build it with infralab-images build", index, need)
		}
	}
	return out, nil
}

func (s *starter) startContainerd(ctx context.Context) error {
	n := s.n
	imgs, err := readImages(n.opts.ImagesIndex)
	if err != nil {
		return err
	}
	s.images = imgs
	cfg := n.path("containerd", "config.toml")
	if err := os.WriteFile(cfg, []byte(containerdConfig(n, imgs["pause"].Ref)), 0o600); err != nil {
		return err
	}
	n.rec.Containerd = n.ContainerdSocket()
	if _, err := os.Stat(runContainerd); os.IsNotExist(err) {
		n.rec.RunContainerdNew = true
	}
	n.rec.ShimSocketsBefore = listDir(shimSocketDir)
	if err := n.rec.save(); err != nil {
		return err
	}
	p, err := n.launch("containerd", s.bins["containerd"], []string{"--config", cfg})
	if err != nil {
		return err
	}
	return waitFor(ctx, p, "serving its socket", func(ctx context.Context) error {
		_, err := run(ctx, s.bins["ctr"], "--address", n.ContainerdSocket(), "version")
		return err
	})
}

// importImages loads every image of the index into containerd's k8s.io namespace (the CRI's).
func (s *starter) importImages(ctx context.Context) error {
	n := s.n
	for _, name := range sortedNames(s.images) {
		e := s.images[name]
		t := time.Now()
		if _, err := run(ctx, s.bins["ctr"], "--address", n.ContainerdSocket(), "-n", "k8s.io",
			"images", "import", "--no-unpack=false", e.Path); err != nil {
			return fmt.Errorf("importing %s: %w", e.Ref, err)
		}
		n.Timings["import "+name] = time.Since(t)
		s.progress("imported %s (%.1fs)", e.Ref, time.Since(t).Seconds())
	}
	out, err := run(ctx, s.bins["ctr"], "--address", n.ContainerdSocket(), "-n", "k8s.io", "images", "ls", "-q")
	if err != nil {
		return err
	}
	for _, e := range s.images {
		if !strings.Contains(out, e.Ref) {
			return fmt.Errorf("containerd does not list %s after import; images: %s", e.Ref, out)
		}
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

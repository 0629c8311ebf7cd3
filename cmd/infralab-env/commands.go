package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/infralab/infralab/internal/proc"
	"github.com/infralab/infralab/proof/controlplane"
	"github.com/infralab/infralab/proof/node"
)

func defaultImagesIndex() string {
	home, _ := os.UserHomeDir()
	cache := os.Getenv("INFRALAB_CACHE")
	if cache == "" {
		if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
			cache = filepath.Join(x, "infralab")
		} else {
			cache = filepath.Join(home, ".cache", "infralab")
		}
	}
	return filepath.Join(cache, "images", "images.json")
}

func up(f flags) error {
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	if s, err := readState(dir); err == nil && ours(s.Supervisor, "serve", dir) {
		if s.Ready {
			fmt.Fprintf(os.Stderr, "infralab-env: control plane already running (supervisor pid %d)\n", s.Supervisor)
			printWhere(dir, s)
			return nil
		}
		return fmt.Errorf("a control plane is starting or failing in %s (supervisor pid %d): see %s, or run `infralab-env down --dir %s`",
			dir, s.Supervisor, supervisorLog(dir), f.dir)
	}
	if f.node {
		if f.images == "" {
			f.images = defaultImagesIndex()
		}
		if f.images, err = filepath.Abs(f.images); err != nil {
			return err
		}
		if _, err := os.Stat(f.images); err != nil {
			return fmt.Errorf("--node needs the local images: %v; build them with `go run ./cmd/infralab-images build --out %s`", err, filepath.Dir(f.images))
		}
		if os.Geteuid() != 0 {
			return errors.New("--node needs root (containerd, the kubelet, iptables and a bridge); run as root or without --node")
		}
	}
	// A node left behind by a supervisor that was killed is undone before the folder goes.
	if err := node.Teardown(nodeDir(dir), os.Stderr); err != nil {
		return fmt.Errorf("cleaning up the previous node in %s: %w", nodeDir(dir), err)
	}
	if err := resetDir(dir); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(supervisorLog(dir), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(exe, "serve", "--dir", dir, "--bin-dir", resolveBinDir(f.binDir),
		"--timeout", f.timeout.String(), fmt.Sprintf("--hardening=%t", f.hardening),
		fmt.Sprintf("--node=%t", f.node), "--images", f.images)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A session of its own: closing the terminal or make's process group does not stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the supervisor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	what := "etcd, kube-apiserver and kube-controller-manager"
	if f.node {
		what += ", then a node (containerd, kubelet, kube-scheduler, kube-proxy, kube-router, CoreDNS)"
	}
	fmt.Fprintf(os.Stderr, "infralab-env: starting %s (supervisor pid %d, log %s)\n", what, cmd.Process.Pid, supervisorLog(dir))
	follow := &follower{path: supervisorLog(dir), out: os.Stderr}
	deadline := time.After(f.timeout + 30*time.Second)
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			follow.flush()
			return fmt.Errorf("the control plane did not start (%v); full log: %s", err, supervisorLog(dir))
		case <-deadline:
			follow.flush()
			return fmt.Errorf("the control plane is not ready after %s; see %s, then run `infralab-env down --dir %s`", f.timeout, supervisorLog(dir), f.dir)
		case <-tick.C:
			follow.flush()
			if s, err := readState(dir); err == nil && s.Ready {
				printWhere(dir, s)
				return nil
			}
		}
	}
}

// resetDir gives `up` an empty folder, refusing to delete one that does not look like ours.
func resetDir(dir string) error {
	err := proc.FreshDir(dir)
	if !errors.Is(err, proc.ErrDirNotEmpty) {
		return err
	}
	if _, err := os.Stat(supervisorLog(dir)); err != nil {
		return fmt.Errorf("%s is not empty and was not made by infralab-env; pick another --dir", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}

func printWhere(dir string, s *state) {
	if s.Node != "" {
		fmt.Printf("node %s ready in %.1fs more: pods run (bridge %s, pods %s, cluster DNS %s); logs %s\n",
			s.Node, s.NodeStartSeconds, node.BridgeName, node.PodCIDR, node.ClusterDNS, filepath.Join(nodeDir(dir), "logs"))
	}
	fmt.Printf(`control plane ready in %.1fs: kube-apiserver %s (Kubernetes API on 127.0.0.1 only)
kubeconfig: %s
  export KUBECONFIG=%s
  kubectl get namespaces
logs: %s
stop it with: make cluster-down   (or: infralab-env down --dir %s)
`, s.StartSeconds, s.Server, s.Kubeconfig, s.Kubeconfig, filepath.Join(planeDir(dir), "logs"), dir)
}

// serve is the detached supervisor: it owns the control plane until SIGTERM or SIGINT.
func serve(f flags) error {
	dir := f.dir
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	st := &state{Supervisor: os.Getpid(), StartedAt: time.Now()}
	if err := writeState(dir, st); err != nil {
		return err
	}
	var h *controlplane.Hardening
	if f.hardening {
		var err error
		if h, err = controlplane.LabHardening(); err != nil {
			return err
		}
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{
		Dir: planeDir(dir), BinDir: f.binDir, Log: os.Stdout, Hardening: h, Timeout: f.timeout,
	})
	if err != nil {
		st.Error = err.Error()
		_ = writeState(dir, st)
		return err
	}
	defer cp.Stop()
	if err := os.WriteFile(kubeconfigPath(dir), cp.Kubeconfig(), 0o600); err != nil {
		return err
	}
	st.Components, st.Kubeconfig, st.Server, st.Etcd = cp.Pids(), kubeconfigPath(dir), cp.ServerURL(), cp.EtcdEndpoint()
	st.StartSeconds = time.Since(st.StartedAt).Seconds()
	var nd *node.Node
	if f.node {
		t := time.Now()
		nd, err = node.Start(ctx, node.Options{
			Dir: nodeDir(dir), BinDir: f.binDir, ControlPlane: node.FromControlPlane(cp),
			ImagesIndex: f.images, Log: os.Stdout, Timeout: f.timeout,
		})
		if err != nil {
			st.Error = err.Error()
			_ = writeState(dir, st)
			return err
		}
		defer nd.Stop()
		st.Node, st.NodeComponents, st.NodeStartSeconds = nd.Name(), nd.Pids(), time.Since(t).Seconds()
	}
	st.Ready = true
	if err := writeState(dir, st); err != nil {
		return err
	}
	fmt.Printf("infralab-env: ready; kubeconfig %s\n", st.Kubeconfig)

	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println("infralab-env: stopping")
			var errs []error
			if nd != nil {
				errs = append(errs, nd.Stop()) // pods and their side effects first, while the API answers
			}
			errs = append(errs, cp.Stop())
			err := errors.Join(errs...)
			_ = os.Remove(statePath(dir))
			return err
		case <-tick.C:
			err := cp.Err()
			if err == nil && nd != nil {
				err = nd.Err()
			}
			if err != nil {
				fmt.Printf("infralab-env: %v\n", err)
				if nd != nil {
					_ = nd.Stop()
				}
				_ = cp.Stop()
				st.Ready, st.Error = false, err.Error()
				_ = writeState(dir, st)
				return err
			}
		}
	}
}

func down(f flags) error {
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	s, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "infralab-env: nothing to stop in %s\n", dir)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", statePath(dir), err)
	}
	if ours(s.Supervisor, "serve", dir) {
		fmt.Fprintf(os.Stderr, "infralab-env: stopping the control plane (supervisor pid %d)\n", s.Supervisor)
		_ = syscall.Kill(s.Supervisor, syscall.SIGTERM)
		if !waitGone(s.Supervisor, 120*time.Second, "serve", dir) { // a node's teardown takes a while
			_ = syscall.Kill(s.Supervisor, syscall.SIGKILL)
		}
	}
	// The components die with their supervisor; these are leftovers of a supervisor that was
	// killed outright. Each is checked to still be the binary we started before it is signalled.
	for name, pid := range s.Components {
		if ours(pid, name, planeDir(dir)) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			waitGone(pid, 5*time.Second, name, planeDir(dir))
		}
	}
	// The supervisor tears its node down; after a crash the node's record says what to undo.
	if err := node.Teardown(nodeDir(dir), os.Stderr); err != nil {
		return fmt.Errorf("undoing the node's side effects: %w", err)
	}
	_ = os.Remove(statePath(dir))
	_ = os.Remove(kubeconfigPath(dir)) // its credentials point at a server that is gone
	fmt.Fprintf(os.Stderr, "infralab-env: stopped; logs kept in %s\n", filepath.Join(planeDir(dir), "logs"))
	return nil
}

func waitGone(pid int, within time.Duration, want ...string) bool {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if !ours(pid, want...) {
			return true
		}
	}
	return !ours(pid, want...)
}

func status(f flags) error {
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	s, err := readState(dir)
	if err != nil || !ours(s.Supervisor, "serve", dir) {
		return notRunning{dir: f.dir}
	}
	if !s.Ready {
		if s.Error != "" {
			return fmt.Errorf("control plane failed: %s", s.Error)
		}
		return fmt.Errorf("control plane is starting (supervisor pid %d); see %s", s.Supervisor, supervisorLog(dir))
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
	if err != nil {
		return fmt.Errorf("kube-apiserver %s is not ready: %v %s", s.Server, err, body)
	}
	fmt.Printf("running: kube-apiserver %s ready; components %v\nkubeconfig: %s\n", s.Server, s.Components, s.Kubeconfig)
	if s.Node != "" {
		fmt.Printf("node: %s; components %v\n", s.Node, s.NodeComponents)
	}
	return nil
}

// follower copies what a log file gained since the last flush, so `up` shows progress.
type follower struct {
	path   string
	offset int64
	out    io.Writer
}

func (f *follower) flush() {
	file, err := os.Open(f.path)
	if err != nil {
		return
	}
	defer file.Close()
	if _, err := file.Seek(f.offset, io.SeekStart); err != nil {
		return
	}
	data, _ := io.ReadAll(file)
	f.offset += int64(len(data))
	if text := strings.TrimRight(string(data), "\n"); text != "" {
		fmt.Fprintln(f.out, "  "+strings.ReplaceAll(text, "\n", "\n  "))
	}
}

// Command infralab-box brings the box up and down (docs/box.md): the lab's VMs as real machines
// on this host, each booted by cloud-init with its own user-data.
//
//	infralab-box up [--machines k8s-cp-1=10.77.0.10,...] [--user-data-dir DIR] [--ssh-public-key FILE]
//	infralab-box status
//	infralab-box exec NAME CMD...
//	infralab-box stop NAME     (hard: every process killed at once, like a power cut)
//	infralab-box down
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/infralab/infralab/proof/box"
	"github.com/infralab/infralab/proof/box/machine"
	"github.com/infralab/infralab/proof/box/rootfs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "infralab-box:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: infralab-box up|status|exec|stop|down [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	stateDir := fs.String("state-dir", box.DefaultStateDir, "state: runc, bundles, host keys, known_hosts")
	dataDir := fs.String("data-dir", box.DefaultDataDir, "machine disks (overlay upper dirs)")
	machines := fs.String("machines", "", "NAME=ADDRESS,... (default: the lab's k8s-cp-1, k8s-worker-1, k8s-worker-2 at 10.77.0.10-12)")
	count := fs.Int("count", 0, "use the first N default machines (1-3); 0 = all of --machines or the defaults")
	userDataDir := fs.String("user-data-dir", "", "folder with one user-data file per machine, named NAME (the lab's rendered #cloud-config); default: a minimal one")
	pubKey := fs.String("ssh-public-key", "", "authorized key for user infralab in the minimal user-data (default: STATE-DIR/id_ed25519.pub, generated)")
	timeout := fs.Duration("boot-timeout", 5*time.Minute, "bound on each machine's boot (systemd and cloud-init)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "up":
		ms, err := machineList(*machines, *count)
		if err != nil {
			return err
		}
		if err := userData(ms, *userDataDir, *pubKey, *stateDir); err != nil {
			return err
		}
		tree, err := rootfs.Tree(cacheDir())
		if err != nil {
			return err
		}
		start := time.Now()
		b, err := box.Up(ctx, box.Config{Machines: ms, RootFS: tree, StateDir: *stateDir, DataDir: *dataDir, BootTimeout: *timeout, Progress: os.Stdout})
		if err != nil {
			return fmt.Errorf("%w (make box-down removes what was made)", err)
		}
		fmt.Printf("box up in %.1fs; ssh -i %s -o UserKnownHostsFile=%s infralab@%s\n", time.Since(start).Seconds(),
			filepath.Join(*stateDir, "id_ed25519"), filepath.Join(b.StateDir(), "known_hosts"), ms[0].Address)
		return nil
	case "status":
		st, err := box.Status(ctx, *stateDir)
		if err != nil {
			return err
		}
		if len(st) == 0 {
			fmt.Println("box: not up")
		}
		for _, m := range st {
			fmt.Printf("%-14s %-12s %-8s %s\n", m.Name, m.Address, m.Status, m.InstanceID)
		}
		return nil
	case "exec", "stop":
		rest := fs.Args()
		st, err := box.Status(ctx, *stateDir)
		if err != nil {
			return err
		}
		if len(rest) == 0 || (args[0] == "exec" && len(rest) < 2) {
			return fmt.Errorf("usage: infralab-box %s NAME%s", args[0], map[bool]string{true: " CMD..."}[args[0] == "exec"])
		}
		for _, m := range st {
			if m.Name != rest[0] {
				continue
			}
			p := &machine.Runc{StateDir: filepath.Join(*stateDir, "machines"), RuncRoot: filepath.Join(*stateDir, "runc")}
			if args[0] == "stop" {
				return p.Stop(ctx, m.Name)
			}
			out, err := p.Exec(ctx, m.Name, os.Stdin, rest[1:]...)
			os.Stdout.Write(out)
			return err
		}
		return fmt.Errorf("no machine %q in the box (infralab-box status)", rest[0])
	case "down":
		return box.Down(ctx, *stateDir, os.Stdout)
	}
	return fmt.Errorf("unknown command %q: want up, status, exec, stop or down", args[0])
}

func machineList(spec string, count int) ([]box.MachineConfig, error) {
	ms := box.DefaultMachines()
	if spec != "" {
		ms = nil
		for _, item := range strings.Split(spec, ",") {
			name, addr, ok := strings.Cut(strings.TrimSpace(item), "=")
			a, err := netip.ParseAddr(addr)
			if !ok || err != nil {
				return nil, fmt.Errorf("--machines %q: want NAME=ADDRESS, e.g. k8s-cp-1=10.77.0.10", item)
			}
			ms = append(ms, box.MachineConfig{Name: name, Address: a})
		}
	}
	if count < 0 || count > len(ms) {
		return nil, fmt.Errorf("--count %d: want 1-%d", count, len(ms))
	}
	if count > 0 {
		ms = ms[:count]
	}
	return ms, nil
}

// userData fills each machine's user-data from dir/NAME, or the minimal one with a key.
func userData(ms []box.MachineConfig, dir, pubKeyFile, stateDir string) error {
	if dir != "" {
		var errs []error
		for i := range ms {
			data, err := os.ReadFile(filepath.Join(dir, ms[i].Name))
			if err != nil {
				errs = append(errs, fmt.Errorf("--user-data-dir: machine %s: %w", ms[i].Name, err))
			}
			ms[i].UserData = data
		}
		return errors.Join(errs...)
	}
	if pubKeyFile == "" {
		pubKeyFile = filepath.Join(stateDir, "id_ed25519.pub")
		if err := ensureKey(filepath.Join(stateDir, "id_ed25519")); err != nil {
			return err
		}
	}
	key, err := os.ReadFile(pubKeyFile)
	if err != nil {
		return fmt.Errorf("--ssh-public-key: %w", err)
	}
	for i := range ms {
		ms[i].UserData = box.MinimalUserData(ms[i].Name, "infralab", string(key))
	}
	return nil
}

// ensureKey writes an ed25519 key pair (OpenSSH format) at path and path.pub if absent.
func ensureKey(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "infralab-box")
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	return os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644)
}

func cacheDir() string {
	if d := os.Getenv("INFRALAB_CACHE"); d != "" {
		return d
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "infralab")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "infralab")
}

// Package jumphost is the box's stand-in for the Proxmox host's SSH jump login: a real OpenSSH
// server in a network namespace of its own on the box's bridge, whose only login is the lab's
// forwarding-only key (docs/infra.md, "SSH logins and keys": restrict,port-forwarding,
// command="/usr/sbin/nologin", one permitopen per VM). The cluster layer declares every command
// through the jump host (proxmox.nodes[0] + proxmox.jumpUser), so the box proves that path for
// real instead of dropping it. It is a namespace, not a fourth machine: the jump login runs
// nothing, so an sshd is all of it. Its login user exists only inside its own mount namespace
// (a bind-mounted passwd file), so this host gets no new account.
package jumphost

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config is one jump host.
type Config struct {
	// Name of its network namespace, e.g. ilbox-jump.
	Name string
	// Bridge it is plugged into (a veth port), e.g. ilbox0; it must exist.
	Bridge string
	// Address with prefix, e.g. 10.77.0.2/24.
	Address string
	// User is the jump login (proxmox.jumpUser); AuthorizedKey its public key line.
	User          string
	AuthorizedKey string
	// PermitOpen are the host:port the login may forward to (the VMs' port 22).
	PermitOpen []string
	// Dir keeps its host key, config, passwd file and pid file (mode 0711: sshd reads the
	// authorized_keys in it as the login user, so its parents must be traversable too).
	Dir string
}

// Jump is a running jump host.
type Jump struct {
	cfg     Config
	HostKey string // authorized_keys form, for proxmox.nodes[0].sshHostKey
}

func (c Config) validate() error {
	var errs []error
	if c.Name == "" || len(c.Name) > 15 {
		errs = append(errs, fmt.Errorf("jumphost: name %q must be 1-15 characters (it also names the veth)", c.Name))
	}
	if _, _, err := net.ParseCIDR(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("jumphost: address: %v", err))
	}
	if c.User == "" || strings.ContainsAny(c.User, ":/\n ") {
		errs = append(errs, fmt.Errorf("jumphost: user %q is not a login name", c.User))
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.AuthorizedKey)); err != nil {
		errs = append(errs, fmt.Errorf("jumphost: authorizedKey: %v", err))
	}
	if len(c.PermitOpen) == 0 {
		errs = append(errs, errors.New("jumphost: permitOpen is empty: the login could forward nowhere"))
	}
	for _, p := range c.PermitOpen {
		if _, _, err := net.SplitHostPort(p); err != nil || strings.ContainsAny(p, `" ,`) {
			errs = append(errs, fmt.Errorf("jumphost: permitOpen %q is not host:port", p))
		}
	}
	if c.Dir == "" || c.Bridge == "" {
		errs = append(errs, errors.New("jumphost: dir and bridge are required"))
	}
	return errors.Join(errs...)
}

// AuthorizedKeysLine is the jump login's line, as docs/infra.md gives it.
func (c Config) AuthorizedKeysLine() string {
	opts := []string{"restrict", "port-forwarding", `command="/usr/sbin/nologin"`}
	for _, p := range c.PermitOpen {
		opts = append(opts, `permitopen="`+p+`"`)
	}
	return strings.Join(opts, ",") + " " + strings.TrimSpace(c.AuthorizedKey)
}

// Start creates the namespace, plugs it into the bridge and starts sshd, detached (it outlives
// this process; Stop ends it by its pid file). A jump host already running is stopped first.
func Start(c Config) (*Jump, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	_ = Stop(c)
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	sp, _ := ssh.NewPublicKey(pub)
	addr, _, _ := strings.Cut(c.Address, "/")
	// This host's accounts (sshd's privilege separation user among them) plus the jump login.
	hostPasswd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		"host_ed25519":    string(pem.EncodeToMemory(block)),
		"authorized_keys": c.AuthorizedKeysLine() + "\n",
		// "*" (not "x"): no shadow entry is read, and the account is not locked for key logins.
		"passwd": strings.TrimRight(string(hostPasswd), "\n") + "\n" + c.User + ":*:64000:64000::/nonexistent:/usr/sbin/nologin\n",
		"sshd_config": strings.Join([]string{
			"ListenAddress " + addr + ":22",
			"HostKey " + filepath.Join(c.Dir, "host_ed25519"),
			"AuthorizedKeysFile " + filepath.Join(c.Dir, "authorized_keys"),
			"AllowUsers " + c.User,
			"PermitRootLogin no",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"UsePAM no",
			"StrictModes no",
			"AllowTcpForwarding yes",
			"X11Forwarding no",
			"PermitTunnel no",
			"PidFile " + filepath.Join(c.Dir, "sshd.pid"),
			"LogLevel INFO",
		}, "\n") + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(c.Dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	// sshd reads authorized_keys as the login user: the directory must let it through and the
	// file be readable (it holds a public key only; the host key stays 0600).
	for name, mode := range map[string]os.FileMode{"passwd": 0o644, "authorized_keys": 0o644, ".": 0o711} {
		if err := os.Chmod(filepath.Join(c.Dir, name), mode); err != nil {
			return nil, err
		}
	}
	hostIf := "v-" + c.Name
	if len(hostIf) > 15 {
		hostIf = hostIf[:15]
	}
	for _, args := range [][]string{
		{"netns", "add", c.Name},
		{"link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", c.Name},
		{"link", "set", hostIf, "master", c.Bridge},
		{"link", "set", hostIf, "up"},
		{"-n", c.Name, "addr", "add", c.Address, "dev", "eth0"},
		{"-n", c.Name, "link", "set", "lo", "up"},
		{"-n", c.Name, "link", "set", "eth0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			_ = Stop(c)
			return nil, fmt.Errorf("jumphost: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation directory
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(c.Dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	// The passwd file is bound over /etc/passwd in a mount namespace of sshd's own.
	cmd := exec.Command("ip", "netns", "exec", c.Name, "unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /etc/passwd && exec /usr/sbin/sshd -D -e -f "$2"`, "sh",
		filepath.Join(c.Dir, "passwd"), filepath.Join(c.Dir, "sshd_config"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		_ = Stop(c)
		return nil, err
	}
	_ = cmd.Process.Release()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr+":22", 500*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			_ = Stop(c)
			raw, _ := os.ReadFile(filepath.Join(c.Dir, "sshd.log"))
			return nil, fmt.Errorf("jumphost: sshd never listened on %s:22: %v\n%s", addr, err, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &Jump{cfg: c, HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))}, nil
}

// Stop ends sshd (by its pid file) and removes the namespace and its veth. Safe to repeat.
func Stop(c Config) error {
	var errs []error
	pidFile := filepath.Join(c.Dir, "sshd.pid")
	if raw, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && pid > 1 {
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("jumphost: stop sshd %d: %w", pid, err))
			}
			// The namespace (and its veth) goes when its last process has.
			for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(50 * time.Millisecond)
			}
		}
		_ = os.Remove(pidFile)
	}
	if out, err := exec.Command("ip", "netns", "del", c.Name).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "No such file") {
		errs = append(errs, fmt.Errorf("jumphost: ip netns del %s: %v: %s", c.Name, err, out))
	}
	return errors.Join(errs...)
}

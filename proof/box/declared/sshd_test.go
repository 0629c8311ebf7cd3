package declared

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/infralab/infralab/internal/testenv"
)

// sshLab is a real OpenSSH jump host and a real OpenSSH node, each in a network namespace this
// test creates, wired as the lab's VMs sit behind the Proxmox host:
//
//	this host: ilxh<id> 10.213.<n>.1/30
//	 │ veth
//	jump ns:  eth0 10.213.<n>.2/30, eth1 10.214.<n>.1/30   sshd; the jump login may only forward
//	 │ veth                                                 to the node's port 22 (docs/infra.md)
//	node ns:  eth0 10.214.<n>.2/30, default via 10.214.<n>.1   sshd; root logs in with the key
//
// This host has no route to 10.214.<n>.0/30, and the node's sshd lets root in only from the jump's
// address: a command reaches the node only through the jump.
type sshLab struct {
	t                 *testing.T
	ip                string
	dir               string
	jumpNS, nodeNS    string
	hostIf            string
	JumpAddr          string
	NodeAddr          string
	JumpHostKey       string
	NodeHostKey       string
	ClientKey         string // PEM, the node's root login and the jump login
	clientPub         string
	jumpUser          string
	nodeRestrictedOpt string
}

var labSeq atomic.Int32

func newSSHLab(t *testing.T) *sshLab {
	t.Helper()
	testenv.RequireRoot(t)
	sshd := testenv.Tool(t, "sshd")
	l := &sshLab{t: t, ip: testenv.Tool(t, "ip"), dir: t.TempDir(), jumpUser: "root"}
	seq := labSeq.Add(1)
	n := 20 + (os.Getpid()*7+int(seq))%200
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, seq)
	l.jumpNS, l.nodeNS, l.hostIf = "ilx-jump-"+id, "ilx-node-"+id, fmt.Sprintf("ilxh%d", n)
	l.JumpAddr, l.NodeAddr = fmt.Sprintf("10.213.%d.2", n), fmt.Sprintf("10.214.%d.2", n)
	for _, ns := range []string{l.jumpNS, l.nodeNS} {
		l.run("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command(l.ip, "netns", "del", ns).Run() })
	}
	t.Cleanup(func() { _ = exec.Command(l.ip, "link", "del", l.hostIf).Run() })
	j, nd := l.jumpNS, l.nodeNS
	for _, args := range [][]string{
		{"link", "add", l.hostIf, "type", "veth", "peer", "name", "eth0", "netns", j},
		{"-n", j, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", nd},
		{"addr", "add", fmt.Sprintf("10.213.%d.1/30", n), "dev", l.hostIf},
		{"-n", j, "addr", "add", l.JumpAddr + "/30", "dev", "eth0"},
		{"-n", j, "addr", "add", fmt.Sprintf("10.214.%d.1/30", n), "dev", "eth1"},
		{"-n", nd, "addr", "add", l.NodeAddr + "/30", "dev", "eth0"},
		{"link", "set", l.hostIf, "up"},
		{"-n", j, "link", "set", "lo", "up"}, {"-n", j, "link", "set", "eth0", "up"}, {"-n", j, "link", "set", "eth1", "up"},
		{"-n", nd, "link", "set", "lo", "up"}, {"-n", nd, "link", "set", "eth0", "up"},
		{"-n", nd, "route", "add", "default", "via", fmt.Sprintf("10.214.%d.1", n)},
	} {
		l.run(args...)
	}

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	l.ClientKey = string(pem.EncodeToMemory(block))
	l.clientPub = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))

	// The jump login exactly as docs/infra.md writes it: forwarding to the node's port 22 only.
	l.JumpHostKey = l.startSSHD(sshd, "jump", j, l.JumpAddr,
		`restrict,port-forwarding,command="/usr/sbin/nologin",permitopen="`+l.NodeAddr+`:22" `+l.clientPub)
	// The node accepts root only from the jump host's address, so a command that ran there came
	// through the jump.
	l.NodeHostKey = l.startSSHD(sshd, "node", nd, l.NodeAddr, l.clientPub, fmt.Sprintf("AllowUsers root@10.214.%d.1", n))
	return l
}

func (l *sshLab) run(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(l.ip, args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// startSSHD runs sshd in the namespace with a fresh host key and returns that key's public half.
func (l *sshLab) startSSHD(sshd, name, ns, addr, authorized string, extra ...string) string {
	t := l.t
	t.Helper()
	dir := filepath.Join(l.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	hostKey := filepath.Join(dir, "host_ed25519")
	must(t, os.WriteFile(hostKey, pem.EncodeToMemory(block), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(authorized+"\n"), 0o600))
	// Privilege separation needs this directory (Debian's sshd refuses to start without it).
	must(t, os.MkdirAll("/run/sshd", 0o755))
	cfg := filepath.Join(dir, "sshd_config")
	must(t, os.WriteFile(cfg, []byte(strings.Join(append([]string{
		"ListenAddress " + addr + ":22",
		"HostKey " + hostKey,
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PidFile none",
		"AcceptEnv DECLARED_*",
		"LogLevel ERROR",
	}, extra...), "\n")+"\n"), 0o600))
	cmd := exec.Command(l.ip, "netns", "exec", ns, sshd, "-D", "-e", "-f", cfg)
	cmd.Stderr = &prefixWriter{t: t, prefix: "sshd " + name + ": "}
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sp, _ := ssh.NewPublicKey(pub)
	// Wait until it listens (from inside its namespace nothing else can answer on that address).
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := exec.Command(l.ip, "netns", "exec", ns, "bash", "-c", "exec 3<>/dev/tcp/"+addr+"/22").Run()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd %s never listened on %s:22", name, addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// connection is the declared connection of a command on the node through the jump host.
func (l *sshLab) connection() Connection {
	return Connection{Host: l.NodeAddr, Port: 22, User: "root", PrivateKey: Secret{l.ClientKey}, DialErrorLimit: 2, PerDialTimeout: 5,
		Proxy: &Connection{Host: l.JumpAddr, Port: 22, User: l.jumpUser, PrivateKey: Secret{l.ClientKey}, HostKey: l.JumpHostKey, DialErrorLimit: 2, PerDialTimeout: 5}}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type prefixWriter struct {
	t      *testing.T
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + line)
	}
	return len(p), nil
}

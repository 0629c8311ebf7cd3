package jumphost

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/infralab/infralab/internal/testenv"
)

// The jump host lets its login forward to the permitted address and nothing else: no shell, no
// other port. The bridge and the namespace are this test's own.
func TestJumpHostOnlyForwardsToThePermittedAddress(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Tool(t, "sshd")
	testenv.Tool(t, "ip")
	n := 20 + os.Getpid()%200
	bridge := fmt.Sprintf("ilxbr%d", n)
	hostAddr := fmt.Sprintf("10.215.%d.1", n)
	for _, args := range [][]string{{"link", "add", bridge, "type", "bridge"}, {"addr", "add", hostAddr + "/24", "dev", bridge}, {"link", "set", bridge, "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	ln, err := net.Listen("tcp", hostAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("SSH-2.0-stand-in\r\n"))
			c.Close()
		}
	}()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sp, _ := ssh.NewPublicKey(pub)
	signer, _ := ssh.NewSignerFromKey(priv)
	cfg := Config{Name: fmt.Sprintf("ilx-jh-%d", n), Bridge: bridge, Address: fmt.Sprintf("10.215.%d.2/24", n), User: "infralab-jump",
		AuthorizedKey: string(ssh.MarshalAuthorizedKey(sp)), PermitOpen: []string{ln.Addr().String()}}
	// Not t.TempDir: its parent is 0700, and sshd reads authorized_keys as the jump login.
	dir, err := os.MkdirTemp("", "jumphost-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	cfg.Dir = dir + "/jump"
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	j, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Stop(cfg) })
	hk, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(j.HostKey))
	client, err := ssh.Dial("tcp", fmt.Sprintf("10.215.%d.2:22", n), &ssh.ClientConfig{
		User: "infralab-jump", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(hk)})
	if err != nil {
		raw, _ := os.ReadFile(cfg.Dir + "/sshd.log")
		t.Fatalf("dial the jump host: %v\n%s", err, raw)
	}
	defer client.Close()
	conn, err := client.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("forwarding to the permitted address: %v", err)
	}
	greeting, _ := io.ReadAll(conn)
	conn.Close()
	if !strings.HasPrefix(string(greeting), "SSH-2.0-stand-in") {
		t.Fatalf("forwarded connection read %q", greeting)
	}
	if c, err := client.Dial("tcp", hostAddr+":1"); err == nil {
		c.Close()
		t.Errorf("forwarded to a port permitopen does not list")
	}
	if s, err := client.NewSession(); err == nil {
		out, err := s.CombinedOutput("echo ran-on-the-jump-host")
		if err == nil || strings.Contains(string(out), "ran-on-the-jump-host") {
			t.Errorf("the jump login ran a command: %q, %v", out, err)
		}
	}
	client.Close()
	if err := Stop(cfg); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), cfg.Name) {
		t.Errorf("namespace %s left behind", cfg.Name)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	_, err := Start(Config{Name: "a-name-that-is-far-too-long", Address: "10.0.0.2", User: "x y", PermitOpen: []string{"nowhere"}})
	for _, want := range []string{"name", "address", "user", "authorizedKey", "permitOpen \"nowhere\"", "dir and bridge"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

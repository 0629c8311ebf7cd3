package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/infralab/infralab/internal/testenv"
)

// TestImagesRunReadOnlyAsNonRoot starts the postgres and healthcare-api images the way the
// node's runtime will (image root read-only, as their own non-root users, only volumes
// writable), with chroot in a private mount namespace instead of containerd, which this test
// must not start. The api then stores a patient in that Postgres over loopback: proof that the
// images hold every file, library and Python module they need.
func TestImagesRunReadOnlyAsNonRoot(t *testing.T) {
	testenv.RequireRoot(t) // mount namespaces and chroot
	for _, tool := range []string{"unshare", "chroot", "mount"} {
		testenv.Tool(t, tool)
	}
	requirePackages(t, "postgresql-15", "busybox-static")
	requirePackages(t, pythonRoots...)

	tmp := t.TempDir()
	secret := filepath.Join(tmp, "password")
	if err := os.WriteFile(secret, []byte("images-test-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pgRoot := extract(t, build(t, "postgres"), filepath.Join(tmp, "pg"))
	apiRoot := extract(t, build(t, "healthcare-api"), filepath.Join(tmp, "api"))
	pgPort, apiPort := freePort(t), freePort(t)

	pg := startReadOnly(t, pgRoot, "10999:10999", "/var/lib/postgresql/data:10999:10999 /var/run/postgresql:10999:10999 /tmp:10999:10999",
		[]string{"PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin", "PGDATA=/var/lib/postgresql/data/pgdata",
			"POSTGRES_USER=healthcare", "POSTGRES_DB=healthcare", "POSTGRES_PASSWORD_FILE=/run/secrets/password"},
		"/usr/local/bin/postgres-entrypoint", "-c", "listen_addresses=127.0.0.1", "-p", fmt.Sprint(pgPort))
	api := startReadOnly(t, apiRoot, "10001:10001", "",
		[]string{"PATH=/usr/bin", "PYTHONPATH=/app", "PYTHONDONTWRITEBYTECODE=1", "DB_HOST=127.0.0.1",
			fmt.Sprintf("DB_PORT=%d", pgPort), "DB_NAME=healthcare", "DB_USER=healthcare",
			"DB_PASSWORD_FILE=/run/secrets/password", "DB_POOL_SIZE=2", "LISTEN_HOST=127.0.0.1",
			fmt.Sprintf("PORT=%d", apiPort)},
		"/usr/bin/python3", "-m", "healthcare_api")

	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	waitHTTP(t, base+"/readyz", 60*time.Second, pg, api)
	resp, err := http.Post(base+"/patients", "application/json",
		strings.NewReader(`{"name":"Read Only","birth_date":"1970-01-01"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"name":"Read Only"`) {
		t.Fatalf("POST /patients: %d %s\n%s", resp.StatusCode, body, api.out)
	}
	for _, p := range []*proc{pg, api} {
		if uid := procUID(t, p.cmd.Process.Pid); uid != p.uid {
			t.Errorf("%s runs as uid %s, want %s", p.cmd.Args[len(p.cmd.Args)-1], uid, p.uid)
		}
	}
}

type proc struct {
	cmd *exec.Cmd
	out *strings.Builder
	uid string
}

func startReadOnly(t *testing.T, root, userspec, tmpfs string, env []string, argv ...string) *proc {
	t.Helper()
	script, err := filepath.Abs("testdata/run-readonly.sh")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-m", "--propagation", "private", "sh", script}, env...)
	args = append(args, "/usr/sbin/chroot", "--userspec="+userspec, root)
	args = append(args, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "ROOT=" + root, "TMPFS=" + tmpfs,
		"SECRET_SRC=" + filepath.Join(filepath.Dir(root), "password")}
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// unshare, sh, env and chroot all exec: the pid is the server's, so SIGINT stops it
	// (PostgreSQL's fast shutdown) and the mount namespace goes with it.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return &proc{cmd: cmd, out: out, uid: strings.SplitN(userspec, ":", 2)[0]}
}

func waitHTTP(t *testing.T, url string, timeout time.Duration, procs ...*proc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	var logs strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&logs, "--- %s\n%s\n", strings.Join(p.cmd.Args, " "), p.out)
	}
	t.Fatalf("%s not 200 within %s\n%s", url, timeout, logs.String())
}

func procUID(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "Uid:") {
			return strings.Fields(line)[1]
		}
	}
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// extract unpacks an image's flattened filesystem, keeping owners and modes.
func extract(t *testing.T, r Result, dest string) string {
	t.Helper()
	tag, err := name.NewTag(r.Ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(r.Path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dest, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		default:
			t.Fatalf("%s: unexpected tar type %c", h.Name, h.Typeflag)
		}
		if err == nil {
			err = os.Lchown(p, h.Uid, h.Gid)
		}
		if err == nil && h.Typeflag != tar.TypeSymlink {
			err = os.Chmod(p, os.FileMode(h.Mode).Perm()|modeBits(h.Mode))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dest
}

func modeBits(m int64) os.FileMode {
	if m&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}

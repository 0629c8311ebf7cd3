package images

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/infralab/infralab/internal/testenv"
)

var (
	outDir   string
	builtMu  sync.Mutex
	builtRes = map[string]Result{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "infralab-images-test-")
	if err != nil {
		panic(err)
	}
	outDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requirePackages skips (or, with INFRALAB_REQUIRE_TOOLS=1, fails) when a Debian package the
// image is made from is not installed.
func requirePackages(t *testing.T, pkgs ...string) {
	t.Helper()
	for _, p := range pkgs {
		if _, err := dpkgVersion(context.Background(), p); err != nil {
			if testenv.Required() {
				t.Fatal(err)
			}
			t.Skip(err)
		}
	}
}

// build builds one image once per test binary; tests share the result.
func build(t *testing.T, imageName string) Result {
	t.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if r, ok := builtRes[imageName]; ok {
		return r
	}
	b := &Builder{OutDir: outDir, RepoDir: testenv.RepoRoot()}
	rs, err := b.Build(context.Background(), []string{imageName})
	if err != nil {
		t.Fatal(err)
	}
	builtRes[imageName] = rs[0]
	return rs[0]
}

// imageFS is an image's flattened root filesystem, read back from the docker-archive tar with
// go-containerregistry, the way a loader sees it.
type imageFS struct {
	cfg   *v1.ConfigFile
	hdrs  map[string]*tar.Header
	files map[string][]byte // contents of files under 8 MiB
}

func load(t *testing.T, r Result) *imageFS {
	t.Helper()
	tag, err := name.NewTag(r.Ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(r.Path, &tag)
	if err != nil {
		t.Fatalf("%s does not load as a docker archive tagged %s: %v", r.Path, r.Ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	fsys := &imageFS{cfg: cfg, hdrs: map[string]*tar.Header{}, files: map[string][]byte{}}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		fsys.hdrs[p] = h
		if h.Typeflag == tar.TypeReg && h.Size < 8<<20 {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			fsys.files[p] = data
		}
	}
	return fsys
}

// resolve follows symlinks inside the image, as the kernel and ld.so will in the container.
func (f *imageFS) resolve(p string) (string, bool) {
	for hops := 0; hops < 40; hops++ {
		parts := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
		cur, redirected := "/", false
		for i, part := range parts {
			next := path.Join(cur, part)
			h, ok := f.hdrs[next]
			if !ok {
				return "", false
			}
			if h.Typeflag == tar.TypeSymlink {
				target := h.Linkname
				if !path.IsAbs(target) {
					target = path.Join(cur, target)
				}
				p = path.Join(append([]string{target}, parts[i+1:]...)...)
				redirected = true
				break
			}
			cur = next
		}
		if !redirected {
			return cur, true
		}
	}
	return "", false
}

func TestPauseImage(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go toolchain not on PATH: needed to build cmd/pause")
	}
	r := build(t, "pause")
	f := load(t, r)
	c := f.cfg.Config
	if c.User != "65535:65535" || strings.Join(c.Entrypoint, " ") != "/pause" {
		t.Fatalf("pause config: user %q entrypoint %q, want 65535:65535 and /pause", c.User, c.Entrypoint)
	}
	if f.cfg.OS != "linux" || f.cfg.Architecture == "" {
		t.Fatalf("platform %s/%s: containerd needs both", f.cfg.OS, f.cfg.Architecture)
	}
	h, ok := f.hdrs["/pause"]
	if !ok || h.Mode&0o111 == 0 {
		t.Fatalf("/pause missing or not executable: %+v", h)
	}
	if r.Size > 2<<20 {
		t.Errorf("pause image is %d bytes; a static pause should stay under 2 MiB", r.Size)
	}

	// Static: the container has no ld.so, so /pause must need none.
	bin := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(bin, f.files["/pause"], 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("/pause is not an ELF file: %v", err)
	}
	defer e.Close()
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("/pause is dynamically linked")
		}
	}
}

func TestSecondBuildIsCached(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go toolchain not on PATH: needed to build cmd/pause")
	}
	first := build(t, "pause")
	b := &Builder{OutDir: outDir, RepoDir: testenv.RepoRoot()}
	rs, err := b.Build(context.Background(), []string{"pause"})
	if err != nil {
		t.Fatal(err)
	}
	if !rs[0].Cached || rs[0].ImageID != first.ImageID || rs[0].Path != first.Path {
		t.Fatalf("second build %+v, want the cached %s", rs[0], first.ImageID)
	}
	index, err := os.ReadFile(filepath.Join(outDir, "images.json"))
	if err != nil || !strings.Contains(string(index), first.Ref) {
		t.Fatalf("images.json lacks %s: %v\n%s", first.Ref, err, index)
	}
}

func TestPostgresImage(t *testing.T) {
	requirePackages(t, "postgresql-15", "busybox-static")
	r := build(t, "postgres")
	if !strings.HasPrefix(r.Ref, Registry+"/postgres:15.") {
		t.Fatalf("ref %s: want %s/postgres:15.<minor>-deb...", r.Ref, Registry)
	}
	f := load(t, r)
	c := f.cfg.Config
	if c.User != "10999:10999" {
		t.Errorf("user %q, want 10999:10999 (non-root, numeric for runAsNonRoot, at least 10000)", c.User)
	}
	if strings.Join(c.Entrypoint, " ") != "/usr/local/bin/postgres-entrypoint" {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if !strings.Contains(string(f.files["/etc/passwd"]), "postgres:x:10999:10999:") {
		t.Errorf("/etc/passwd lacks the postgres user (initdb looks it up):\n%s", f.files["/etc/passwd"])
	}
	for _, p := range []string{"/usr/lib/postgresql/15/bin/postgres", "/usr/lib/postgresql/15/bin/initdb",
		"/usr/lib/postgresql/15/bin/pg_isready", "/usr/share/postgresql/15/postgres.bki", "/bin/sh",
		"/usr/lib/postgresql/15/lib/plpgsql.so", "/usr/share/zoneinfo/Etc/UTC"} {
		if _, ok := f.resolve(p); !ok {
			t.Errorf("%s missing from the image", p)
		}
	}
	if h := f.hdrs["/var/lib/postgresql/data"]; h == nil || h.Uid != 10999 || h.Gid != 10999 {
		t.Errorf("/var/lib/postgresql/data must exist owned by 10999:10999: %+v", h)
	}
	checkELFDependencies(t, f)
}

// checkELFDependencies runs ldd on every ELF file of the image (the same path exists on this
// machine) and requires every library it lists, and the program interpreter, to resolve inside
// the image.
func checkELFDependencies(t *testing.T, f *imageFS) {
	t.Helper()
	n := 0
	for p, h := range f.hdrs {
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Mode&0o6000 != 0 {
			t.Errorf("%s keeps a setuid/setgid bit", p)
		}
		ok, err := isELF(p)
		if err != nil || !ok {
			continue
		}
		n++
		deps, err := lddDeps(context.Background(), p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, d := range deps {
			if _, ok := f.resolve(d); !ok {
				t.Errorf("%s needs %s, which is not in the image", p, d)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d ELF files found in the image: the check saw nothing", n)
	}
	t.Logf("%d ELF files: every ldd dependency is in the image", n)
}

func TestHealthcareAPIImage(t *testing.T) {
	requirePackages(t, pythonRoots...)
	r := build(t, "healthcare-api")
	f := load(t, r)
	c := f.cfg.Config
	if c.User != "10001:10001" || strings.Join(c.Entrypoint, " ") != "/usr/bin/python3 -m healthcare_api" {
		t.Fatalf("config: user %q entrypoint %q", c.User, c.Entrypoint)
	}
	if !contains(c.Env, "PYTHONDONTWRITEBYTECODE=1") {
		t.Errorf("env %q: a read-only root needs PYTHONDONTWRITEBYTECODE=1", c.Env)
	}
	for _, p := range []string{"/app/healthcare_api/app.py", "/usr/lib/python3/dist-packages/fastapi/__init__.py",
		"/usr/lib/python3/dist-packages/asyncpg/__init__.py", "/usr/bin/python3"} {
		if _, ok := f.resolve(p); !ok {
			t.Errorf("%s missing from the image", p)
		}
	}
	checkELFDependencies(t, f)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

package images

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

//go:embed scripts/postgres-entrypoint.sh
var postgresEntrypoint []byte

// spec says where an image's files come from and how it runs.
type spec struct {
	name        string
	description string
	// group "calico" marks an image built only when named (calico.go); "" is the node's default set.
	group string
	user  account
	// tagPackage is the Debian package whose version makes the tag; when empty the tag is
	// version, fixed in code, so a stack config can name our own images before they are built.
	tagPackage string
	version    string
	// versionOf, when set, finds version at build time (a binary's own version output).
	versionOf func(ctx context.Context, b *Builder) (string, error)
	collect   func(ctx context.Context, b *Builder, f *fileSet) (packages []string, err error)
	config    v1.Config
}

// PostgresID is the uid and gid of the postgres image's user, which owns its data and socket
// directories. The apps layer's pods run PostgreSQL with the same ids (apps.DefaultPostgresID; an
// apps test compares them), and they are 10000 or more, as the policy pack's pod-high-uid-gid
// requires (Debian's postgresql package would pick a system id below 1000).
const PostgresID = 10999

var (
	pauseUser    = account{name: "pause", uid: 65535, gid: 65535, home: "/"}
	postgresUser = account{name: "postgres", uid: PostgresID, gid: PostgresID, home: "/var/lib/postgresql"}
	nobodyUser   = account{name: "nobody", uid: 65534, gid: 65534, home: "/nonexistent"}
	apiUser      = account{name: "app", uid: 10001, gid: 10001, home: "/app"}
)

func ports(ps ...string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, p := range ps {
		m[p] = struct{}{}
	}
	return m
}

// specs are the images every node imports (make demo, the node tests). The CloudNativePG images
// are built only when named (CNPGNames): their binary comes from `hack/tools.sh cnpg`, which
// `make demo` does not build because the local stack does not run the operator yet.
func specs() []spec { return baseSpecs() }

// namedSpecs are every image a caller may name.
func namedSpecs() []spec { return append(append(specs(), cnpgSpecs()...), calicoSpecs()...) }

// CNPGNames lists the CloudNativePG images, built only when named.
func CNPGNames() []string {
	var out []string
	for _, s := range cnpgSpecs() {
		out = append(out, s.name)
	}
	return out
}

func baseSpecs() []spec {
	return []spec{
		{
			name: "pause", description: "pod sandbox: our cmd/pause, static", user: pauseUser,
			version: PauseVersion,
			collect: collectPause,
			config:  v1.Config{Entrypoint: []string{"/pause"}},
		},
		{
			name: "postgres", description: "PostgreSQL 15 from Debian's postgresql-15", user: postgresUser,
			tagPackage: "postgresql-15",
			collect:    collectPostgres,
			config: v1.Config{
				Entrypoint: []string{"/usr/local/bin/postgres-entrypoint"},
				Env: []string{
					"PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin",
					"PGDATA=/var/lib/postgresql/data/pgdata",
				},
				ExposedPorts: ports("5432/tcp"),
				StopSignal:   "SIGINT", // PostgreSQL's "fast" shutdown
			},
		},
		{
			name: "postgres-exporter", description: "postgres_exporter from Debian's prometheus-postgres-exporter",
			user: nobodyUser, tagPackage: "prometheus-postgres-exporter",
			collect: collectExporter,
			config: v1.Config{
				Entrypoint:   []string{"/usr/bin/prometheus-postgres-exporter"},
				ExposedPorts: ports("9187/tcp"),
			},
		},
		{
			name: "prometheus", description: "Prometheus from Debian's prometheus", user: nobodyUser,
			tagPackage: "prometheus",
			collect:    collectPrometheus,
			config: v1.Config{
				Entrypoint: []string{"/usr/bin/prometheus"},
				Cmd: []string{
					"--config.file=/etc/prometheus/prometheus.yml",
					"--storage.tsdb.path=/prometheus",
					"--web.console.libraries=/etc/prometheus/console_libraries",
					"--web.console.templates=/etc/prometheus/consoles",
				},
				ExposedPorts: ports("9090/tcp"),
			},
		},
		{
			name: "coredns", description: "CoreDNS built by `make tools` (hack/tools.sh node), static",
			user: nobodyUser, versionOf: corednsVersion,
			collect: collectCoreDNS,
			config: v1.Config{
				Entrypoint:   []string{"/coredns"},
				Cmd:          []string{"-conf", "/etc/coredns/Corefile"},
				ExposedPorts: ports("53/udp", "53/tcp", "9153/tcp"),
			},
		},
		{
			name: "node-exporter", description: "node_exporter from Debian's prometheus-node-exporter",
			user: nobodyUser, tagPackage: "prometheus-node-exporter",
			collect: collectNodeExporter,
			config: v1.Config{
				Entrypoint:   []string{"/usr/bin/prometheus-node-exporter"},
				ExposedPorts: ports("9100/tcp"),
			},
		},
		{
			name: "kube-state-metrics", description: "kube-state-metrics built by `make tools` (hack/tools.sh node), static",
			user: nobodyUser, versionOf: kubeStateMetricsVersion,
			collect: collectKubeStateMetrics,
			config: v1.Config{
				Entrypoint:   []string{"/kube-state-metrics"},
				ExposedPorts: ports("8080/tcp", "8081/tcp"),
			},
		},
		{
			name: "alertmanager", description: "Alertmanager from Debian's prometheus-alertmanager", user: nobodyUser,
			tagPackage: "prometheus-alertmanager",
			collect:    collectAlertmanager,
			config: v1.Config{
				Entrypoint: []string{"/usr/bin/prometheus-alertmanager"},
				Cmd: []string{
					"--config.file=/etc/alertmanager/alertmanager.yml",
					"--storage.path=/alertmanager",
					"--cluster.listen-address=",
				},
				ExposedPorts: ports("9093/tcp"),
			},
		},
		{
			name: "healthcare-api", description: "our healthcare-api on Debian's python3 and FastAPI",
			user: apiUser, version: HealthcareAPIVersion,
			collect: collectHealthcareAPI,
			config: v1.Config{
				Entrypoint: []string{"/usr/bin/python3", "-m", "healthcare_api"},
				Env: []string{
					"PATH=/usr/bin",
					"PYTHONPATH=/app",
					// Read-only root: never try to write bytecode (it ships precompiled).
					"PYTHONDONTWRITEBYTECODE=1",
					"PYTHONUNBUFFERED=1",
				},
				WorkingDir:   "/app",
				ExposedPorts: ports("8080/tcp"),
			},
		},
	}
}

// Fixed tags of the images made from our own code; bump them when that code changes so a
// running node picks the new image up.
const (
	PauseVersion         = "1.0"
	HealthcareAPIVersion = "1.0.0"
)

// Names lists the images this package builds, in build order.
func Names() []string {
	var out []string
	for _, s := range specs() {
		out = append(out, s.name)
	}
	return out
}

func collectPause(ctx context.Context, b *Builder, f *fileSet) ([]string, error) {
	tmp, err := os.MkdirTemp("", "infralab-pause-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "pause")
	cmd := exec.CommandContext(ctx, b.goBin(), "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", bin, "./cmd/pause")
	cmd.Dir = b.RepoDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/pause in %s: %v: %s", b.RepoDir, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	if err := addBase(f, pauseUser, false); err != nil {
		return nil, err
	}
	f.addData("/pause", 0o755, 0, 0, data)
	return nil, nil
}

func collectPostgres(ctx context.Context, _ *Builder, f *fileSet) ([]string, error) {
	const pg = "/usr/lib/postgresql/15"
	if err := addBase(f, postgresUser, true); err != nil {
		return nil, err
	}
	for _, bin := range []string{"postgres", "initdb", "pg_ctl", "pg_isready", "psql", "pg_dump",
		"pg_dumpall", "pg_restore", "pg_basebackup", "createdb"} {
		if err := f.addHost(filepath.Join(pg, "bin", bin)); err != nil {
			return nil, err
		}
	}
	// JIT (llvmjit pulls in libLLVM, ~100 MB) and SELinux support are left out; PostgreSQL
	// disables JIT by itself when its provider is absent.
	skipLib := func(p string) bool {
		base := filepath.Base(p)
		return hasAnyPrefix(p, pg+"/lib/bitcode", pg+"/lib/pgxs") ||
			strings.HasPrefix(base, "llvmjit") || base == "sepgsql.so"
	}
	if err := f.addTree(pg+"/lib", skipLib); err != nil {
		return nil, err
	}
	if err := f.addTree("/usr/share/postgresql/15", func(p string) bool {
		return hasAnyPrefix(p, "/usr/share/postgresql/15/man")
	}); err != nil {
		return nil, err
	}
	if err := f.addTree("/usr/share/zoneinfo", func(p string) bool {
		return hasAnyPrefix(p, "/usr/share/zoneinfo/right", "/usr/share/zoneinfo/posix")
	}); err != nil {
		return nil, err
	}
	// busybox provides /bin/sh for the entrypoint and for initdb's popen().
	if err := f.addHost("/bin/busybox"); err != nil {
		return nil, fmt.Errorf("busybox: %w; run: apt-get install -y busybox-static", err)
	}
	for _, applet := range []string{"sh", "cat", "rm", "mv", "ls", "id", "env", "mkdir"} {
		f.addLink("/usr/bin/"+applet, "busybox")
	}
	f.addData("/usr/local/bin/postgres-entrypoint", 0o755, 0, 0, postgresEntrypoint)
	u := postgresUser
	f.addDir("/var/lib/postgresql", 0o755, u.uid, u.gid)
	f.addDir("/var/lib/postgresql/data", 0o700, u.uid, u.gid)
	f.addDir("/var/run/postgresql", 0o775, u.uid, u.gid)
	return []string{"postgresql-15", "postgresql-client-15", "busybox-static", "tzdata"}, nil
}

func collectExporter(_ context.Context, _ *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, nobodyUser, true); err != nil {
		return nil, err
	}
	if err := f.addHost("/usr/bin/prometheus-postgres-exporter"); err != nil {
		return nil, err
	}
	return []string{"prometheus-postgres-exporter"}, addCACerts(f)
}

// prometheusConfig is a default that scrapes Prometheus itself; the apps layer mounts its own.
const prometheusConfig = `global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:9090"]
`

func collectPrometheus(_ context.Context, _ *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, nobodyUser, true); err != nil {
		return nil, err
	}
	// promtool (another 48 MB) is left out: config checks run at deploy time, not in the pod.
	if err := f.addHost("/usr/bin/prometheus"); err != nil {
		return nil, err
	}
	for _, dir := range []string{"/usr/share/prometheus", "/etc/prometheus/consoles", "/etc/prometheus/console_libraries"} {
		if _, err := os.Stat(dir); err == nil {
			if err := f.addTree(dir, nil); err != nil {
				return nil, err
			}
		}
	}
	f.addData("/etc/prometheus/prometheus.yml", 0o644, 0, 0, []byte(prometheusConfig))
	f.addDir("/prometheus", 0o755, nobodyUser.uid, nobodyUser.gid)
	return []string{"prometheus"}, addCACerts(f)
}

// pythonRoots are the Debian packages the app imports; their python3 dependencies follow.
var pythonRoots = []string{"python3", "python3-fastapi", "python3-uvicorn", "python3-asyncpg", "python3-prometheus-client"}

// Parts of a Debian Python install that a server never imports.
var pythonSkip = []string{
	"/usr/share/doc", "/usr/share/man", "/usr/share/lintian", "/usr/share/binfmts",
	"/usr/share/applications", "/usr/share/pixmaps", "/usr/share/python3", "/usr/share/debhelper",
	"/usr/lib/python3.11/test", "/usr/lib/python3.11/idlelib", "/usr/lib/python3.11/tkinter",
	"/usr/lib/python3.11/turtledemo", "/usr/lib/python3.11/lib2to3", "/usr/lib/python3.11/ensurepip",
	"/usr/lib/python3.11/pydoc_data", "/usr/lib/python3.11/unittest",
}

// addPythonPackages adds the files of roots and of the dependencies keep accepts (the Debian
// closure), without pythonSkip's parts and without /usr/bin programs other than python3 and the
// ones keepBin accepts (nil: none). It returns the packages it added.
func addPythonPackages(ctx context.Context, f *fileSet, roots []string, keep, keepBin func(string) bool) ([]string, error) {
	pkgs, err := packageClosure(ctx, roots, keep)
	if err != nil {
		return nil, err
	}
	for _, pkg := range pkgs {
		files, err := dpkgFiles(ctx, pkg)
		if err != nil {
			return nil, err
		}
		for _, p := range files {
			if hasAnyPrefix(p, pythonSkip...) {
				continue
			}
			if strings.HasPrefix(p, "/usr/bin/") && !strings.HasPrefix(p, "/usr/bin/python3") && (keepBin == nil || !keepBin(p)) {
				continue
			}
			st, err := os.Lstat(p)
			if err != nil || st.IsDir() {
				continue // directories come with their files; removed conffiles are not shipped
			}
			if err := f.addHost(p); err != nil {
				return nil, err
			}
			if strings.HasSuffix(p, ".py") {
				// Debian compiles bytecode at install time; shipping it keeps start-up fast on a
				// read-only root where Python cannot cache it.
				pyc := filepath.Join(filepath.Dir(p), "__pycache__",
					strings.TrimSuffix(filepath.Base(p), ".py")+".cpython-311.pyc")
				if _, err := os.Stat(pyc); err == nil {
					if err := f.addHost(pyc); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return pkgs, nil
}

func collectHealthcareAPI(ctx context.Context, b *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, apiUser, true); err != nil {
		return nil, err
	}
	pkgs, err := addPythonPackages(ctx, f, pythonRoots, func(p string) bool {
		return strings.HasPrefix(p, "python3") || strings.HasPrefix(p, "libpython3")
	}, nil)
	if err != nil {
		return nil, err
	}
	src := filepath.Join(b.RepoDir, "healthcare-api", "healthcare_api")
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("healthcare-api sources: %w (is RepoDir %s the repository root?)", err, b.RepoDir)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".py") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("healthcare-api sources: no .py files in %s", src)
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return nil, err
		}
		f.addData("/app/healthcare_api/"+n, 0o644, 0, 0, data)
	}
	return pkgs, nil
}

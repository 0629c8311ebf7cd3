package images

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/infralab/infralab/internal/testenv"
)

// TestCNPGImages checks what CloudNativePG's instance manager and pooler exec is in the images
// (docs/src/container_images.md of the pinned module; see cnpg.go), then runs barman-cloud and
// pgbouncer from the extracted images, read-only and non-root, so a missing Python module or
// library fails here and not in a backup.
func TestCNPGImages(t *testing.T) {
	testenv.Tool(t, "cnpg-manager")
	requirePackages(t, "postgresql-15", "busybox-static", "barman-cli-cloud", "pgbouncer")
	vs := testenv.PinnedVersions(t)
	op := build(t, "cnpg-operator")
	if want := Registry + "/cnpg-operator:" + vs["CNPG_VERSION"]; op.Ref != want {
		t.Errorf("operator ref %s, want %s (the tag hack/tools.sh renders into the manifest)", op.Ref, want)
	}
	of := load(t, op)
	if _, ok := of.resolve("/manager"); !ok {
		t.Error("/manager missing: the bootstrap-controller init container runs it")
	}
	// The operator globs operator/manager_* from its working directory for the architectures it
	// can serve (pkg/utils/discovery.go).
	if _, ok := of.resolve("/operator/manager_" + runtime.GOARCH); !ok || of.cfg.Config.WorkingDir != "/" {
		t.Errorf("/operator/manager_%s missing or working directory %q: every Cluster would fail with \"invalid architecture\"", runtime.GOARCH, of.cfg.Config.WorkingDir)
	}
	pg := build(t, "cnpg-postgres")
	// CNPG reads the major version from the tag (container_images.md: Image Tag Requirements).
	if !strings.HasPrefix(pg.Ref, Registry+"/cnpg-postgres:15.") {
		t.Errorf("ref %s: the tag must start with the PostgreSQL major", pg.Ref)
	}
	f := load(t, pg)
	for _, p := range []string{"initdb", "postgres", "pg_ctl", "pg_controldata", "pg_basebackup", "pg_rewind", "pg_archivecleanup"} {
		if _, ok := f.resolve("/usr/lib/postgresql/15/bin/" + p); !ok {
			t.Errorf("%s missing from cnpg-postgres", p)
		}
	}
	for _, p := range []string{"barman-cloud-wal-archive", "barman-cloud-wal-restore", "barman-cloud-backup", "barman-cloud-restore",
		"barman-cloud-backup-list", "barman-cloud-backup-delete", "barman-cloud-check-wal-archive", "du"} {
		if _, ok := f.resolve("/usr/bin/" + p); !ok {
			t.Errorf("/usr/bin/%s missing from cnpg-postgres", p)
		}
	}
	checkELFDependencies(t, f)
	bouncer := build(t, "pgbouncer")
	bf := load(t, bouncer)
	if _, ok := bf.resolve("/usr/bin/pgbouncer"); !ok {
		t.Error("/usr/bin/pgbouncer missing: the pooler's instance manager execs that path")
	}
	checkELFDependencies(t, bf)

	testenv.RequireRoot(t) // the run half: mount namespaces and chroot
	tmp := t.TempDir()
	// run-readonly.sh mounts this where a pod would have its Secret; nothing here reads it.
	if err := os.WriteFile(filepath.Join(tmp, "password"), []byte("unused\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pgRoot := extract(t, pg, filepath.Join(tmp, "pg"))
	bRoot := extract(t, bouncer, filepath.Join(tmp, "bouncer"))
	for _, c := range []struct {
		root, user, want string
		argv             []string
	}{
		{pgRoot, "10999:10999", "barman-cloud-wal-archive 3.", []string{"/usr/bin/barman-cloud-wal-archive", "--version"}},
		{pgRoot, "10999:10999", "barman-cloud-backup 3.", []string{"/usr/bin/barman-cloud-backup", "--version"}},
		{bRoot, "998:996", "PgBouncer 1.", []string{"/usr/bin/pgbouncer", "--version"}},
	} {
		p := startReadOnly(t, c.root, c.user, "/tmp:"+c.user, []string{"PATH=/usr/lib/postgresql/15/bin:/usr/bin", "PYTHONDONTWRITEBYTECODE=1"}, c.argv...)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil || !strings.Contains(p.out.String(), c.want) {
				t.Errorf("%s in its image: %v, output %q, want %q", strings.Join(c.argv, " "), err, p.out.String(), c.want)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("%s did not exit within 60s", strings.Join(c.argv, " "))
		}
	}
}

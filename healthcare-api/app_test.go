package healthcareapi

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/infralab/infralab/internal/testenv"
)

// Debian's python, not whatever `python3` is first on PATH: the app's modules are Debian
// packages in /usr/lib/python3/dist-packages, exactly what the image ships.
const python = "/usr/bin/python3"

const pgBin = "/usr/lib/postgresql/15/bin"

func requireOrSkip(t *testing.T, msg string) {
	t.Helper()
	if testenv.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestPytestSuite runs tests/ (CRUD, probes, pool bound, config) against a real PostgreSQL 15
// that the suite starts on loopback in a temp dir.
func TestPytestSuite(t *testing.T) {
	probe := exec.Command(python, "-c",
		"import fastapi, uvicorn, asyncpg, prometheus_client, httpx, pytest")
	if out, err := probe.CombinedOutput(); err != nil {
		requireOrSkip(t, "Debian python3 packages missing ("+string(bytes.TrimSpace(out))+
			"); apt-get install python3-fastapi python3-uvicorn python3-asyncpg "+
			"python3-prometheus-client python3-httpx python3-pytest")
	}
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		requireOrSkip(t, "PostgreSQL 15 binaries missing in "+pgBin+"; apt-get install postgresql-15")
	}

	// go test caches results by the files this process opens; the suite runs in a child, so
	// read the Python sources here to make an edit to them rerun the suite.
	for _, dir := range []string{"healthcare_api", "tests"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.py"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Python files in %s: %v", dir, err)
		}
		for _, f := range files {
			if _, err := os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
		"-o", "junit_family=xunit2", "tests")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PG_BIN="+pgBin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Log("\n" + out.String())
	if err != nil {
		// pytest exits 5 when it collected nothing: that is a failure here too.
		t.Fatalf("pytest failed: %v", err)
	}
	if !bytes.Contains(out.Bytes(), []byte(" passed")) {
		t.Fatal("pytest reported no passed tests")
	}
}

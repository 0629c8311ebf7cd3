package apps

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infralab/infralab/internal/testenv"
)

// TestRolesScriptOnRealPostgres runs sql/roles.sql with the real psql against a real PostgreSQL
// (Debian's postgresql-15) on 127.0.0.1: twice, then with a rotated password, and checks the
// roles have exactly the privileges docs/apps.md promises. The first run is the Job's own command
// (sql/apply-roles.sh), started before the server.
func TestRolesScriptOnRealPostgres(t *testing.T) {
	initdb := testenv.Tool(t, "initdb")
	postgres := testenv.Tool(t, "postgres")
	psql := testenv.Tool(t, "psql")

	// Postgres refuses to run as root: drop to nobody when the test runs as root.
	var cred *syscall.Credential
	dir, err := os.MkdirTemp("", "infralab-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	asPG := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(name, args...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		c.Env = append(os.Environ(), "LC_ALL=C")
		return c
	}
	const superPW = "super-pw"
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(superPW), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := asPG(initdb, "-D", data, "-U", "postgres", "--pwfile", pwfile, "--auth-local=scram-sha-256", "--auth-host=scram-sha-256").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	a := offArgs().withDefaults()
	scriptEnv := func(apiPW string) []string {
		return append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+port, "PGUSER=postgres", "PGPASSWORD="+superPW, "PGDATABASE=postgres",
			"API_DB_USER="+a.API.DatabaseUser, "API_DB_NAME="+a.API.DatabaseName, "API_DB_CONNECTION_LIMIT=17",
			"API_DB_PASSWORD="+apiPW, "EXPORTER_USER="+exporterRole, "EXPORTER_PASSWORD=exp-pw'quote")
	}
	// The Job's own command starts before the server, as it does in a fresh cluster: it must
	// wait, say so, and then apply the roles, not fail into the Job controller's back-off.
	pathWithPG := "PATH=" + filepath.Dir(psql) + ":" + filepath.Dir(testenv.Tool(t, "pg_isready")) + ":" + os.Getenv("PATH")
	early := exec.Command("sh", filepath.Join("sql", "apply-roles.sh"))
	early.Env = append(scriptEnv("api-pw-1"), "PG_WAIT_SECONDS=60", "ROLES_SQL="+filepath.Join("sql", "roles.sql"), pathWithPG)
	var earlyOut strings.Builder
	early.Stdout, early.Stderr = &earlyOut, &earlyOut
	if err := early.Start(); err != nil {
		t.Fatal(err)
	}
	earlyDone := make(chan error, 1)
	go func() { earlyDone <- early.Wait() }()
	time.Sleep(1500 * time.Millisecond)

	srv := asPG(postgres, "-D", data, "-k", dir, "-p", port, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=50")
	var log strings.Builder
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGINT) // fast shutdown of the server this test started
		_ = srv.Wait()
	})

	query := func(user, pw, db, sql string) (string, error) {
		c := exec.Command(psql, "--no-psqlrc", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql)
		c.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+port, "PGUSER="+user, "PGPASSWORD="+pw, "PGDATABASE="+db, "PGCONNECT_TIMEOUT=3")
		out, err := c.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := query("postgres", superPW, "postgres", "SELECT 1"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres did not start:\n%s", log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	select {
	case err := <-earlyDone:
		if err != nil {
			t.Fatalf("apply-roles.sh started before the server: %v\n%s", err, earlyOut.String())
		}
	case <-time.After(60 * time.Second):
		_ = early.Process.Kill() // the script this test started
		t.Fatalf("apply-roles.sh did not finish within 60 s:\n%s", earlyOut.String())
	}
	for _, want := range []string{"postgres-roles: waiting up to 60s for PostgreSQL at 127.0.0.1:" + port, "accepts connections (waited"} {
		if !strings.Contains(earlyOut.String(), want) {
			t.Errorf("apply-roles.sh output lacks %q:\n%s", want, earlyOut.String())
		}
	}
	if strings.Contains(earlyOut.String(), "exp-pw") || strings.Contains(earlyOut.String(), "api-pw") {
		t.Errorf("apply-roles.sh printed a password:\n%s", earlyOut.String())
	}

	runScript := func(apiPW string) {
		t.Helper()
		c := exec.Command(psql, "--no-psqlrc", "-f", filepath.Join("sql", "roles.sql"))
		c.Env = scriptEnv(apiPW)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("roles.sql: %v\n%s", err, out)
		} else if strings.Contains(string(out), "exp-pw") || strings.Contains(string(out), apiPW) {
			t.Errorf("roles.sql printed a password:\n%s", out)
		}
	}
	runScript("api-pw-1") // idempotent on the database the early run set up

	expect := func(user, pw, db, sql, want string) {
		t.Helper()
		got, err := query(user, pw, db, sql)
		if err != nil || got != want {
			t.Errorf("%s@%s: %s = %q (%v), want %q", user, db, sql, got, err, want)
		}
	}
	deny := func(user, pw, db, sql string) {
		t.Helper()
		if got, err := query(user, pw, db, sql); err == nil {
			t.Errorf("%s@%s: %s succeeded (%q), want a refusal", user, db, sql, got)
		}
	}
	expect("postgres", superPW, "postgres", "SELECT rolconnlimit, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'healthcare'", "17|f|f|f")
	expect("postgres", superPW, "postgres", "SELECT rolconnlimit, rolsuper FROM pg_roles WHERE rolname = 'postgres_exporter'", "3|f")
	expect("postgres", superPW, "postgres", "SELECT pg_has_role('postgres_exporter', 'pg_monitor', 'MEMBER')", "t")
	expect("postgres", superPW, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'healthcare'", "healthcare")
	expect("healthcare", "api-pw-1", "healthcare", "CREATE TABLE patients (id int); INSERT INTO patients VALUES (1); SELECT count(*) FROM patients", "1")
	deny("healthcare", "api-pw-1", "postgres", "SELECT 1 FROM pg_authid LIMIT 1")
	expect("postgres_exporter", "exp-pw'quote", "postgres", "SELECT count(*) > 0 FROM pg_stat_activity WHERE query <> ''", "t")
	deny("postgres_exporter", "exp-pw'quote", "healthcare", "SELECT 1")
	deny("postgres_exporter", "exp-pw'quote", "postgres", "CREATE TABLE x (id int)")

	// A rotated password takes effect on the next run and the old one stops working.
	runScript("api-pw-2")
	expect("healthcare", "api-pw-2", "healthcare", "SELECT count(*) FROM patients", "1")
	deny("healthcare", "api-pw-1", "healthcare", "SELECT 1")
}

// TestRolesJobWaitIsBounded: with nothing listening, the Job's command gives up after
// PG_WAIT_SECONDS with a message naming the address, so a broken database fails the Job
// instead of hanging it.
func TestRolesJobWaitIsBounded(t *testing.T) {
	isready := testenv.Tool(t, "pg_isready")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close() // a port nothing listens on
	c := exec.Command("sh", filepath.Join("sql", "apply-roles.sh"))
	c.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+port, "PGUSER=postgres", "PGDATABASE=postgres",
		"PG_WAIT_SECONDS=2", "PATH="+filepath.Dir(isready)+":"+os.Getenv("PATH"))
	start := time.Now()
	out, err := c.CombinedOutput()
	if err == nil {
		t.Fatalf("apply-roles.sh succeeded with nothing listening:\n%s", out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("gave up after %s, want about PG_WAIT_SECONDS=2", took)
	}
	want := "still does not accept connections after"
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "127.0.0.1:"+port) {
		t.Errorf("output lacks %q and the address:\n%s", want, out)
	}
}

package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The CloudNativePG images of the local stack (issue 17). The operator's Deployment runs
// /manager; the operator copies that same binary into every instance and pooler pod through its
// bootstrap-controller init container (cloudnative-pg pkg/specs/containers.go:
// createBootstrapContainer runs `/manager bootstrap /controller/manager` from the operator
// image), so the operand images need no CNPG code of their own, only what the instance manager
// execs (docs/src/container_images.md of the module: initdb, postgres, pg_ctl, pg_controldata,
// pg_basebackup on PATH; pg_rewind for a former primary rejoining; barman-cloud-* for the
// in-tree object-store backups this stack uses; /usr/bin/pgbouncer for a Pooler:
// internal/cmd/manager/pgbouncer/run/cmd.go).

// cnpgUser is the user the module's own Deployment runs the manager as (config/manager/manager.yaml:
// runAsUser 10001); the bootstrap init container in the instance pods runs as postgres instead.
var cnpgUser = account{name: "cnpg", uid: 10001, gid: 10001, home: "/nonexistent"}

// pgbouncerUser is the user CNPG runs every Pooler pod as, whatever the Pooler's template says
// (pkg/specs/pgbouncer/deployments.go: WithSecurityContext(CreatePodSecurityContext(..., 998,
// 996), true) overwrites it), so the image names the same ids.
var pgbouncerUser = account{name: "pgbouncer", uid: 998, gid: 996, home: "/nonexistent"}

func cnpgSpecs() []spec {
	return []spec{
		{
			name: "cnpg-operator", description: "CloudNativePG manager built by `make tools` (hack/tools.sh cnpg), static",
			user: cnpgUser, versionOf: cnpgVersion,
			collect: collectCNPGOperator,
			config:  v1.Config{Entrypoint: []string{"/manager"}, WorkingDir: "/"},
		},
		{
			name: "cnpg-postgres", description: "PostgreSQL 15 from Debian for CloudNativePG: postgresql-15 plus barman-cli-cloud",
			user: postgresUser, tagPackage: "postgresql-15",
			collect: collectCNPGPostgres,
			config: v1.Config{
				// No entrypoint: the operator always sets the command (container_images.md).
				Env: []string{
					"PATH=/usr/lib/postgresql/15/bin:/usr/bin",
					// barman-cloud (Python) must never try to write bytecode on a read-only root.
					"PYTHONDONTWRITEBYTECODE=1",
				},
				ExposedPorts: ports("5432/tcp"),
				StopSignal:   "SIGINT",
			},
		},
		{
			name: "pgbouncer", description: "PgBouncer from Debian's pgbouncer, for CloudNativePG's Pooler",
			user: pgbouncerUser, tagPackage: "pgbouncer",
			collect: collectPgBouncer,
			config:  v1.Config{Entrypoint: []string{"/usr/bin/pgbouncer"}, Env: []string{"PATH=/usr/bin:/usr/sbin"}, ExposedPorts: ports("5432/tcp")},
		},
	}
}

func cnpgBinary(b *Builder) (string, error) {
	p := filepath.Join(b.toolsDir(), "cnpg-manager")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("cnpg-manager binary: %w; run: hack/tools.sh cnpg", err)
	}
	return p, nil
}

var cnpgVersionRE = regexp.MustCompile(`Build: \{Version:([0-9]+\.[0-9]+\.[0-9]+) `)

// cnpgVersion tags the operator image with the version the binary reports, e.g. 1.27.1; the
// operator's manifest (hack/tools.sh render_cnpg_manifest) names exactly that tag.
func cnpgVersion(ctx context.Context, b *Builder) (string, error) {
	bin, err := cnpgBinary(b)
	if err != nil {
		return "", err
	}
	return reportedVersion(ctx, bin, cnpgVersionRE, "no `Build: {Version:X.Y.Z`", "version")
}

func collectCNPGOperator(_ context.Context, b *Builder, f *fileSet) ([]string, error) {
	bin, err := cnpgBinary(b)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	if err := addBase(f, cnpgUser, false); err != nil {
		return nil, err
	}
	// As upstream's Dockerfile lays it out (WORKDIR /, operator/manager_ARCH, manager -> it): the
	// operator finds the instance manager it serves per architecture by globbing the relative
	// path operator/manager_* (pkg/utils/discovery.go, DetectAvailableArchitectures); without it
	// every Cluster fails with "invalid architecture: amd64".
	f.addData("/operator/manager_"+runtime.GOARCH, 0o755, 0, 0, data)
	f.addLink("/manager", "operator/manager_"+runtime.GOARCH)
	return nil, nil
}

// cnpgPostgresBins are what the instance manager runs besides collectPostgres's set.
var cnpgPostgresBins = []string{"pg_controldata", "pg_rewind", "pg_archivecleanup", "pg_waldump"}

func collectCNPGPostgres(ctx context.Context, b *Builder, f *fileSet) ([]string, error) {
	pkgs, err := collectPostgres(ctx, b, f)
	if err != nil {
		return nil, err
	}
	for _, bin := range cnpgPostgresBins {
		if err := f.addHost(filepath.Join("/usr/lib/postgresql/15/bin", bin)); err != nil {
			return nil, err
		}
	}
	// The instance manager's `du` (kubectl cnpg status) and barman's shell-outs.
	f.addLink("/usr/bin/du", "busybox")
	py, err := addPythonPackages(ctx, f, []string{"barman-cli-cloud"}, func(p string) bool {
		return p == "barman-cli-cloud" || strings.HasPrefix(p, "python3") || strings.HasPrefix(p, "libpython3")
	}, func(p string) bool { return strings.HasPrefix(p, "/usr/bin/barman-cloud-") })
	if err != nil {
		return nil, fmt.Errorf("%w; run: apt-get install -y barman-cli-cloud", err)
	}
	// boto3 verifies the S3 endpoint's certificate against this bundle when it is https.
	return append(pkgs, py...), addCACerts(f)
}

func collectPgBouncer(_ context.Context, _ *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, pgbouncerUser, true); err != nil {
		return nil, err
	}
	// Debian installs it in /usr/sbin; the pooler's instance manager execs /usr/bin/pgbouncer.
	if err := f.addHost("/usr/sbin/pgbouncer"); err != nil {
		return nil, fmt.Errorf("%w; run: apt-get install -y pgbouncer", err)
	}
	f.addLink("/usr/bin/pgbouncer", "../sbin/pgbouncer")
	return []string{"pgbouncer"}, addCACerts(f)
}

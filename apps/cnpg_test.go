package apps

import (
	"strings"
	"testing"
)

// LabCNPG is the lab's shape: two instances on two workers, one synchronous standby.
func labCNPG() (CNPGArgs, *CNPGPoolerArgs) {
	a := CNPGArgs{Name: "postgres", Namespace: "database", Instances: 2, Image: "ghcr.io/cloudnative-pg/postgresql:15",
		PullPolicy: "IfNotPresent", UID: 10999, GID: 10999, AntiAffinity: "required", SyncReplicas: 1, SyncDurability: "required",
		StorageClass: "local-path", StorageSize: "10Gi", MaxConnections: 100, Database: "healthcare", Owner: "healthcare",
		Roles: []CNPGRole{{Name: "api", PasswordSecret: "api-db"}, {Name: "exporter", PasswordSecret: "exporter-db", InRoles: []string{"pg_monitor"}}},
		Backup: CNPGBackup{DestinationPath: "s3://backups/postgres/", EndpointURL: "https://fsn1.your-objectstorage.com",
			CredentialsSecret: "s3", Retention: "14d", Schedule: "0 0 3 * * *"}}
	return a, &CNPGPoolerArgs{Name: "postgres-pooler", Namespace: "database", Cluster: "postgres", Image: "ghcr.io/cloudnative-pg/pgbouncer:1.24.1",
		PullPolicy: "IfNotPresent", Instances: 2, DefaultPoolSize: 20, MaxClientConn: 200}
}

func TestValidateCNPG(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(a *CNPGArgs, p *CNPGPoolerArgs)
		want []string
	}{
		{"lab", func(*CNPGArgs, *CNPGPoolerArgs) {}, nil},
		{"local: one instance, preferred is allowed", func(a *CNPGArgs, _ *CNPGPoolerArgs) {
			a.Instances, a.AntiAffinity, a.SyncReplicas = 1, "preferred", 0
		}, nil},
		{"two instances preferred", func(a *CNPGArgs, _ *CNPGPoolerArgs) { a.AntiAffinity = "preferred" },
			[]string{`apps.postgres.antiAffinity: "preferred" lets 2 instances share one node`}},
		{"more sync standbys than standbys", func(a *CNPGArgs, _ *CNPGPoolerArgs) { a.SyncReplicas = 2 },
			[]string{"apps.postgres.syncReplicas: is 2; set 0 (asynchronous) to 1"}},
		{"sync without durability", func(a *CNPGArgs, _ *CNPGPoolerArgs) { a.SyncDurability = "" },
			[]string{"apps.postgres.syncDurability"}},
		{"latest-like tag", func(a *CNPGArgs, _ *CNPGPoolerArgs) { a.Image = "postgres:latest" },
			[]string{"apps.postgres.image"}},
		{"no backups", func(a *CNPGArgs, _ *CNPGPoolerArgs) { a.Backup = CNPGBackup{} },
			[]string{"backup.destinationPath", "backup.credentials", "backup.retention", "backup.schedule"}},
		{"pool larger than max_connections", func(a *CNPGArgs, p *CNPGPoolerArgs) { p.DefaultPoolSize, p.MaxClientConn = 50, 500 },
			[]string{"apps.postgres.maxConnections: 100 is below what the pooler may open: 2 poolers x 50"}},
		{"low uid", func(a *CNPGArgs, _ *CNPGPoolerArgs) { a.UID = 26 }, []string{"apps.postgres.uid"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, p := labCNPG()
			c.edit(&a, p)
			errs := ValidateCNPG("apps.postgres", a, p)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(c.want), strings.Join(got, "\n"))
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("error %d %q does not mention %q", i, got[i], w)
				}
			}
		})
	}
}

func TestCNPGClusterSpec(t *testing.T) {
	a, _ := labCNPG()
	spec := CNPGCluster(a)["spec"].(map[string]any)
	if s := spec["postgresql"].(map[string]any)["synchronous"].(map[string]any); s["method"] != "any" || s["number"] != 1 || s["dataDurability"] != "required" {
		t.Errorf("synchronous = %v, want any 1 required", s)
	}
	if _, ok := spec["externalClusters"]; ok {
		t.Error("a fresh cluster has no external cluster")
	}
	a.Recovery = &CNPGRecovery{Source: "postgres", TargetTime: "2026-12-03 16:00:00+00"}
	spec = CNPGCluster(a)["spec"].(map[string]any)
	rec := spec["bootstrap"].(map[string]any)["recovery"].(map[string]any)
	if rec["source"] != "origin" || rec["recoveryTarget"].(map[string]any)["targetTime"] != a.Recovery.TargetTime {
		t.Errorf("recovery bootstrap = %v", rec)
	}
	origin := spec["externalClusters"].([]any)[0].(map[string]any)["barmanObjectStore"].(map[string]any)
	if origin["serverName"] != "postgres" || origin["destinationPath"] != a.Backup.DestinationPath {
		t.Errorf("origin store = %v", origin)
	}
}

func TestCNPGImportFromTheStatefulSet(t *testing.T) {
	a, _ := labCNPG()
	a.Import = &CNPGImport{Host: "postgres.database.svc", Database: "healthcare", User: "postgres",
		PasswordSecret: "postgres-superuser", PasswordKey: "password"}
	if errs := ValidateCNPG("apps.postgres", a, nil); len(errs) != 0 {
		t.Fatalf("import: %v", errs)
	}
	spec := CNPGCluster(a)["spec"].(map[string]any)
	imp := spec["bootstrap"].(map[string]any)["initdb"].(map[string]any)["import"].(map[string]any)
	if imp["type"] != "microservice" || imp["source"].(map[string]any)["externalCluster"] != "statefulset" {
		t.Errorf("import = %v", imp)
	}
	ext := spec["externalClusters"].([]any)[0].(map[string]any)
	if ext["connectionParameters"].(map[string]any)["host"] != "postgres.database.svc" || ext["password"].(map[string]any)["name"] != "postgres-superuser" {
		t.Errorf("external cluster = %v", ext)
	}
	a.Recovery = &CNPGRecovery{Source: "x", TargetTime: "t"}
	a.Import.Host = ""
	errs := ValidateCNPG("apps.postgres", a, nil)
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "apps.postgres.import: set import or recovery, not both") {
		t.Errorf("errors %v", errs)
	}
}

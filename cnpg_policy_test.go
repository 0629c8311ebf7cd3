package main

import (
	"encoding/json"
	"testing"

	"github.com/infralab/infralab/apps"
	"github.com/infralab/infralab/policy/rules"
)

// TestCNPGClusterPassesTheDatabaseRules runs the whole pack over the Cluster apps.CNPGCluster
// builds, in the lab's shape (two instances, required anti-affinity, one synchronous standby) and
// as a PITR restore, and checks that the database rules catch the same spec with anti-affinity
// relaxed: the pack and the apps layer agree on what a good Cluster is.
func TestCNPGClusterPassesTheDatabaseRules(t *testing.T) {
	lab := apps.CNPGArgs{Name: "postgres", Namespace: "database", Instances: 2, Image: "ghcr.io/cloudnative-pg/postgresql:15",
		PullPolicy: "IfNotPresent", UID: 10999, GID: 10999, AntiAffinity: "required", SyncReplicas: 1, SyncDurability: "required",
		StorageClass: "local-path", StorageSize: "10Gi", MaxConnections: 100, Database: "healthcare", Owner: "healthcare",
		Roles:  []apps.CNPGRole{{Name: "api", PasswordSecret: "api-db"}},
		Backup: apps.CNPGBackup{DestinationPath: "s3://backups/", CredentialsSecret: "s3", Retention: "14d", Schedule: "0 0 3 * * *"}}
	restore := lab
	restore.Name, restore.Recovery = "postgres-restore", &apps.CNPGRecovery{Source: "postgres", TargetTime: "2026-12-03 16:00:00+00"}
	relaxed := lab
	relaxed.AntiAffinity = "preferred"
	for _, c := range []struct {
		name string
		args apps.CNPGArgs
		want []string
	}{
		{"lab", lab, nil},
		{"restore", restore, nil},
		{"two instances preferred", relaxed, []string{"database-anti-affinity-required"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Through JSON, as the provider sends the object: numbers become float64.
			raw, err := json.Marshal(apps.CNPGCluster(c.args))
			if err != nil {
				t.Fatal(err)
			}
			var obj map[string]any
			if err := json.Unmarshal(raw, &obj); err != nil {
				t.Fatal(err)
			}
			r := rules.Resource{Type: "kubernetes:postgresql.cnpg.io/v1:Cluster", Name: c.args.Name,
				URN: "urn:pulumi:lab::infralab::kubernetes:postgresql.cnpg.io/v1:Cluster::" + c.args.Name, Props: rules.MapFromGo(obj)}
			report := rules.EvaluateStack([]rules.Resource{r}, rules.Exceptions{})
			var got []string
			for _, f := range report.Mandatory {
				got = append(got, f.Rule)
				if len(c.want) == 0 {
					t.Errorf("%s: %s: %s", f.Rule, f.Field, f.Problem)
				}
			}
			if len(c.want) > 0 && (len(got) != len(c.want) || got[0] != c.want[0]) {
				t.Errorf("mandatory findings %v, want %v", got, c.want)
			}
		})
	}
}

package rules

import "testing"

// goodCluster is a Cluster every database rule accepts: two instances on different nodes,
// backups with retention, no superuser, TLS required.
func goodCluster() map[string]any {
	return map[string]any{
		"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
		"metadata": map[string]any{"name": "postgres", "namespace": "database"},
		"spec": map[string]any{
			"instances": 2,
			"affinity":  map[string]any{"podAntiAffinityType": "required"},
			"backup": map[string]any{
				"retentionPolicy": "14d",
				"barmanObjectStore": map[string]any{"destinationPath": "s3://backups/postgres", "endpointURL": "http://10.244.0.1:8333",
					"s3Credentials": map[string]any{"accessKeyId": map[string]any{"name": "s3", "key": "ACCESS_KEY_ID"}}},
			},
			"managed": map[string]any{"roles": []any{
				map[string]any{"name": "api", "login": true, "superuser": false},
				map[string]any{"name": "exporter", "login": true, "inRoles": []any{"pg_monitor"}},
			}},
			"postgresql": map[string]any{"pg_hba": []any{"hostnossl all all all reject", "hostssl app api all scram-sha-256"}},
		},
	}
}

func clusterCase(name string, want []string, unknowns int, edits ...kv) ruleCase {
	c := goodCluster()
	for _, e := range edits {
		set(c, e.p, e.v)
	}
	return ruleCase{name: name, typ: cnpgCluster, props: c, want: want, unknowns: unknowns}
}

func TestDatabaseBackupsConfigured(t *testing.T) {
	runRuleTable(t, "database-backups-configured", []ruleCase{
		clusterCase("object store with retention", nil, 0),
		clusterCase("no backup", []string{"archives no WAL"}, 0, kv{"spec.backup", nil}),
		clusterCase("no retention", []string{"no retentionPolicy"}, 0, kv{"spec.backup.retentionPolicy", nil}),
		clusterCase("no destination, no credentials", []string{"no destinationPath", "no s3Credentials"}, 0,
			kv{"spec.backup.barmanObjectStore.destinationPath", nil}, kv{"spec.backup.barmanObjectStore.s3Credentials", nil}),
		clusterCase("the barman-cloud plugin as WAL archiver", nil, 0, kv{"spec.backup", nil},
			kv{"spec.plugins", []any{map[string]any{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true}}}),
		clusterCase("the plugin without WAL archiving", []string{"archives no WAL"}, 0, kv{"spec.backup", nil},
			kv{"spec.plugins", []any{map[string]any{"name": "barman-cloud.cloudnative-pg.io"}}}),
		clusterCase("unknown object store", nil, 1, kv{"spec.backup.barmanObjectStore", Unknown()}),
		{name: "other kinds ignored", typ: "kubernetes:apps/v1:StatefulSet", props: map[string]any{"spec": map[string]any{}}},
	})
}

func TestDatabaseAntiAffinityRequired(t *testing.T) {
	runRuleTable(t, "database-anti-affinity-required", []ruleCase{
		clusterCase("two instances required", nil, 0),
		clusterCase("two instances, CNPG's default preferred", []string{`anti-affinity "preferred"`}, 0, kv{"spec.affinity", nil}),
		clusterCase("three instances preferred", []string{"3 instances"}, 0, kv{"spec.instances", 3}, kv{"spec.affinity.podAntiAffinityType", "preferred"}),
		clusterCase("anti-affinity disabled", []string{"anti-affinity disabled"}, 0, kv{"spec.affinity.enablePodAntiAffinity", false}),
		clusterCase("one instance needs none", nil, 0, kv{"spec.instances", 1}, kv{"spec.affinity", nil}),
		clusterCase("instances unset (1)", nil, 0, kv{"spec.instances", nil}, kv{"spec.affinity", nil}),
		clusterCase("unknown instances", nil, 1, kv{"spec.instances", Unknown()}),
	})
}

func TestDatabaseNoAppSuperuser(t *testing.T) {
	runRuleTable(t, "database-no-app-superuser", []ruleCase{
		clusterCase("managed roles without superuser", nil, 0),
		clusterCase("superuser access", []string{"enableSuperuserAccess: true"}, 0, kv{"spec.enableSuperuserAccess", true}),
		clusterCase("superuser access false", nil, 0, kv{"spec.enableSuperuserAccess", false}),
		clusterCase("a superuser role", []string{`managed role "api" is a superuser`}, 0, kv{"spec.managed.roles.0.superuser", true}),
		clusterCase("unknown roles", nil, 1, kv{"spec.managed.roles", Unknown()}),
	})
}

func TestDatabaseTLS(t *testing.T) {
	runRuleTable(t, "database-tls", []ruleCase{
		clusterCase("plain TCP rejected first", nil, 0),
		clusterCase("no pg_hba: CNPG's default accepts plain TCP", []string{"no pg_hba line rejects plain TCP"}, 0, kv{"spec.postgresql", nil}),
		clusterCase("a host line before the reject", []string{`"host all all all md5" accepts connections without TLS`}, 0,
			kv{"spec.postgresql.pg_hba", []any{"host all all all md5", "hostnossl all all all reject"}}),
		clusterCase("local lines are fine", nil, 0,
			kv{"spec.postgresql.pg_hba", []any{"local all all peer", "hostnossl all all all reject"}}),
		clusterCase("TLS 1.1 allowed", []string{"below 1.2"}, 0, kv{"spec.postgresql.parameters", map[string]any{"ssl_min_protocol_version": "TLSv1.1"}}),
		clusterCase("a reject for one database only", []string{"no pg_hba line rejects plain TCP"}, 0,
			kv{"spec.postgresql.pg_hba", []any{"hostnossl app all all reject"}}),
		clusterCase("unknown pg_hba", nil, 1, kv{"spec.postgresql.pg_hba", Unknown()}),
	})
}

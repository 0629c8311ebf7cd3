package rules

import (
	"fmt"
	"strings"
)

// The database rules (issue 17) check CloudNativePG Clusters, as the kubernetes provider
// declares them (apiextensions.CustomResource; type token kubernetes:postgresql.cnpg.io/v1:Cluster).
// Field names and defaults are those of the CRD of CloudNativePG v1.27.1 (api/v1/cluster_types.go
// of github.com/cloudnative-pg/cloudnative-pg): affinity.podAntiAffinityType defaults to
// "preferred", enableSuperuserAccess to false, and the operator appends its own pg_hba lines,
// among them `host all all all scram-sha-256`, after the ones in spec.postgresql.pg_hba.
const cnpgCluster = "kubernetes:postgresql.cnpg.io/v1:Cluster"

// barmanCloudPlugin is the plugin-barman-cloud plugin's name in spec.plugins.
const barmanCloudPlugin = "barman-cloud.cloudnative-pg.io"

func clusterSpec(r Resource, rule string) (*finder, node, bool) {
	if r.Type != cnpgCluster {
		return nil, node{}, false
	}
	return newFinder(rule, r), root(r.Props, "").get("spec"), true
}

// checkClusterBackups: WAL archiving to an object store with a retention policy, in-tree
// (spec.backup.barmanObjectStore) or through the barman-cloud plugin as the WAL archiver.
func checkClusterBackups(r Resource) []Finding {
	f, spec, ok := clusterSpec(r, "database-backups-configured")
	if !ok {
		return nil
	}
	if spec.unknown {
		f.unknown("", "spec")
		return f.out
	}
	plugins, known := spec.get("plugins").items()
	if !known {
		f.unknown("", "spec.plugins")
		return f.out
	}
	for _, p := range plugins {
		name, _ := p.get("name").str()
		archiver, _ := p.get("isWALArchiver").boolean()
		if name == barmanCloudPlugin && archiver {
			return f.out
		}
	}
	store := spec.at("backup", "barmanObjectStore")
	if store.unknown {
		f.unknown("", store.path)
		return f.out
	}
	if store.missing {
		f.bad("", "spec.backup", "the Cluster archives no WAL and takes no base backups: losing its volumes loses the database",
			"set spec.backup.barmanObjectStore (destinationPath, endpointURL, s3Credentials from a Secret) and spec.backup.retentionPolicy, or the barman-cloud plugin with isWALArchiver: true")
		return f.out
	}
	for _, field := range []string{"destinationPath", "s3Credentials"} {
		if n := store.get(field); n.missing {
			f.bad("", n.path, fmt.Sprintf("the object store has no %s", field), "set spec.backup.barmanObjectStore."+field)
		}
	}
	if n := spec.at("backup", "retentionPolicy"); n.missing {
		f.bad("", n.path, "backups are kept forever (no retentionPolicy), so the bucket grows until writes fail", `set spec.backup.retentionPolicy, e.g. "14d"`)
	}
	return f.out
}

// checkClusterAntiAffinity: with more than one instance, the instances must be on different
// nodes, or one node's loss takes the primary and its replica together.
func checkClusterAntiAffinity(r Resource) []Finding {
	f, spec, ok := clusterSpec(r, "database-anti-affinity-required")
	if !ok {
		return nil
	}
	inst := spec.get("instances")
	if inst.unknown {
		f.unknown("", inst.path)
		return f.out
	}
	n, set := inst.number()
	if !set || n <= 1 {
		return nil // CNPG's default is 1 instance
	}
	aff := spec.get("affinity")
	enabled, typ := aff.get("enablePodAntiAffinity"), aff.get("podAntiAffinityType")
	if enabled.unknown || typ.unknown {
		f.unknown("", aff.path)
		return f.out
	}
	if on, set := enabled.boolean(); set && !on {
		f.bad("", enabled.path, fmt.Sprintf("%d instances with pod anti-affinity disabled can all run on one node", int(n)),
			`remove enablePodAntiAffinity: false and set podAntiAffinityType: "required"`)
		return f.out
	}
	if t, _ := typ.str(); t != "required" {
		f.bad("", typ.path, fmt.Sprintf("%d instances with anti-affinity %q (CNPG's default is preferred) can land on one node", int(n), orDefault(t, "preferred")),
			`set spec.affinity.podAntiAffinityType: "required" (and enough schedulable nodes for every instance)`)
	}
	return f.out
}

// checkClusterNoAppSuperuser: no superuser password Secret for anyone to use, and no managed
// role with superuser rights.
func checkClusterNoAppSuperuser(r Resource) []Finding {
	f, spec, ok := clusterSpec(r, "database-no-app-superuser")
	if !ok {
		return nil
	}
	su := spec.get("enableSuperuserAccess")
	if su.unknown {
		f.unknown("", su.path)
	} else if on, _ := su.boolean(); on {
		f.bad("", su.path, "enableSuperuserAccess: true publishes the postgres superuser's password in a Secret",
			"leave enableSuperuserAccess unset (false); give apps managed roles without superuser")
	}
	roles, known := spec.at("managed", "roles").items()
	if !known {
		f.unknown("", "spec.managed.roles")
		return f.out
	}
	for _, role := range roles {
		name, _ := role.get("name").str()
		s := role.get("superuser")
		if s.unknown {
			f.unknown("", s.path)
			continue
		}
		if on, _ := s.boolean(); on {
			f.bad("", s.path, fmt.Sprintf("managed role %q is a superuser", name), "set superuser: false and grant only what the role needs")
		}
	}
	return f.out
}

// checkClusterTLS: CNPG always serves TLS, but its own last pg_hba line also accepts plain TCP;
// only a `hostnossl ... reject` line of ours, before any line that accepts TCP, makes TLS required.
func checkClusterTLS(r Resource) []Finding {
	f, spec, ok := clusterSpec(r, "database-tls")
	if !ok {
		return nil
	}
	hba := spec.at("postgresql", "pg_hba")
	lines, known := hba.items()
	if !known {
		f.unknown("", hba.path)
		return f.out
	}
	for _, l := range lines {
		if l.unknown {
			f.unknown("", l.path)
			return f.out
		}
		s, _ := l.str()
		fields := strings.Fields(s)
		if len(fields) < 2 {
			continue
		}
		switch {
		case fields[0] == "hostnossl" && fields[len(fields)-1] == "reject" && len(fields) >= 5 &&
			fields[1] == "all" && fields[2] == "all" && (fields[3] == "all" || fields[3] == "0.0.0.0/0"):
			if min, _ := spec.at("postgresql", "parameters", "ssl_min_protocol_version").str(); min == "TLSv1" || min == "TLSv1.1" {
				f.bad("", "spec.postgresql.parameters.ssl_min_protocol_version", "TLS below 1.2 is allowed", `set ssl_min_protocol_version: "TLSv1.2" or leave it unset`)
			}
			return f.out
		case (fields[0] == "host" || fields[0] == "hostnossl") && fields[len(fields)-1] != "reject":
			f.bad("", l.path, fmt.Sprintf("pg_hba line %q accepts connections without TLS", s),
				`start spec.postgresql.pg_hba with "hostnossl all all all reject" and use hostssl lines`)
			return f.out
		}
	}
	f.bad("", hba.path, "no pg_hba line rejects plain TCP, so CNPG's default `host all all all scram-sha-256` accepts clients without TLS",
		`add "hostnossl all all all reject" as the first line of spec.postgresql.pg_hba`)
	return f.out
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

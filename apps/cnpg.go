package apps

import (
	"fmt"
	"strings"
)

// CloudNativePG objects (issue 17): the Cluster that replaces the StatefulSet, its Pooler and
// its ScheduledBackup, as plain objects built from typed args. They are the specs the apps layer
// is to declare (apiextensions.CustomResource; not wired into the component yet, docs/database.md)
// and exactly what e2e/cnpg_test.go applies on the embedded node, so the node proves these
// specs and not a copy. Field names are those of CloudNativePG v1.27.1's CRDs
// (api/v1/cluster_types.go, pooler_types.go, scheduledbackup_types.go of the module).

// CNPGArgs configures one CloudNativePG Cluster.
type CNPGArgs struct {
	Name       string // Cluster name; instances are NAME-1, NAME-2, ...; Services NAME-rw, NAME-ro
	Namespace  string
	Instances  int    // lab 2 (one per worker), local 1
	Image      string // operand image; its tag must start with the PostgreSQL major
	PullPolicy string
	UID, GID   int64 // the image's postgres user (10999 for ours)
	// AntiAffinity is "required" (the default, and what policy rule database-anti-affinity-required
	// wants above one instance) or "preferred" (only for a single-node test of failover).
	AntiAffinity string
	// SyncReplicas is how many standbys must confirm a commit (method "any"); 0 = asynchronous.
	// SyncDurability "required" blocks writes when too few standbys are up (RPO 0), "preferred"
	// lets the primary continue alone (CNPG's dataDurability).
	SyncReplicas   int
	SyncDurability string
	StorageClass   string
	StorageSize    string
	MaxConnections int
	Resources      Resources
	Database       string // the application database; its owner is Owner
	Owner          string
	// Roles are the managed roles besides the owner (the api, the exporter), never superusers.
	Roles  []CNPGRole
	Backup CNPGBackup
	// Recovery, when set, bootstraps this Cluster from another one's backups (PITR).
	Recovery *CNPGRecovery
	// Import, when set, bootstraps this Cluster by importing Database from a running server
	// (the StatefulSet being migrated): CNPG's initdb import, type microservice, which runs
	// pg_dump against it and pg_restore into the new primary, then the app keeps its data.
	Import *CNPGImport
}

// CNPGImport is the server an import copies the database from.
type CNPGImport struct {
	Host, Database, User string
	PasswordSecret       string // Secret and key holding User's password
	PasswordKey          string
	SSLMode              string // libpq sslmode towards the old server
}

// CNPGRole is one login role whose password is a kubernetes.io/basic-auth Secret.
type CNPGRole struct {
	Name           string
	PasswordSecret string
	InRoles        []string // e.g. pg_monitor for the exporter
}

// CNPGBackup is where WAL and base backups go (barman-cloud, in-tree: docs/database.md says why).
type CNPGBackup struct {
	DestinationPath   string // s3://BUCKET/PREFIX/
	EndpointURL       string // empty = AWS
	CredentialsSecret string // keys ACCESS_KEY_ID, ACCESS_SECRET_KEY, REGION
	Retention         string // e.g. 14d
	Schedule          string // six-field cron of the ScheduledBackup, e.g. "0 0 3 * * *"
}

// CNPGRecovery restores from the object store of the cluster named Source to TargetTime.
type CNPGRecovery struct {
	Source     string
	TargetTime string // RFC 3339 or PostgreSQL timestamp with zone
}

// CNPGPoolerArgs configures the PgBouncer Pooler in front of the primary.
type CNPGPoolerArgs struct {
	Name, Namespace, Cluster string
	Image, PullPolicy        string
	Instances                int
	DefaultPoolSize          int // server connections per user/database pair per pooler instance
	MaxClientConn            int
	Resources                Resources
}

// ValidateCNPG reports every bad field of a, each with its path under prefix and the fix.
func ValidateCNPG(prefix string, a CNPGArgs, p *CNPGPoolerArgs) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, field, fmt.Sprintf(format, args...)))
	}
	if a.Instances < 1 {
		bad("instances", "is %d; set 1 or more (lab: 2, one per worker)", a.Instances)
	}
	switch a.AntiAffinity {
	case "required":
	case "preferred":
		if a.Instances > 1 {
			bad("antiAffinity", `"preferred" lets %d instances share one node; set "required"`, a.Instances)
		}
	default:
		bad("antiAffinity", `is %q; set "required" or "preferred"`, a.AntiAffinity)
	}
	if a.SyncReplicas < 0 || (a.Instances > 0 && a.SyncReplicas > a.Instances-1) {
		bad("syncReplicas", "is %d; set 0 (asynchronous) to %d (instances - 1)", a.SyncReplicas, max(a.Instances-1, 0))
	}
	if a.SyncReplicas > 0 && a.SyncDurability != "required" && a.SyncDurability != "preferred" {
		bad("syncDurability", `is %q; set "required" (RPO 0, writes wait for a standby) or "preferred"`, a.SyncDurability)
	}
	tag := a.Image[strings.LastIndex(a.Image, ":")+1:]
	if !strings.Contains(a.Image, ":") || tag == "" || tag[0] < '1' || tag[0] > '9' {
		bad("image", "%q: the tag must start with the PostgreSQL major (e.g. :15.18-deb12u1), CNPG reads the version from it", a.Image)
	}
	if a.UID < 10000 || a.GID < 10000 {
		bad("uid", "uid/gid %d/%d; set 10000 or more (policy rule pod-high-uid-gid)", a.UID, a.GID)
	}
	b := a.Backup
	if !strings.HasPrefix(b.DestinationPath, "s3://") {
		bad("backup.destinationPath", "is %q; set s3://BUCKET/PREFIX/", b.DestinationPath)
	}
	if b.CredentialsSecret == "" {
		bad("backup.credentials", "no Secret with ACCESS_KEY_ID/ACCESS_SECRET_KEY; set the S3 credentials as Pulumi secrets")
	}
	if b.Retention == "" {
		bad("backup.retention", `is empty; set e.g. "14d" (the bucket grows forever otherwise)`)
	}
	if len(strings.Fields(b.Schedule)) != 6 {
		bad("backup.schedule", `%q: CNPG's schedule has six fields, seconds first (e.g. "0 0 3 * * *")`, b.Schedule)
	}
	if r := a.Recovery; r != nil && (r.Source == "" || r.TargetTime == "") {
		bad("recovery", "needs source and targetTime")
	}
	if i := a.Import; i != nil {
		if a.Recovery != nil {
			bad("import", "set import or recovery, not both: a Cluster bootstraps one way")
		}
		if i.Host == "" || i.Database == "" || i.User == "" || i.PasswordSecret == "" || i.PasswordKey == "" {
			bad("import", "needs host, database, user and the password's Secret and key of the server to migrate from")
		}
	}
	if p != nil {
		if p.Instances < 1 || p.DefaultPoolSize < 1 || p.MaxClientConn < p.DefaultPoolSize {
			bad("pooler", "instances %d, defaultPoolSize %d, maxClientConn %d: set instances and defaultPoolSize >= 1, maxClientConn >= defaultPoolSize",
				p.Instances, p.DefaultPoolSize, p.MaxClientConn)
		}
		// Server connections the poolers may open for the owner's pair, plus CNPG's and the
		// exporter's and the superuser reserve (docs/database.md, pool maths).
		if need := p.Instances*p.DefaultPoolSize + cnpgOwnConnections*a.Instances + 3 + 3; need > a.MaxConnections {
			bad("maxConnections", "%d is below what the pooler may open: %d poolers x %d + %d for replication, the instance manager, the exporter and the superuser reserve = %d",
				a.MaxConnections, p.Instances, p.DefaultPoolSize, cnpgOwnConnections*a.Instances+6, need)
		}
	}
	return errs
}

// cnpgOwnConnections is what CNPG itself holds per instance: a streaming replica's walsender and
// slot, and the instance manager's status connections.
const cnpgOwnConnections = 3

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func secretKey(name, key string) map[string]any { return map[string]any{"name": name, "key": key} }

func (a CNPGArgs) objectStore() map[string]any {
	s := map[string]any{
		"destinationPath": a.Backup.DestinationPath,
		"s3Credentials": map[string]any{
			"accessKeyId":     secretKey(a.Backup.CredentialsSecret, "ACCESS_KEY_ID"),
			"secretAccessKey": secretKey(a.Backup.CredentialsSecret, "ACCESS_SECRET_KEY"),
			"region":          secretKey(a.Backup.CredentialsSecret, "REGION"),
		},
		"wal":  map[string]any{"compression": "gzip"},
		"data": map[string]any{"compression": "gzip"},
	}
	if a.Backup.EndpointURL != "" {
		s["endpointURL"] = a.Backup.EndpointURL
	}
	return s
}

func cnpgResources(r Resources) map[string]any {
	req, lim := map[string]any{}, map[string]any{}
	for k, v := range map[string]string{"cpu": r.RequestsCPU, "memory": r.RequestsMemory, "ephemeral-storage": r.RequestsEphemeralStorage} {
		if v != "" {
			req[k] = v
		}
	}
	for k, v := range map[string]string{"cpu": r.LimitsCPU, "memory": r.LimitsMemory, "ephemeral-storage": r.LimitsEphemeralStorage} {
		if v != "" {
			lim[k] = v
		}
	}
	return map[string]any{"requests": req, "limits": lim}
}

// CNPGCluster is the Cluster object: TLS required (pg_hba rejects plain TCP before CNPG's own
// `host all all all` line), no superuser Secret, managed roles without superuser, backups.
func CNPGCluster(a CNPGArgs) map[string]any {
	roles := []any{}
	for _, r := range a.Roles {
		role := map[string]any{"name": r.Name, "login": true, "superuser": false, "ensure": "present",
			"passwordSecret": map[string]any{"name": r.PasswordSecret}}
		if len(r.InRoles) > 0 {
			in := []any{}
			for _, x := range r.InRoles {
				in = append(in, x)
			}
			role["inRoles"] = in
		}
		roles = append(roles, role)
	}
	hba := []any{"hostnossl all all all reject"}
	for _, r := range a.Roles {
		hba = append(hba, fmt.Sprintf("hostssl %s %s all scram-sha-256", a.Database, r.Name))
	}
	bootstrap := map[string]any{"initdb": map[string]any{"database": a.Database, "owner": a.Owner}}
	spec := map[string]any{
		"instances":             a.Instances,
		"imageName":             a.Image,
		"imagePullPolicy":       a.PullPolicy,
		"postgresUID":           a.UID,
		"postgresGID":           a.GID,
		"enableSuperuserAccess": false,
		"affinity":              map[string]any{"enablePodAntiAffinity": true, "podAntiAffinityType": a.AntiAffinity},
		"storage":               map[string]any{"storageClass": a.StorageClass, "size": a.StorageSize},
		"resources":             cnpgResources(a.Resources),
		"postgresql": map[string]any{
			"pg_hba": hba,
			"parameters": map[string]any{
				"max_connections":          fmt.Sprint(a.MaxConnections),
				"ssl_min_protocol_version": "TLSv1.2",
			},
		},
		"managed": map[string]any{"roles": roles},
		"backup": map[string]any{
			"retentionPolicy":   a.Backup.Retention,
			"barmanObjectStore": a.objectStore(),
		},
	}
	if a.SyncReplicas > 0 {
		spec["postgresql"].(map[string]any)["synchronous"] = map[string]any{
			"method": "any", "number": a.SyncReplicas, "dataDurability": a.SyncDurability,
		}
	}
	if r := a.Recovery; r != nil {
		bootstrap = map[string]any{"recovery": map[string]any{
			"source": "origin", "database": a.Database, "owner": a.Owner,
			"recoveryTarget": map[string]any{"targetTime": r.TargetTime},
		}}
		origin := a.objectStore()
		origin["serverName"] = r.Source
		spec["externalClusters"] = []any{map[string]any{"name": "origin", "barmanObjectStore": origin}}
	}
	if i := a.Import; i != nil {
		bootstrap["initdb"].(map[string]any)["import"] = map[string]any{
			"type": "microservice", "databases": []any{i.Database},
			"source": map[string]any{"externalCluster": "statefulset"},
		}
		spec["externalClusters"] = []any{map[string]any{
			"name": "statefulset",
			"connectionParameters": map[string]any{"host": i.Host, "user": i.User, "dbname": i.Database,
				"sslmode": orDefault(i.SSLMode, "prefer")},
			"password": secretKey(i.PasswordSecret, i.PasswordKey),
		}}
	}
	spec["bootstrap"] = bootstrap
	return map[string]any{
		"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
		"metadata": map[string]any{"name": a.Name, "namespace": a.Namespace},
		"spec":     spec,
	}
}

// CNPGScheduledBackup takes base backups of the Cluster on its schedule, from a standby when
// there is one (the primary otherwise).
func CNPGScheduledBackup(a CNPGArgs) map[string]any {
	return map[string]any{
		"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
		"metadata": map[string]any{"name": a.Name + "-daily", "namespace": a.Namespace},
		"spec": map[string]any{
			"schedule": a.Backup.Schedule, "cluster": map[string]any{"name": a.Name},
			"backupOwnerReference": "self", "target": "prefer-standby", "immediate": true,
		},
	}
}

// CNPGPooler is the PgBouncer Pooler in transaction mode in front of the primary (type rw).
// CNPG sets the pod's security context itself (uid 998, docs/database.md).
func CNPGPooler(p CNPGPoolerArgs) map[string]any {
	return map[string]any{
		"apiVersion": "postgresql.cnpg.io/v1", "kind": "Pooler",
		"metadata": map[string]any{"name": p.Name, "namespace": p.Namespace},
		"spec": map[string]any{
			"cluster":   map[string]any{"name": p.Cluster},
			"instances": p.Instances,
			"type":      "rw",
			"pgbouncer": map[string]any{
				"poolMode": "transaction",
				"parameters": map[string]any{
					"default_pool_size": fmt.Sprint(p.DefaultPoolSize),
					"max_client_conn":   fmt.Sprint(p.MaxClientConn),
				},
			},
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{
				"name": "pgbouncer", "image": p.Image, "imagePullPolicy": p.PullPolicy,
				"resources": cnpgResources(p.Resources),
			}}}},
		},
	}
}

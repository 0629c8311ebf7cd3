package apps

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/infralab/infralab/proof/images"
)

func TestPostgresStatefulSet(t *testing.T) {
	res := declare(t, offArgs())
	sts := find(t, res, "kubernetes:apps/v1:StatefulSet", "database", "postgres")
	spec := asMap(sts.get("spec", "template", "spec"))
	c := asMap(get(spec, "containers", 0))
	if c["image"] != "postgres:15.8-bookworm" {
		t.Errorf("image = %v", c["image"])
	}
	id := float64(DefaultPostgresID)
	if get(spec, "securityContext", "fsGroup") != id || get(c, "securityContext", "runAsUser") != id || get(c, "securityContext", "runAsGroup") != id {
		t.Errorf("postgres must run as %d:%d with fsGroup %d (the ids proof/images gives its postgres user): %v", DefaultPostgresID, DefaultPostgresID, DefaultPostgresID, spec["securityContext"])
	}
	mounts := map[string]string{}
	for _, m := range asList(c["volumeMounts"]) {
		mounts[get(m, "mountPath").(string)] = get(m, "name").(string)
	}
	wantMounts := map[string]string{"/var/lib/postgresql/data": "data", "/var/run/postgresql": "run", "/tmp": "tmp"}
	if !reflect.DeepEqual(mounts, wantMounts) {
		t.Errorf("mounts = %v, want %v", mounts, wantMounts)
	}
	for _, v := range asList(spec["volumes"]) {
		if get(v, "emptyDir") == nil {
			t.Errorf("pod volume %v is not an emptyDir", get(v, "name"))
		}
	}
	if cmd := get(c, "readinessProbe", "exec", "command", 0); cmd != "pg_isready" {
		t.Errorf("readinessProbe runs %v, want pg_isready", cmd)
	}
	// pg_isready fails during recovery; liveness must not restart a recovering database.
	if port := get(c, "livenessProbe", "tcpSocket", "port"); port != "postgres" || get(c, "livenessProbe", "exec") != nil {
		t.Errorf("livenessProbe = %v, want tcpSocket on the postgres port", c["livenessProbe"])
	}
	env := map[string]any{}
	for _, e := range asList(c["env"]) {
		env[get(e, "name").(string)] = e
	}
	if get(env["POSTGRES_PASSWORD"], "valueFrom", "secretKeyRef", "name") != "postgres-superuser" {
		t.Errorf("POSTGRES_PASSWORD = %v, want the postgres-superuser Secret", env["POSTGRES_PASSWORD"])
	}
	pvc := asMap(sts.get("spec", "volumeClaimTemplates", 0))
	if get(pvc, "spec", "storageClassName") != "infralab-local" || get(pvc, "spec", "resources", "requests", "storage") != "10Gi" {
		t.Errorf("claim template = %v", pvc)
	}
	svc := find(t, res, "kubernetes:core/v1:Service", "database", "postgres")
	if svc.get("spec", "clusterIP") != "None" || sts.get("spec", "serviceName") != "postgres" {
		t.Error("postgres needs a headless Service named by the StatefulSet")
	}
	pdb := find(t, res, "kubernetes:policy/v1:PodDisruptionBudget", "database", "postgres")
	if pdb.get("spec", "minAvailable") != float64(1) {
		t.Errorf("postgres PDB = %v", pdb.get("spec"))
	}

	// Local storage: the class and one PV pinned to the node and reserved for the claim.
	sc := find(t, res, "kubernetes:storage.k8s.io/v1:StorageClass", "", "infralab-local")
	if sc.get("provisioner") != "kubernetes.io/no-provisioner" || sc.get("volumeBindingMode") != "Immediate" {
		t.Errorf("storage class = %v", sc.obj())
	}
	pv := find(t, res, "kubernetes:core/v1:PersistentVolume", "", "database-postgres-data")
	got := []any{
		pv.get("spec", "local", "path"),
		pv.get("spec", "nodeAffinity", "required", "nodeSelectorTerms", 0, "matchExpressions", 0, "values", 0),
		pv.get("spec", "claimRef", "name"), pv.get("spec", "claimRef", "namespace"),
		pv.get("spec", "storageClassName"), pv.get("spec", "persistentVolumeReclaimPolicy"),
	}
	want := []any{"/var/lib/infralab/postgres", "worker-1", "data-postgres-0", "database", "infralab-local", "Retain"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("local PV = %v, want %v", got, want)
	}
	// The claim is the program's own, pre-bound to the volume, so destroy deletes it before the
	// volume instead of leaving the volume's pv-protection finalizer waiting.
	claim := find(t, res, "kubernetes:core/v1:PersistentVolumeClaim", "database", "data-postgres-0")
	if claim.get("spec", "volumeName") != "database-postgres-data" || claim.get("spec", "storageClassName") != "infralab-local" {
		t.Errorf("claim = %v", claim.obj())
	}

	// A replicated class instead: no class or PV of ours.
	a := offArgs()
	a.Postgres.Local = nil
	a.Postgres.StorageClass = "longhorn"
	res = declare(t, a)
	if len(ofType(res, "kubernetes:storage.k8s.io/v1:StorageClass"))+len(ofType(res, "kubernetes:core/v1:PersistentVolume")) != 0 {
		t.Error("a named class must not declare local storage")
	}
	sts = find(t, res, "kubernetes:apps/v1:StatefulSet", "database", "postgres")
	if sts.get("spec", "volumeClaimTemplates", 0, "spec", "storageClassName") != "longhorn" {
		t.Error("claim does not use the configured class")
	}
}

func TestAPIDeployment(t *testing.T) {
	a := offArgs()
	a.API.Replicas = 3
	a.API.PoolSize = 7
	res := declare(t, a)
	d := find(t, res, "kubernetes:apps/v1:Deployment", "healthcare", "healthcare-api")
	spec := asMap(d.get("spec", "template", "spec"))
	c := asMap(get(spec, "containers", 0))
	got := map[string]any{
		"replicas":       d.get("spec", "replicas"),
		"maxUnavailable": d.get("spec", "strategy", "rollingUpdate", "maxUnavailable"),
		"port":           get(c, "ports", 0, "containerPort"),
		"readiness":      get(c, "readinessProbe", "httpGet", "path"),
		"liveness":       get(c, "livenessProbe", "httpGet", "path"),
		"spread":         get(spec, "topologySpreadConstraints", 0, "topologyKey"),
	}
	want := map[string]any{
		"replicas": float64(3), "maxUnavailable": float64(0), "port": float64(8080),
		"readiness": "/readyz", "liveness": "/healthz", "spread": "kubernetes.io/hostname",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("api deployment = %v, want %v", got, want)
	}
	env := map[string]any{}
	for _, e := range asList(c["env"]) {
		env[get(e, "name").(string)] = e
	}
	for name, val := range map[string]string{"PORT": "8080", "DB_HOST": "postgres.database.svc", "DB_PORT": "5432", "DB_NAME": "healthcare", "DB_POOL_SIZE": "7"} {
		if get(env[name], "value") != val {
			t.Errorf("env %s = %v, want %s", name, env[name], val)
		}
	}
	for _, name := range []string{"DB_USER", "DB_PASSWORD"} {
		if get(env[name], "valueFrom", "secretKeyRef", "name") != "healthcare-api-db" {
			t.Errorf("env %s = %v, want a secretKeyRef to healthcare-api-db", name, env[name])
		}
	}
	svc := find(t, res, "kubernetes:core/v1:Service", "healthcare", "healthcare-api")
	if svc.get("spec", "ports", 0, "port") != float64(8080) || svc.get("spec", "type") != "ClusterIP" {
		t.Errorf("api service = %v", svc.get("spec"))
	}
	find(t, res, "kubernetes:policy/v1:PodDisruptionBudget", "healthcare", "healthcare-api")

	// The role job caps the api's connections at its pool budget: (3+1)*7+2.
	job := find(t, res, "kubernetes:batch/v1:Job", "database", "postgres-roles")
	for _, e := range asList(job.get("spec", "template", "spec", "containers", 0, "env")) {
		if get(e, "name") == "API_DB_CONNECTION_LIMIT" && get(e, "value") != "30" {
			t.Errorf("API_DB_CONNECTION_LIMIT = %v, want 30", get(e, "value"))
		}
	}
}

func TestQuotasAndLimitRanges(t *testing.T) {
	res := declare(t, baseArgs())
	for _, ns := range []string{"healthcare", "database"} {
		q := find(t, res, "kubernetes:core/v1:ResourceQuota", ns, "quota")
		for _, k := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "pods"} {
			if q.get("spec", "hard", k) == nil {
				t.Errorf("%s quota lacks %s", ns, k)
			}
		}
		lr := find(t, res, "kubernetes:core/v1:LimitRange", ns, "limits")
		if lr.get("spec", "limits", 0, "default", "memory") == nil || lr.get("spec", "limits", 0, "defaultRequest", "cpu") == nil {
			t.Errorf("%s LimitRange has no container defaults", ns)
		}
	}
	if n := len(ofType(res, "kubernetes:core/v1:ResourceQuota")); n != 2 {
		t.Errorf("quotas = %d, want one per app namespace (2)", n)
	}
}

// A rotated password must reach the running pods, not only the database: the pod template of
// each workload that reads it changes, and only those.
func TestPasswordRotationRollsItsReaders(t *testing.T) {
	template := func(res []recorded, ns, name string) any {
		return find(t, res, "kubernetes:apps/v1:Deployment", ns, name).get("spec", "template", "metadata", "annotations", annotationCredentials)
	}
	before := declare(t, standaloneArgs())
	rotated := standaloneArgs()
	rotated.Secrets.APIDatabasePassword = pulumi.String("rotated-api-password")
	after := declare(t, rotated)
	if template(before, "healthcare", "healthcare-api") == nil {
		t.Fatal("the api's pod template carries no credentials digest")
	}
	if template(before, "healthcare", "healthcare-api") == template(after, "healthcare", "healthcare-api") {
		t.Error("rotating the api's password leaves its pod template unchanged: running pods keep the old one")
	}
	if template(before, "database", "postgres-exporter") != template(after, "database", "postgres-exporter") {
		t.Error("rotating the api's password rolls the exporter too")
	}
}

// The digest on a pod template is readable by anyone who may get the Deployment, so it must not
// be a plain hash of the password it rolls for.
func TestCredentialsDigestIsKeyed(t *testing.T) {
	res := declare(t, standaloneArgs())
	got := find(t, res, "kubernetes:apps/v1:Deployment", "healthcare", "healthcare-api").
		get("spec", "template", "metadata", "annotations", annotationCredentials)
	pw := apiPassword
	for _, plain := range []string{pw, fmt.Sprintf("%d:%s;", len(pw), pw)} {
		sum := sha256.Sum256([]byte(plain))
		if got == hex.EncodeToString(sum[:]) {
			t.Fatalf("the annotation is sha256(%q): guessable from the Deployment alone", plain)
		}
	}
	if s, _ := got.(string); len(s) != 64 {
		t.Fatalf("annotation = %v, want a 64-hex-digit HMAC", got)
	}
}

// The postgres image's files belong to its user; the pods must run as that user.
func TestPostgresIDsMatchTheImage(t *testing.T) {
	if DefaultPostgresID != images.PostgresID {
		t.Fatalf("apps runs PostgreSQL as %d, proof/images makes its files %d's", DefaultPostgresID, images.PostgresID)
	}
}

package apps

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

//go:embed sql/roles.sql
var rolesSQL string

// applyRolesScript is the Job's command: it waits (bounded, with a log line) for PostgreSQL to
// accept connections, then runs roles.sql, so the Job never fails into the controller's back-off.
//
//go:embed sql/apply-roles.sh
var applyRolesScript string

// rolesWaitSeconds bounds that wait; past it the pod fails and the Job retries (BackoffLimit).
const rolesWaitSeconds = 300

const rolesSecret = "postgres-roles"

// ensureDatabaseRoles runs sql/roles.sql with psql from the Postgres image in a Job. The Job is
// replaced whenever the script or a password changes, so roles always match the Secrets.
func (p *builder) ensureDatabaseRoles() error {
	a := p.args
	ns := a.Namespaces.Database
	if _, err := p.secret(rolesSecret, ns, "database", map[string]pulumi.StringInput{
		"api-password":      a.Secrets.APIDatabasePassword,
		"exporter-password": a.Secrets.ExporterPassword,
	}); err != nil {
		return err
	}
	cm, err := corev1.NewConfigMap(p.ctx, ns+"-"+rolesJobName, &corev1.ConfigMapArgs{
		Metadata: p.meta(rolesJobName, ns, "database", false),
		Data:     pulumi.StringMap{"roles.sql": pulumi.String(rolesSQL), "apply-roles.sh": pulumi.String(applyRolesScript)},
	}, p.opts(ns)...)
	if err != nil {
		return err
	}
	sa, err := p.serviceAccount(rolesJobName, ns, "database")
	if err != nil {
		return err
	}

	// A digest of the passwords drives replacement; it stays a Pulumi secret in state and never
	// reaches the cluster.
	trigger := credentialsDigest(a.Secrets.PostgresPassword, a.Secrets.PostgresPassword, a.Secrets.APIDatabasePassword, a.Secrets.ExporterPassword)
	scriptSum := sha256.Sum256([]byte(rolesSQL + applyRolesScript))
	connLimit := (a.API.Replicas+1)*a.API.PoolSize + 2

	meta := p.meta(rolesJobName, ns, "database", true)
	_, err = batchv1.NewJob(p.ctx, ns+"-"+rolesJobName, &batchv1.JobArgs{
		Metadata: meta,
		Spec: &batchv1.JobSpecArgs{
			// The script waits for Postgres itself; retries are for real failures only.
			BackoffLimit:          pulumi.Int(10),
			ActiveDeadlineSeconds: pulumi.Int(1200),
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels:      labels(rolesJobName, "database"),
					Annotations: pulumi.StringMap{"infralab.dev/script-sha256": pulumi.String(hex.EncodeToString(scriptSum[:]))},
				},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName:           sa.Metadata.Name(),
					AutomountServiceAccountToken: pulumi.Bool(false),
					EnableServiceLinks:           pulumi.Bool(false),
					RestartPolicy:                pulumi.String("OnFailure"),
					SecurityContext:              podSecurity(a.Postgres.UID, a.Postgres.GID),
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String("psql"),
						Image:           pulumi.String(a.Postgres.Image),
						ImagePullPolicy: pulumi.String(a.Postgres.PullPolicy),
						Command:         pulumi.ToStringArray([]string{"sh", "/sql/apply-roles.sh"}),
						Env: corev1.EnvVarArray{
							env("PGHOST", postgresName),
							env("PGPORT", fmt.Sprint(postgresPort)),
							env("PGUSER", "postgres"),
							env("PGDATABASE", "postgres"),
							env("PGCONNECT_TIMEOUT", "5"),
							env("PG_WAIT_SECONDS", fmt.Sprint(rolesWaitSeconds)),
							env("ROLES_SQL", "/sql/roles.sql"),
							env("HOME", "/tmp"),
							secretEnv("PGPASSWORD", postgresSecret, "password"),
							env("API_DB_USER", a.API.DatabaseUser),
							env("API_DB_NAME", a.API.DatabaseName),
							env("API_DB_CONNECTION_LIMIT", fmt.Sprint(connLimit)),
							secretEnv("API_DB_PASSWORD", rolesSecret, "api-password"),
							env("EXPORTER_USER", exporterRole),
							secretEnv("EXPORTER_PASSWORD", rolesSecret, "exporter-password"),
						},
						SecurityContext: containerSecurity(a.Postgres.UID, a.Postgres.GID),
						Resources:       resources(jobResources),
						VolumeMounts:    corev1.VolumeMountArray{mount("sql", "/sql", true), mount("tmp", "/tmp", false)},
					}},
					Volumes: corev1.VolumeArray{
						corev1.VolumeArgs{Name: pulumi.String("sql"), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: cm.Metadata.Name()}},
						emptyDir("tmp", "16Mi"),
					},
				},
			},
		},
	}, p.opts(ns,
		pulumi.DependsOn([]pulumi.Resource{p.postgres, cm}),
		pulumi.ReplacementTrigger(trigger),
		// A Job's template is immutable; any change means a new run.
		pulumi.ReplaceOnChanges([]string{"spec"}),
		pulumi.DeleteBeforeReplace(true),
	)...)
	return err
}

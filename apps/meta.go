package apps

import (
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Annotations and labels other parts of infralab (the policy pack, the docs) rely on.
const (
	// AnnotationPSAExceptionReason explains why a namespace enforces less than restricted. The
	// policy pack quotes it in its namespace-pod-security violation, with the pack config entry to
	// add, but never treats it as an exception: the pack config alone grants those, because a
	// program must not be able to waive the gate that checks it.
	AnnotationPSAExceptionReason = "infralab.dev/psa-exception-reason"
	// AnnotationNeedsAPIAccess opts a workload in to a ServiceAccount token; its value is the
	// reason. The policy pack reads it from the pod template's or the workload's metadata, not
	// from the ServiceAccount. None of this layer's own workloads sets it; the chart's pods that
	// talk to the API do (chart_values.go).
	AnnotationNeedsAPIAccess = "infralab.dev/needs-api-access"
	annotationSkipAwait      = "pulumi.com/skipAwait"
	labelName                = "app.kubernetes.io/name"
	labelPartOf              = "app.kubernetes.io/part-of"
	labelComponent           = "app.kubernetes.io/component"
	labelManagedBy           = "app.kubernetes.io/managed-by"
)

// Workload names, also their ServiceAccount, Service and selector label values.
const (
	apiName        = "healthcare-api"
	postgresName   = "postgres"
	exporterName   = "postgres-exporter"
	rolesJobName   = "postgres-roles"
	prometheusName = "prometheus"
	exporterRole   = "postgres_exporter"
	apiUID         = 10001
	prometheusUID  = 65534
	exporterUID    = 65534
	// DefaultPostgresID is PostgreSQL's default uid and gid (PostgresArgs.UID).
	DefaultPostgresID = 10999
	exporterPort      = 9187
	postgresPort      = 5432
	prometheusPort    = 9090

	ksmName          = "kube-state-metrics"
	ksmPort          = 8080
	ksmTelemetryPort = 8081
	nodeExporterName = "node-exporter"
	nodeExporterPort = 9100
	alertmanagerName = "alertmanager"
	alertmanagerPort = 9093
	// nobodyUID runs the monitoring components (nobody in their Debian-built images).
	nobodyUID = 65534
)

// jobResources are the role job's requests and limits; it runs one psql for a second.
var jobResources = Resources{"50m", "32Mi", "200m", "64Mi", "16Mi", "64Mi"}

func labels(name, component string) pulumi.StringMap {
	return pulumi.StringMap{
		labelName:      pulumi.String(name),
		labelComponent: pulumi.String(component),
		labelPartOf:    pulumi.String("infralab"),
		labelManagedBy: pulumi.String("pulumi"),
	}
}

func selector(name string) pulumi.StringMap {
	return pulumi.StringMap{labelName: pulumi.String(name)}
}

// meta builds ObjectMeta. awaited marks objects whose readiness needs a kubelet, so SkipAwait applies.
func (p *builder) meta(name, ns, component string, awaited bool) metav1.ObjectMetaArgs {
	m := metav1.ObjectMetaArgs{
		Name:   pulumi.String(name),
		Labels: labels(name, component),
	}
	if ns != "" {
		m.Namespace = pulumi.String(ns)
	}
	if awaited && p.args.SkipAwait {
		m.Annotations = pulumi.StringMap{annotationSkipAwait: pulumi.String("true")}
	}
	return m
}

// serviceMeta builds a Service's ObjectMeta, always without the provider's await. That await
// proves endpoints exist, but waits a fixed 10 s after every Endpoints change for them to settle
// (pulumi-kubernetes provider/v4 pkg/await/service.go: `time.Sleep(10 * time.Second)` in
// processEndpointEvent), so every Service reported ready ~10 s after its pods were. Each of this
// layer's Services selects the pods of a workload that is awaited itself (Deployment, StatefulSet
// or DaemonSet ready replicas; TestEveryServiceSelectsAnAwaitedWorkload), and that is when its
// endpoints are ready.
func (p *builder) serviceMeta(name, ns, component string) metav1.ObjectMetaArgs {
	m := p.meta(name, ns, component, false)
	m.Annotations = pulumi.StringMap{annotationSkipAwait: pulumi.String("true")}
	return m
}

// podSecurity is the pod-level half of the hardened context every workload uses.
func podSecurity(uid, gid int64) *corev1.PodSecurityContextArgs {
	return &corev1.PodSecurityContextArgs{
		RunAsNonRoot:        pulumi.Bool(true),
		RunAsUser:           pulumi.Int(int(uid)),
		RunAsGroup:          pulumi.Int(int(gid)),
		FsGroup:             pulumi.Int(int(gid)),
		FsGroupChangePolicy: pulumi.String("OnRootMismatch"),
		SeccompProfile:      &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// containerSecurity is the hardened container context: Pod Security restricted plus a read-only
// root filesystem and an explicit non-root uid/gid.
func containerSecurity(uid, gid int64) *corev1.SecurityContextArgs {
	return &corev1.SecurityContextArgs{
		RunAsNonRoot:             pulumi.Bool(true),
		RunAsUser:                pulumi.Int(int(uid)),
		RunAsGroup:               pulumi.Int(int(gid)),
		AllowPrivilegeEscalation: pulumi.Bool(false),
		Privileged:               pulumi.Bool(false),
		ReadOnlyRootFilesystem:   pulumi.Bool(true),
		Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
		SeccompProfile:           &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

func resources(r Resources) *corev1.ResourceRequirementsArgs {
	return &corev1.ResourceRequirementsArgs{
		Requests: pulumi.StringMap{"cpu": pulumi.String(r.RequestsCPU), "memory": pulumi.String(r.RequestsMemory),
			"ephemeral-storage": pulumi.String(r.RequestsEphemeralStorage)},
		Limits: pulumi.StringMap{"cpu": pulumi.String(r.LimitsCPU), "memory": pulumi.String(r.LimitsMemory),
			"ephemeral-storage": pulumi.String(r.LimitsEphemeralStorage)},
	}
}

func emptyDir(name, sizeLimit string) corev1.VolumeArgs {
	return corev1.VolumeArgs{
		Name:     pulumi.String(name),
		EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String(sizeLimit)},
	}
}

func mount(name, path string, readOnly bool) corev1.VolumeMountArgs {
	return corev1.VolumeMountArgs{Name: pulumi.String(name), MountPath: pulumi.String(path), ReadOnly: pulumi.Bool(readOnly)}
}

func secretEnv(name, secret, key string) corev1.EnvVarArgs {
	return corev1.EnvVarArgs{
		Name: pulumi.String(name),
		ValueFrom: &corev1.EnvVarSourceArgs{SecretKeyRef: &corev1.SecretKeySelectorArgs{
			Name: pulumi.String(secret), Key: pulumi.String(key),
		}},
	}
}

func env(name, value string) corev1.EnvVarArgs {
	return corev1.EnvVarArgs{Name: pulumi.String(name), Value: pulumi.String(value)}
}

// serviceAccount declares a workload's own account without an API token: none of our workloads
// talks to the Kubernetes API.
func (p *builder) serviceAccount(name, ns, component string) (*corev1.ServiceAccount, error) {
	return corev1.NewServiceAccount(p.ctx, ns+"-"+name, &corev1.ServiceAccountArgs{
		Metadata:                     p.meta(name, ns, component, false),
		AutomountServiceAccountToken: pulumi.Bool(false),
	}, p.opts(ns)...)
}

// secret declares an Opaque Secret whose every value is a Pulumi secret.
func (p *builder) secret(name, ns, component string, data map[string]pulumi.StringInput) (*corev1.Secret, error) {
	sd := pulumi.StringMap{}
	for k, v := range data {
		sd[k] = pulumi.ToSecret(v.ToStringOutput()).(pulumi.StringOutput)
	}
	return corev1.NewSecret(p.ctx, ns+"-"+name, &corev1.SecretArgs{
		Metadata:   p.meta(name, ns, component, false),
		Type:       pulumi.String("Opaque"),
		StringData: sd,
	}, p.opts(ns)...)
}

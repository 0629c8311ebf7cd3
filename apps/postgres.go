package apps

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	storagev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/storage/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const (
	postgresSecret = "postgres-superuser"
	pgDataMount    = "/var/lib/postgresql/data"
	// PGDATA is a subdirectory: the volume root may hold lost+found, which initdb refuses.
	pgData = pgDataMount + "/pgdata"
)

// ensurePostgres declares storage, the superuser Secret, the headless Service, the StatefulSet
// and its disruption budget.
func (p *builder) ensurePostgres() error {
	a := p.args
	ns := a.Namespaces.Database
	claim, err := p.ensurePostgresStorage()
	if err != nil {
		return err
	}
	if _, err := p.secret(postgresSecret, ns, "database", map[string]pulumi.StringInput{
		"password": a.Secrets.PostgresPassword,
	}); err != nil {
		return err
	}
	stsDeps := []pulumi.Resource{}
	if claim != nil {
		stsDeps = append(stsDeps, claim)
	}
	sa, err := p.serviceAccount(postgresName, ns, "database")
	if err != nil {
		return err
	}
	svc, err := corev1.NewService(p.ctx, ns+"-"+postgresName, &corev1.ServiceArgs{
		Metadata: p.serviceMeta(postgresName, ns, "database"),
		Spec: &corev1.ServiceSpecArgs{
			ClusterIP: pulumi.String("None"),
			Selector:  selector(postgresName),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("postgres"), Port: pulumi.Int(postgresPort), TargetPort: pulumi.String("postgres"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, p.opts(ns)...)
	if err != nil {
		return err
	}

	pgIsReady := &corev1.ExecActionArgs{Command: pulumi.StringArray{
		pulumi.String("pg_isready"), pulumi.String("-U"), pulumi.String("postgres"),
		pulumi.String("-h"), pulumi.String("127.0.0.1"), pulumi.String("-p"), pulumi.String(fmt.Sprint(postgresPort)),
	}}
	uid, gid := a.Postgres.UID, a.Postgres.GID
	sts, err := appsv1.NewStatefulSet(p.ctx, ns+"-"+postgresName, &appsv1.StatefulSetArgs{
		Metadata: p.meta(postgresName, ns, "database", true),
		Spec: &appsv1.StatefulSetSpecArgs{
			ServiceName:         pulumi.String(postgresName),
			Replicas:            pulumi.Int(1),
			PodManagementPolicy: pulumi.String("OrderedReady"),
			Selector:            &metav1.LabelSelectorArgs{MatchLabels: selector(postgresName)},
			UpdateStrategy:      &appsv1.StatefulSetUpdateStrategyArgs{Type: pulumi.String("RollingUpdate")},
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs{
				// Data outlives the StatefulSet: deleting the workload must never delete the database.
				WhenDeleted: pulumi.String("Retain"), WhenScaled: pulumi.String("Retain"),
			},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels(postgresName, "database")},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName:            sa.Metadata.Name(),
					AutomountServiceAccountToken:  pulumi.Bool(false),
					EnableServiceLinks:            pulumi.Bool(false),
					SecurityContext:               podSecurity(uid, gid),
					TerminationGracePeriodSeconds: pulumi.Int(60),
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String(postgresName),
						Image:           pulumi.String(a.Postgres.Image),
						ImagePullPolicy: pulumi.String(a.Postgres.PullPolicy),
						Args: pulumi.StringArray{
							pulumi.String("-c"), pulumi.Sprintf("max_connections=%d", a.Postgres.MaxConnections),
							pulumi.String("-c"), pulumi.String("password_encryption=scram-sha-256"),
						},
						Env: corev1.EnvVarArray{
							env("PGDATA", pgData),
							secretEnv("POSTGRES_PASSWORD", postgresSecret, "password"),
						},
						Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
							Name: pulumi.String("postgres"), ContainerPort: pulumi.Int(postgresPort), Protocol: pulumi.String("TCP"),
						}},
						SecurityContext: containerSecurity(uid, gid),
						Resources:       resources(a.Postgres.Resources),
						// A 1 s startup probe (up to 10 min for initdb) reports the pod ready within a
						// second of the server accepting connections; the kubelet runs the readiness
						// probe right after it succeeds. Liveness starts only then, so it needs no delay.
						StartupProbe: &corev1.ProbeArgs{
							Exec: pgIsReady, PeriodSeconds: pulumi.Int(1), TimeoutSeconds: pulumi.Int(5), FailureThreshold: pulumi.Int(600),
						},
						ReadinessProbe: &corev1.ProbeArgs{
							Exec: pgIsReady, PeriodSeconds: pulumi.Int(10), TimeoutSeconds: pulumi.Int(5),
						},
						// Liveness asks only whether the postmaster still listens: pg_isready also fails
						// during crash recovery or while connections are refused, and a restart then
						// would start the recovery over (policy rule pod-probes-distinct).
						LivenessProbe: &corev1.ProbeArgs{
							// After the startup probe, so no initial delay is needed.
							TcpSocket:     &corev1.TCPSocketActionArgs{Port: pulumi.String("postgres")},
							PeriodSeconds: pulumi.Int(20), TimeoutSeconds: pulumi.Int(5), FailureThreshold: pulumi.Int(6),
						},
						VolumeMounts: corev1.VolumeMountArray{
							mount("data", pgDataMount, false),
							// Postgres writes its socket and lock file here and temp files to /tmp.
							mount("run", "/var/run/postgresql", false),
							mount("tmp", "/tmp", false),
						},
					}},
					Volumes: corev1.VolumeArray{emptyDir("run", "16Mi"), emptyDir("tmp", "256Mi")},
				},
			},
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{corev1.PersistentVolumeClaimTypeArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("data"), Labels: selector(postgresName)},
				Spec: &corev1.PersistentVolumeClaimSpecArgs{
					AccessModes:      pulumi.StringArray{pulumi.String("ReadWriteOnce")},
					StorageClassName: pulumi.String(a.Postgres.StorageClass),
					Resources: &corev1.VolumeResourceRequirementsArgs{
						Requests: pulumi.StringMap{"storage": pulumi.String(a.Postgres.StorageSize)},
					},
				},
			}},
		},
	}, p.opts(ns, pulumi.DependsOn(append(stsDeps, svc)))...)
	if err != nil {
		return err
	}
	p.postgres = sts

	// One instance on node-bound storage cannot move: a drain must stop and ask rather than
	// silently take the database down.
	_, err = policyv1.NewPodDisruptionBudget(p.ctx, ns+"-"+postgresName, &policyv1.PodDisruptionBudgetArgs{
		Metadata: p.meta(postgresName, ns, "database", false),
		Spec: &policyv1.PodDisruptionBudgetSpecArgs{
			MinAvailable: pulumi.Int(1),
			Selector:     &metav1.LabelSelectorArgs{MatchLabels: selector(postgresName)},
		},
	}, p.opts(ns)...)
	return err
}

// ensurePostgresStorage declares the local StorageClass, a PersistentVolume bound to one node and
// the StatefulSet's claim pre-bound to it, when the args ask for local storage. The class and the
// volume are cluster-scoped by Kubernetes design; nothing else here is.
//
// The claim is declared here rather than left to the StatefulSet's template so that `destroy`
// deletes it between the StatefulSet and the volume: a claim the program does not own would keep
// the volume's pv-protection finalizer until its namespace is gone, and the volume's delete would
// wait for that forever.
func (p *builder) ensurePostgresStorage() (pulumi.Resource, error) {
	a := p.args
	l := a.Postgres.Local
	if l == nil {
		return nil, nil
	}
	sc, err := storagev1.NewStorageClass(p.ctx, a.Postgres.StorageClass, &storagev1.StorageClassArgs{
		Metadata:    p.meta(a.Postgres.StorageClass, "", "storage", false),
		Provisioner: pulumi.String("kubernetes.io/no-provisioner"),
		// The one claim of this class is pre-bound to its volume (claimRef + volumeName), so it binds
		// at once and the scheduler follows the volume's node affinity. Immediate also gives the
		// provider's claim await a Bound phase to wait for.
		VolumeBindingMode: pulumi.String("Immediate"),
		ReclaimPolicy:     pulumi.String("Retain"),
	}, p.opts("")...)
	if err != nil {
		return nil, err
	}
	pvName := fmt.Sprintf("%s-%s-data", a.Namespaces.Database, postgresName)
	pv, err := corev1.NewPersistentVolume(p.ctx, pvName, &corev1.PersistentVolumeArgs{
		Metadata: p.meta(pvName, "", "storage", true),
		Spec: &corev1.PersistentVolumeSpecArgs{
			Capacity:                      pulumi.StringMap{"storage": pulumi.String(a.Postgres.StorageSize)},
			AccessModes:                   pulumi.StringArray{pulumi.String("ReadWriteOnce")},
			PersistentVolumeReclaimPolicy: pulumi.String("Retain"),
			StorageClassName:              pulumi.String(a.Postgres.StorageClass),
			VolumeMode:                    pulumi.String("Filesystem"),
			Local:                         &corev1.LocalVolumeSourceArgs{Path: pulumi.String(l.Path)},
			// Reserved for the StatefulSet's claim so no other claim can take the database volume.
			ClaimRef: &corev1.ObjectReferenceArgs{
				Namespace: pulumi.String(a.Namespaces.Database),
				Name:      pulumi.Sprintf("data-%s-0", postgresName),
			},
			NodeAffinity: &corev1.VolumeNodeAffinityArgs{Required: &corev1.NodeSelectorArgs{
				NodeSelectorTerms: corev1.NodeSelectorTermArray{corev1.NodeSelectorTermArgs{
					MatchExpressions: corev1.NodeSelectorRequirementArray{corev1.NodeSelectorRequirementArgs{
						Key: pulumi.String("kubernetes.io/hostname"), Operator: pulumi.String("In"),
						Values: pulumi.StringArray{pulumi.String(l.NodeName)},
					}},
				}},
			}},
		},
	}, p.opts("", pulumi.DependsOn([]pulumi.Resource{sc}))...)
	if err != nil {
		return nil, err
	}
	ns := a.Namespaces.Database
	claimName := fmt.Sprintf("data-%s-0", postgresName)
	claimMeta := p.meta(claimName, ns, "database", true)
	claimMeta.Labels = selector(postgresName)
	return corev1.NewPersistentVolumeClaim(p.ctx, ns+"-"+claimName, &corev1.PersistentVolumeClaimArgs{
		Metadata: claimMeta,
		Spec: &corev1.PersistentVolumeClaimSpecArgs{
			AccessModes:      pulumi.StringArray{pulumi.String("ReadWriteOnce")},
			StorageClassName: pulumi.String(a.Postgres.StorageClass),
			VolumeName:       pulumi.String(pvName),
			Resources: &corev1.VolumeResourceRequirementsArgs{
				Requests: pulumi.StringMap{"storage": pulumi.String(a.Postgres.StorageSize)},
			},
		},
	}, p.opts(ns, pulumi.DependsOn([]pulumi.Resource{pv}))...)
}

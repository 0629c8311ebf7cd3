package apps

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// nodeExporterResources matches the chart's node-exporter (chart_values.go).
var standaloneNodeExporterResources = Resources{"20m", "32Mi", "200m", "64Mi", "16Mi", "64Mi"}

// ensureNodeExporter runs node-exporter on every node in its own namespace, the one workload
// with host access (the documented Pod Security exception): the host's PID namespace and
// network, and /proc, /sys and / read-only. It stays non-root, without capabilities, with a
// read-only root and seccomp; and it listens on the node's own address only (status.hostIP),
// never on every address of the host.
func (p *builder) ensureNodeExporter() error {
	a := p.args
	ns := a.Namespaces.NodeExporter
	sa, err := p.serviceAccount(nodeExporterName, ns, "monitoring")
	if err != nil {
		return err
	}
	hostPath := func(name, path string) corev1.VolumeArgs {
		return corev1.VolumeArgs{Name: pulumi.String(name), HostPath: &corev1.HostPathVolumeSourceArgs{Path: pulumi.String(path), Type: pulumi.String("Directory")}}
	}
	// No mount propagation (HostToContainer): it needs the host's mounts to be shared or slave,
	// and runc refuses a private /proc ("is not a shared or slave mount"), as on the embedded node.
	// The bind is recursive, so the host's mounts at pod start are all visible.
	hostMount := func(name, path string) corev1.VolumeMountArgs {
		return corev1.VolumeMountArgs{Name: pulumi.String(name), MountPath: pulumi.String(path), ReadOnly: pulumi.Bool(true)}
	}
	_, err = appsv1.NewDaemonSet(p.ctx, ns+"-"+nodeExporterName, &appsv1.DaemonSetArgs{
		Metadata: p.meta(nodeExporterName, ns, "monitoring", true),
		Spec: &appsv1.DaemonSetSpecArgs{
			Selector: &metav1.LabelSelectorArgs{MatchLabels: selector(nodeExporterName)},
			UpdateStrategy: &appsv1.DaemonSetUpdateStrategyArgs{
				Type: pulumi.String("RollingUpdate"),
			},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels(nodeExporterName, "monitoring")},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName:           sa.Metadata.Name(),
					AutomountServiceAccountToken: pulumi.Bool(false),
					EnableServiceLinks:           pulumi.Bool(false),
					HostNetwork:                  pulumi.Bool(true),
					HostPID:                      pulumi.Bool(true),
					SecurityContext:              podSecurity(nobodyUID, nobodyUID),
					// Every node, the tainted control planes too: their host metrics count as well.
					Tolerations: corev1.TolerationArray{corev1.TolerationArgs{Operator: pulumi.String("Exists")}},
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String(nodeExporterName),
						Image:           pulumi.String(a.Monitoring.NodeExporterImage),
						ImagePullPolicy: pulumi.String(a.Monitoring.ComponentPullPolicy),
						Env: corev1.EnvVarArray{corev1.EnvVarArgs{
							Name:      pulumi.String("HOST_IP"),
							ValueFrom: &corev1.EnvVarSourceArgs{FieldRef: &corev1.ObjectFieldSelectorArgs{FieldPath: pulumi.String("status.hostIP")}},
						}},
						Args: pulumi.ToStringArray([]string{
							fmt.Sprintf("--web.listen-address=$(HOST_IP):%d", nodeExporterPort),
							"--path.procfs=/host/proc",
							"--path.sysfs=/host/sys",
							"--path.rootfs=/host/root",
							// Container and kubelet mounts are the pods' business (cAdvisor reports them).
							"--collector.filesystem.mount-points-exclude=^/(dev|proc|run|sys|var/lib/kubelet|var/lib/containerd)($|/)",
						}),
						Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
							Name: pulumi.String("metrics"), ContainerPort: pulumi.Int(nodeExporterPort), Protocol: pulumi.String("TCP"),
						}},
						SecurityContext: containerSecurity(nobodyUID, nobodyUID),
						Resources:       resources(standaloneNodeExporterResources),
						ReadinessProbe: &corev1.ProbeArgs{
							HttpGet:             &corev1.HTTPGetActionArgs{Path: pulumi.String("/"), Port: pulumi.String("metrics")},
							InitialDelaySeconds: pulumi.Int(2), PeriodSeconds: pulumi.Int(15), TimeoutSeconds: pulumi.Int(5),
						},
						LivenessProbe: &corev1.ProbeArgs{
							TcpSocket:           &corev1.TCPSocketActionArgs{Port: pulumi.String("metrics")},
							InitialDelaySeconds: pulumi.Int(10), PeriodSeconds: pulumi.Int(20), TimeoutSeconds: pulumi.Int(5),
						},
						VolumeMounts: corev1.VolumeMountArray{
							hostMount("proc", "/host/proc"),
							hostMount("sys", "/host/sys"),
							hostMount("root", "/host/root"),
						},
					}},
					Volumes: corev1.VolumeArray{hostPath("proc", "/proc"), hostPath("sys", "/sys"), hostPath("root", "/")},
				},
			},
		},
	}, p.opts(ns)...)
	return err
}

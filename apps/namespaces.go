package apps

import (
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const psaLabel = "pod-security.kubernetes.io/"

// createdNamespaces lists the namespaces this layer owns, in creation order.
func (a PlatformArgs) createdNamespaces() []string {
	ns := []string{a.Namespaces.API, a.Namespaces.Database}
	if a.Monitoring.Mode != MonitoringOff {
		ns = append(ns, a.Namespaces.Monitoring)
	}
	if a.nodeExporterOn() {
		ns = append(ns, a.Namespaces.NodeExporter)
	}
	return ns
}

// ensureNamespaces creates every namespace with Pod Security restricted for enforce, audit and
// warn. An exception lowers only enforce, so audit and warn still report each violation.
func (p *builder) ensureNamespaces() error {
	for _, ns := range p.args.createdNamespaces() {
		enforce := "restricted"
		var ann pulumi.StringMap
		if ex, ok := p.args.PSAExceptions[ns]; ok {
			enforce = ex.Level
			ann = pulumi.StringMap{AnnotationPSAExceptionReason: pulumi.String(ex.Reason)}
		}
		l := labels(ns, "namespace")
		for _, mode := range []string{"enforce", "audit", "warn"} {
			level := "restricted"
			if mode == "enforce" {
				level = enforce
			}
			l[psaLabel+mode] = pulumi.String(level)
			l[psaLabel+mode+"-version"] = pulumi.String("latest")
		}
		n, err := corev1.NewNamespace(p.ctx, ns, &corev1.NamespaceArgs{
			Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(ns), Labels: l, Annotations: ann},
		}, p.opts("")...)
		if err != nil {
			return err
		}
		p.namespaces[ns] = n
	}
	return nil
}

// ensureQuotas bounds each app namespace and gives containers defaults so a forgotten
// requests/limits block cannot starve the node.
func (p *builder) ensureQuotas() error {
	for _, q := range []struct {
		ns    string
		quota NamespaceQuota
	}{
		{p.args.Namespaces.API, p.args.Quotas.API},
		{p.args.Namespaces.Database, p.args.Quotas.Database},
	} {
		if _, err := corev1.NewResourceQuota(p.ctx, q.ns+"-quota", &corev1.ResourceQuotaArgs{
			Metadata: p.meta("quota", q.ns, "quota", false),
			Spec: &corev1.ResourceQuotaSpecArgs{Hard: pulumi.StringMap{
				"requests.cpu":           pulumi.String(q.quota.RequestsCPU),
				"requests.memory":        pulumi.String(q.quota.RequestsMemory),
				"limits.cpu":             pulumi.String(q.quota.LimitsCPU),
				"limits.memory":          pulumi.String(q.quota.LimitsMemory),
				"pods":                   pulumi.Sprintf("%d", q.quota.Pods),
				"persistentvolumeclaims": pulumi.Sprintf("%d", q.quota.PVCs),
				"requests.storage":       pulumi.String(q.quota.RequestsStorage),
				"services.loadbalancers": pulumi.String("0"),
				"services.nodeports":     pulumi.String("0"),
			}},
		}, p.opts(q.ns)...); err != nil {
			return err
		}
		if _, err := corev1.NewLimitRange(p.ctx, q.ns+"-limits", &corev1.LimitRangeArgs{
			Metadata: p.meta("limits", q.ns, "quota", false),
			Spec: &corev1.LimitRangeSpecArgs{Limits: corev1.LimitRangeItemArray{
				corev1.LimitRangeItemArgs{
					Type:           pulumi.String("Container"),
					DefaultRequest: pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("64Mi")},
					Default:        pulumi.StringMap{"cpu": pulumi.String("200m"), "memory": pulumi.String("128Mi")},
					Max:            pulumi.StringMap{"cpu": pulumi.String(q.quota.LimitsCPU), "memory": pulumi.String(q.quota.LimitsMemory)},
				},
			}},
		}, p.opts(q.ns)...); err != nil {
			return err
		}
	}
	return nil
}

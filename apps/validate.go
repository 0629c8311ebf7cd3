package apps

import (
	"errors"
	"fmt"
	"net"
	"path"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultChartVersion is the pinned kube-prometheus-stack chart version.
const DefaultChartVersion = "88.6.5"

const (
	defaultChartRepo = "https://prometheus-community.github.io/helm-charts"
	defaultLocalPath = "/var/lib/infralab/postgres"
)

// withDefaults returns a copy of a with every zero value replaced by its documented default.
func (a PlatformArgs) withDefaults() PlatformArgs {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defInt := func(i *int, v int) {
		if *i == 0 {
			*i = v
		}
	}
	defRes := func(r *Resources, v Resources) {
		def(&r.RequestsCPU, v.RequestsCPU)
		def(&r.RequestsMemory, v.RequestsMemory)
		def(&r.LimitsCPU, v.LimitsCPU)
		def(&r.LimitsMemory, v.LimitsMemory)
		def(&r.RequestsEphemeralStorage, v.RequestsEphemeralStorage)
		def(&r.LimitsEphemeralStorage, v.LimitsEphemeralStorage)
	}
	def(&a.Namespaces.API, "healthcare")
	def(&a.Namespaces.Database, "database")
	def(&a.Namespaces.Monitoring, "monitoring")
	def(&a.Namespaces.NodeExporter, "monitoring-node")

	def(&a.API.PullPolicy, "IfNotPresent")
	defInt(&a.API.Replicas, 2)
	defInt(&a.API.PoolSize, 5)
	defInt(&a.API.Port, 8080)
	def(&a.API.DatabaseName, "healthcare")
	def(&a.API.DatabaseUser, "healthcare")
	// Ephemeral limits cover each pod's emptyDir sizeLimits plus logs.
	defRes(&a.API.Resources, Resources{"100m", "128Mi", "500m", "256Mi", "64Mi", "256Mi"})

	def(&a.Postgres.PullPolicy, "IfNotPresent")
	if a.Postgres.UID == 0 {
		a.Postgres.UID = DefaultPostgresID
	}
	if a.Postgres.GID == 0 {
		a.Postgres.GID = DefaultPostgresID
	}
	def(&a.Postgres.StorageClass, "infralab-local")
	def(&a.Postgres.StorageSize, "10Gi")
	if a.Postgres.Local != nil {
		l := *a.Postgres.Local
		def(&l.Path, defaultLocalPath)
		a.Postgres.Local = &l
	}
	defRes(&a.Postgres.Resources, Resources{"250m", "256Mi", "1", "1Gi", "128Mi", "512Mi"})
	defInt(&a.Postgres.MaxConnections, 100)

	def(&a.Exporter.PullPolicy, "IfNotPresent")
	defRes(&a.Exporter.Resources, Resources{"50m", "32Mi", "200m", "128Mi", "16Mi", "64Mi"})

	def(&a.Monitoring.Mode, MonitoringChart)
	def(&a.Monitoring.ChartVersion, DefaultChartVersion)
	def(&a.Monitoring.ChartRepo, defaultChartRepo)
	def(&a.Monitoring.Retention, "15d")
	if a.Monitoring.StorageClass != "" {
		def(&a.Monitoring.StorageSize, "20Gi")
	}
	defInt(&a.Monitoring.KubeAPIPort, 6443)
	def(&a.Monitoring.PrometheusPullPolicy, "IfNotPresent")
	// The standalone Prometheus keeps its TSDB in an emptyDir of 2Gi, which counts toward the limit.
	defRes(&a.Monitoring.PrometheusResources, Resources{"200m", "256Mi", "1", "1Gi", "256Mi", "3Gi"})
	def(&a.Monitoring.ComponentPullPolicy, "IfNotPresent")
	def(&a.Monitoring.ScrapeInterval, "30s")
	if a.Monitoring.ConnectionsAlertRatio == 0 {
		a.Monitoring.ConnectionsAlertRatio = 0.8
	}

	defQuota := func(q *NamespaceQuota, v NamespaceQuota) {
		def(&q.RequestsCPU, v.RequestsCPU)
		def(&q.RequestsMemory, v.RequestsMemory)
		def(&q.LimitsCPU, v.LimitsCPU)
		def(&q.LimitsMemory, v.LimitsMemory)
		defInt(&q.Pods, v.Pods)
		defInt(&q.PVCs, v.PVCs)
		def(&q.RequestsStorage, v.RequestsStorage)
	}
	defQuota(&a.Quotas.API, NamespaceQuota{"1", "1Gi", "2", "2Gi", 10, 1, "1Gi"})
	defQuota(&a.Quotas.Database, NamespaceQuota{"1", "2Gi", "3", "4Gi", 6, 2, "50Gi"})
	return a
}

// errList collects validation errors with their field paths.
type errList []string

func (e *errList) add(field, format string, args ...any) {
	*e = append(*e, field+": "+fmt.Sprintf(format, args...))
}

func (e errList) err() error {
	if len(e) == 0 {
		return nil
	}
	return errors.New("apps: invalid arguments:\n  " + strings.Join(e, "\n  "))
}

// validate checks defaulted args and reports every problem at once.
func (a PlatformArgs) validate() error {
	var e errList

	names := map[string]string{}
	checkNS := func(field, ns string) {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			e.add(field, "%q is not a valid namespace name (%s)", ns, strings.Join(errs, "; "))
		}
		if other, dup := names[ns]; dup {
			e.add(field, "%q is already used by %s; give each namespace its own name", ns, other)
		}
		names[ns] = field
	}
	checkNS("namespaces.api", a.Namespaces.API)
	checkNS("namespaces.database", a.Namespaces.Database)
	if a.Monitoring.Mode != MonitoringOff {
		checkNS("namespaces.monitoring", a.Namespaces.Monitoring)
	}
	if a.nodeExporterOn() {
		checkNS("namespaces.nodeExporter", a.Namespaces.NodeExporter)
	}

	checkImage(&e, "api.image", a.API.Image)
	checkPull(&e, "api.pullPolicy", a.API.PullPolicy)
	if a.API.Replicas < 1 {
		e.add("api.replicas", "must be at least 1, got %d", a.API.Replicas)
	}
	if a.API.PoolSize < 1 {
		e.add("api.poolSize", "must be at least 1, got %d", a.API.PoolSize)
	}
	if a.API.Port < 1024 || a.API.Port > 65535 {
		e.add("api.port", "must be between 1024 and 65535 (the api runs as non-root), got %d", a.API.Port)
	}
	checkResources(&e, "api.resources", a.API.Resources)
	for i, s := range a.API.AllowIngressFrom {
		f := fmt.Sprintf("api.allowIngressFrom[%d]", i)
		switch {
		case s.CIDR != "" && (len(s.NamespaceLabels) > 0 || len(s.PodLabels) > 0):
			e.add(f, "set either cidr or label selectors, not both")
		case s.CIDR != "":
			if _, _, err := net.ParseCIDR(s.CIDR); err != nil {
				e.add(f+".cidr", "%q is not a CIDR such as 10.10.10.0/24", s.CIDR)
			}
		case len(s.NamespaceLabels) == 0 && len(s.PodLabels) == 0:
			e.add(f, "empty source would allow every pod; set cidr, namespaceLabels or podLabels")
		}
	}
	for _, f := range []struct{ field, v string }{{"api.databaseName", a.API.DatabaseName}, {"api.databaseUser", a.API.DatabaseUser}} {
		if !sqlIdent(f.v) {
			e.add(f.field, "%q must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)", f.v)
		}
	}
	if a.API.DatabaseUser == "postgres" || a.API.DatabaseUser == exporterRole {
		e.add("api.databaseUser", "%q is reserved; the api gets its own least-privilege role", a.API.DatabaseUser)
	}

	checkImage(&e, "postgres.image", a.Postgres.Image)
	checkPull(&e, "postgres.pullPolicy", a.Postgres.PullPolicy)
	if a.Postgres.UID < 1 || a.Postgres.GID < 1 {
		e.add("postgres.uid", "uid and gid must be non-root (> 0), got %d:%d", a.Postgres.UID, a.Postgres.GID)
	}
	checkQuantity(&e, "postgres.storageSize", a.Postgres.StorageSize)
	if errs := validation.IsDNS1123Subdomain(a.Postgres.StorageClass); len(errs) > 0 {
		e.add("postgres.storageClass", "%q is not a valid StorageClass name", a.Postgres.StorageClass)
	}
	if l := a.Postgres.Local; l != nil {
		if l.NodeName == "" {
			e.add("postgres.local.nodeName", "required: the node (kubernetes.io/hostname) that holds the data directory")
		}
		if !path.IsAbs(l.Path) || path.Clean(l.Path) != l.Path || l.Path == "/" {
			e.add("postgres.local.path", "%q must be a clean absolute directory such as %s", l.Path, defaultLocalPath)
		}
	}
	checkResources(&e, "postgres.resources", a.Postgres.Resources)
	// The seed's real limit was connections: every api replica, plus one surging during a rollout,
	// opens a full pool; keep room for the exporter, the role job and an operator's psql.
	const reserved = 5
	if need := (a.API.Replicas + 1) * a.API.PoolSize; need > a.Postgres.MaxConnections-reserved {
		e.add("postgres.maxConnections", "%d is too small: %d api pods (replicas %d + 1 surge) x poolSize %d = %d connections, plus %d reserved; raise it or lower api.poolSize",
			a.Postgres.MaxConnections, a.API.Replicas+1, a.API.Replicas, a.API.PoolSize, need, reserved)
	}

	checkImage(&e, "exporter.image", a.Exporter.Image)
	checkPull(&e, "exporter.pullPolicy", a.Exporter.PullPolicy)
	checkResources(&e, "exporter.resources", a.Exporter.Resources)

	m := a.Monitoring
	switch m.Mode {
	case MonitoringChart:
		if m.ChartVersion == "" || strings.ContainsAny(m.ChartVersion, "^~*xX><= ") {
			e.add("monitoring.chartVersion", "%q must be one exact version such as %s", m.ChartVersion, DefaultChartVersion)
		}
		checkDuration(&e, "monitoring.retention", m.Retention)
		if m.StorageClass != "" {
			checkQuantity(&e, "monitoring.storageSize", m.StorageSize)
		}
		if len(m.KubeAPICIDRs) == 0 {
			e.add("monitoring.kubeAPICIDRs", "required in chart mode: the operator and kube-state-metrics need egress to the API server (e.g. 10.10.10.10/32)")
		}
		if len(m.NodeCIDRs) == 0 {
			e.add("monitoring.nodeCIDRs", "required in chart mode: Prometheus scrapes kubelets and node-exporter on the nodes (e.g. 10.10.10.0/24)")
		}
		for i, c := range m.KubeAPICIDRs {
			checkCIDR(&e, fmt.Sprintf("monitoring.kubeAPICIDRs[%d]", i), c)
		}
		for i, c := range m.NodeCIDRs {
			checkCIDR(&e, fmt.Sprintf("monitoring.nodeCIDRs[%d]", i), c)
		}
		if m.KubeAPIPort < 1 || m.KubeAPIPort > 65535 {
			e.add("monitoring.kubeAPIPort", "must be a port, got %d", m.KubeAPIPort)
		}
		if a.Secrets.GrafanaAdminPassword == nil {
			e.add("secrets.grafanaAdminPassword", "required in chart mode; set it with `pulumi config set --secret`")
		}
	case MonitoringStandalone:
		checkImage(&e, "monitoring.prometheusImage", m.PrometheusImage)
		checkPull(&e, "monitoring.prometheusPullPolicy", m.PrometheusPullPolicy)
		checkDuration(&e, "monitoring.retention", m.Retention)
		checkResources(&e, "monitoring.prometheusResources", m.PrometheusResources)
		// The standalone Prometheus has no claim to put a class on; accepting the field would let
		// an operator believe the TSDB survives a pod move when it does not.
		if m.StorageClass != "" {
			e.add("monitoring.storageClass", "%q has no effect in standalone mode: Prometheus keeps its data in an emptyDir (size limit monitoring.storageSize) and loses it when the pod moves; remove storageClass, or use mode chart for a persistent volume", m.StorageClass)
		}
		if m.StorageSize != "" {
			checkQuantity(&e, "monitoring.storageSize", m.StorageSize)
		}
		a.validateStandaloneComponents(&e)
	case MonitoringOff:
	default:
		e.add("monitoring.mode", "%q is not one of chart, standalone, off", m.Mode)
	}
	if a.nodeExporterOn() {
		if ex, ok := a.PSAExceptions[a.Namespaces.NodeExporter]; !ok || ex.Level != "privileged" {
			e.add("psaExceptions."+a.Namespaces.NodeExporter, "node-exporter uses hostNetwork, hostPID and hostPath: add an exception with level privileged and a reason, or set monitoring.nodeExporter to false")
		}
	}
	a.validateAlertFor(&e)
	if m.ConnectionsAlertRatio <= 0 || m.ConnectionsAlertRatio >= 1 {
		e.add("monitoring.connectionsAlertRatio", "must be between 0 and 1, got %g", m.ConnectionsAlertRatio)
	}

	for _, s := range []struct {
		field string
		set   bool
	}{
		{"secrets.postgresPassword", a.Secrets.PostgresPassword != nil},
		{"secrets.apiDatabasePassword", a.Secrets.APIDatabasePassword != nil},
		{"secrets.exporterPassword", a.Secrets.ExporterPassword != nil},
	} {
		if !s.set {
			e.add(s.field, "required; set it with `pulumi config set --secret`")
		}
	}

	nsKeys := make([]string, 0, len(a.PSAExceptions))
	for ns := range a.PSAExceptions {
		nsKeys = append(nsKeys, ns)
	}
	sort.Strings(nsKeys)
	for _, ns := range nsKeys {
		ex := a.PSAExceptions[ns]
		f := "psaExceptions." + ns
		if _, ours := names[ns]; !ours {
			e.add(f, "namespace %q is not created by this layer (it creates %s)", ns, strings.Join(sortedKeys(names), ", "))
		}
		if ex.Level != "baseline" && ex.Level != "privileged" {
			e.add(f+".level", "%q must be baseline or privileged (restricted needs no exception)", ex.Level)
		}
		if strings.TrimSpace(ex.Reason) == "" {
			e.add(f+".reason", "required: say why this namespace cannot run under restricted")
		}
	}

	a.checkQuotas(&e)
	return e.err()
}

func (a PlatformArgs) nodeExporterOn() bool {
	m := a.Monitoring
	return m.NodeExporter && (m.Mode == MonitoringChart || m.Mode == MonitoringStandalone)
}

// checkQuotas makes sure the workloads, including a rolling update's surge pod, fit their quotas;
// otherwise a rollout would stall with "exceeded quota" long after `pulumi up` looked fine.
func (a PlatformArgs) checkQuotas(e *errList) {
	type use struct {
		r Resources
		n int64
	}
	fit := func(field string, q NamespaceQuota, uses []use, pods int, storage string) {
		sum := func(get func(Resources) string) resource.Quantity {
			var total resource.Quantity
			for _, u := range uses {
				v, err := resource.ParseQuantity(get(u.r))
				if err != nil {
					continue // reported by checkResources
				}
				for i := int64(0); i < u.n; i++ {
					total.Add(v)
				}
			}
			return total
		}
		for _, c := range []struct {
			name, limit string
			need        resource.Quantity
		}{
			{"requestsCPU", q.RequestsCPU, sum(func(r Resources) string { return r.RequestsCPU })},
			{"requestsMemory", q.RequestsMemory, sum(func(r Resources) string { return r.RequestsMemory })},
			{"limitsCPU", q.LimitsCPU, sum(func(r Resources) string { return r.LimitsCPU })},
			{"limitsMemory", q.LimitsMemory, sum(func(r Resources) string { return r.LimitsMemory })},
			{"requestsStorage", q.RequestsStorage, resource.MustParse("0")},
		} {
			lim, err := resource.ParseQuantity(c.limit)
			if err != nil {
				e.add(field+"."+c.name, "%q is not a Kubernetes quantity", c.limit)
				continue
			}
			need := c.need
			if c.name == "requestsStorage" {
				if storage == "" {
					continue
				}
				s, err := resource.ParseQuantity(storage)
				if err != nil {
					continue
				}
				need = s
			}
			if need.Cmp(lim) > 0 {
				e.add(field+"."+c.name, "%s is below what the workloads need during a rollout (%s)", c.limit, need.String())
			}
		}
		if q.Pods < pods {
			e.add(field+".pods", "%d is below the %d pods the workloads need during a rollout", q.Pods, pods)
		}
	}
	api := int64(a.API.Replicas + 1)
	fit("quotas.api", a.Quotas.API, []use{{a.API.Resources, api}}, int(api), "")
	fit("quotas.database", a.Quotas.Database, []use{
		{a.Postgres.Resources, 1}, {a.Exporter.Resources, 2}, {jobResources, 1},
	}, 4, a.Postgres.StorageSize)
	if a.Quotas.Database.PVCs < 1 {
		e.add("quotas.database.pvcs", "must allow the Postgres PVC (at least 1)")
	}
}

func checkImage(e *errList, field, ref string) {
	if ref == "" {
		e.add(field, "required; use an exact tag or digest such as postgres:15.8-bookworm")
		return
	}
	if strings.ContainsAny(ref, " \t\n") {
		e.add(field, "%q contains whitespace", ref)
		return
	}
	if strings.Contains(ref, "@sha256:") {
		return
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 || name[i+1:] == "" {
		e.add(field, "%q has no tag; pin an exact tag or digest", ref)
		return
	}
	if tag := name[i+1:]; tag == "latest" || tag == "stable" || tag == "main" {
		e.add(field, "%q uses the moving tag %q; pin an exact tag or digest", ref, tag)
	}
}

func checkPull(e *errList, field, p string) {
	switch p {
	case "Always", "IfNotPresent", "Never":
	default:
		e.add(field, "%q must be Always, IfNotPresent or Never", p)
	}
}

func checkResources(e *errList, field string, r Resources) {
	pairs := []struct{ name, req, lim string }{
		{"CPU", r.RequestsCPU, r.LimitsCPU},
		{"Memory", r.RequestsMemory, r.LimitsMemory},
		{"EphemeralStorage", r.RequestsEphemeralStorage, r.LimitsEphemeralStorage},
	}
	for _, p := range pairs {
		req, err1 := resource.ParseQuantity(p.req)
		lim, err2 := resource.ParseQuantity(p.lim)
		if err1 != nil {
			e.add(field+".requests"+p.name, "%q is not a Kubernetes quantity", p.req)
		}
		if err2 != nil {
			e.add(field+".limits"+p.name, "%q is not a Kubernetes quantity", p.lim)
		}
		if err1 == nil && err2 == nil && req.Cmp(lim) > 0 {
			e.add(field+".requests"+p.name, "%s exceeds the limit %s", p.req, p.lim)
		}
	}
}

func checkQuantity(e *errList, field, q string) {
	if _, err := resource.ParseQuantity(q); err != nil {
		e.add(field, "%q is not a Kubernetes quantity such as 10Gi", q)
	}
}

func checkCIDR(e *errList, field, c string) {
	if _, _, err := net.ParseCIDR(c); err != nil {
		e.add(field, "%q is not a CIDR such as 10.10.10.0/24", c)
	}
}

// checkDuration accepts Prometheus durations such as 15d, 12h or 2w.
func checkDuration(e *errList, field, d string) {
	if len(d) < 2 || !strings.ContainsRune("smhdwy", rune(d[len(d)-1])) || strings.Trim(d[:len(d)-1], "0123456789") != "" || strings.Trim(d[:len(d)-1], "0") == "" {
		e.add(field, "%q is not a Prometheus duration such as 15d", d)
	}
}

func sqlIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

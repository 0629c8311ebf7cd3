package apps

import (
	"strings"
	"testing"
)

// localLikeArgs is the standalone Prometheus with every companion on, as the local stack runs it.
func localLikeArgs() PlatformArgs {
	a := standaloneArgs()
	m := &a.Monitoring
	m.KubeStateMetricsImage = "infralab.local/kube-state-metrics:2.16.0"
	m.NodeExporter = true
	m.NodeExporterImage = "infralab.local/node-exporter:1.5.0-deb12"
	m.AlertmanagerImage = "infralab.local/alertmanager:0.25.0-deb12"
	m.NodeAddresses = []string{"10.244.0.1"}
	m.KubeAPICIDRs = []string{"10.244.0.1/32"}
	m.AlertWebhookURL = "http://10.244.0.1:9095/alerts"
	a.PSAExceptions = map[string]PSAException{"monitoring-node": {Level: "privileged", Reason: "node-exporter reads the host"}}
	return a
}

func TestStandaloneRunsTheChartsComponents(t *testing.T) {
	res := declare(t, localLikeArgs())
	ksm := find(t, res, "kubernetes:apps/v1:Deployment", "monitoring", ksmName)
	if ksm.get("spec", "template", "spec", "automountServiceAccountToken") != true ||
		ksm.str("spec", "template", "metadata", "annotations", AnnotationNeedsAPIAccess) == "" {
		t.Error("kube-state-metrics needs its token, opted in with a reason")
	}
	prom := find(t, res, "kubernetes:apps/v1:Deployment", "monitoring", prometheusName)
	if prom.get("spec", "template", "spec", "automountServiceAccountToken") != true ||
		prom.str("spec", "template", "metadata", "annotations", AnnotationNeedsAPIAccess) == "" {
		t.Error("Prometheus scrapes the kubelets with its token: it must opt in with a reason")
	}
	ne := find(t, res, "kubernetes:apps/v1:DaemonSet", "monitoring-node", nodeExporterName)
	spec := asMap(ne.get("spec", "template", "spec"))
	if spec["hostNetwork"] != true || spec["hostPID"] != true {
		t.Error("node-exporter needs the host's network and PIDs")
	}
	c := asMap(asList(spec["containers"])[0])
	if sc := asMap(c["securityContext"]); sc["runAsNonRoot"] != true || sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
		t.Errorf("node-exporter is not hardened beyond its host access: %v", sc)
	}
	if args := strings.Join(toStrings(c["args"]), " "); !strings.Contains(args, "--web.listen-address=$(HOST_IP):9100") {
		t.Errorf("node-exporter must listen on the node's address only: %s", args)
	}
	ns := find(t, res, "kubernetes:core/v1:Namespace", "", "monitoring-node")
	if ns.str("metadata", "labels", psaLabel+"enforce") != "privileged" || ns.str("metadata", "labels", psaLabel+"warn") != "restricted" {
		t.Error("node-exporter's namespace relaxes only enforce")
	}
	find(t, res, "kubernetes:core/v1:Secret", "monitoring", alertmanagerSecret)
	find(t, res, "kubernetes:apps/v1:Deployment", "monitoring", alertmanagerName)
	for _, name := range []string{"infralab-monitoring-kube-state-metrics", "infralab-monitoring-prometheus-kubelet"} {
		find(t, res, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "", name)
	}
	role := find(t, res, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "", "infralab-monitoring-prometheus-kubelet")
	if got := asMap(asList(role.get("rules"))[0]); strings.Join(toStrings(got["resources"]), ",") != "nodes/metrics" || strings.Join(toStrings(got["verbs"]), ",") != "get" {
		t.Errorf("Prometheus's kubelet access is %v, want get nodes/metrics only", got)
	}
	for _, np := range []string{"kube-state-metrics-ingress-prometheus", "kube-state-metrics-egress-kube-api",
		"alertmanager-ingress-prometheus", "alertmanager-egress-webhook", "prometheus-egress-components"} {
		find(t, res, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "monitoring", np)
	}
	for _, np := range []string{"default-deny", "allow-dns"} {
		find(t, res, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "monitoring-node", np)
	}
}

func TestStandaloneScrapesKubeletsWithVerifiedTLS(t *testing.T) {
	cfg, err := localLikeArgs().withDefaults().prometheusConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"job_name: kubelet", "job_name: cadvisor", "metrics_path: /metrics/cadvisor",
		"10.244.0.1:10250", "10.244.0.1:9100", "credentials_file: " + saTokenPath, "ca_file: " + saCAPath,
		"kube-state-metrics.monitoring.svc:8080", "alertmanager.monitoring.svc:9093"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("prometheus.yml lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "insecure_skip_verify") {
		t.Error("the kubelet's certificate must be verified")
	}
}

func TestStandaloneComponentsNameWhatTheyNeed(t *testing.T) {
	a := localLikeArgs()
	a.Monitoring.NodeAddresses = []string{"infralab-node"}
	a.Monitoring.KubeAPICIDRs = nil
	a.Monitoring.AlertWebhookURL = "http://hooks.example.com/x"
	a.Monitoring.AlertFor = map[string]string{"NoSuchAlert": "1m", "PostgresDown": "soon"}
	_, err := tryDeclare(a)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, f := range []string{"monitoring.nodeAddresses[0]", "monitoring.kubeAPICIDRs", "monitoring.alertWebhookURL",
		"monitoring.alertFor.NoSuchAlert", "monitoring.alertFor.PostgresDown"} {
		if !strings.Contains(err.Error(), f+":") {
			t.Errorf("error does not name %s:\n%v", f, err)
		}
	}
}

func TestAlertForOverridesOnlyTheDuration(t *testing.T) {
	a := localLikeArgs()
	a.Monitoring.AlertFor = map[string]string{"PodCrashLooping": "30s"}
	shipped := a.shippedAlertRules()
	for i, r := range a.alertRules() {
		want := shipped[i]
		if r.Alert == "PodCrashLooping" {
			want.For = "30s"
		}
		if r.Expr != want.Expr || r.For != want.For {
			t.Errorf("%s: got for %q expr %q, want for %q", r.Alert, r.For, r.Expr, want.For)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range asList(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

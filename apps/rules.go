package apps

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// alertRule is one Prometheus alert. The same list feeds the chart's PrometheusRule and the
// standalone Prometheus's rules file.
type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type ruleGroup struct {
	Name  string      `json:"name"`
	Rules []alertRule `json:"rules"`
}

const alertGroup = "infralab.rules"

func alert(name, expr, forDur, severity, summary, description string) alertRule {
	return alertRule{
		Alert:       name,
		Expr:        expr,
		For:         forDur,
		Labels:      map[string]string{"severity": severity},
		Annotations: map[string]string{"summary": summary, "description": description},
	}
}

// alertRules are the platform's alerts, with monitoring.alertFor applied. Node, pod and PVC
// alerts use kube-state-metrics and kubelet metrics: the chart collects them, and the standalone
// Prometheus does once kube-state-metrics and nodeAddresses are set (the local stack sets both).
func (a PlatformArgs) alertRules() []alertRule {
	rules := a.shippedAlertRules()
	for i := range rules {
		if d, ok := a.Monitoring.AlertFor[rules[i].Alert]; ok {
			rules[i].For = d
		}
	}
	return rules
}

// shippedAlertRules are the alerts with the durations docs/apps.md documents.
func (a PlatformArgs) shippedAlertRules() []alertRule {
	return []alertRule{
		alert("NodeDown",
			`kube_node_status_condition{condition="Ready",status="true"} == 0`,
			"5m", "critical", "Node {{ $labels.node }} is not Ready",
			"Node {{ $labels.node }} has not been Ready for 5 minutes; its pods are not being served."),
		alert("PodCrashLooping",
			`max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff"}[5m]) >= 1`,
			"10m", "warning", "{{ $labels.namespace }}/{{ $labels.pod }} is crash-looping",
			"Container {{ $labels.container }} keeps restarting; check `kubectl logs --previous`."),
		alert("ContainerOOMKilled",
			// increase() over the window, not "now minus 10 minutes ago": the latter needs a sample
			// from 10 minutes back, so a container younger than that (a new rollout, a fresh
			// Prometheus) was never reported.
			`(increase(kube_pod_container_status_restarts_total[10m]) >= 1)`+
				` and ignoring(reason) min_over_time(kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}[10m]) == 1`,
			"", "warning", "{{ $labels.namespace }}/{{ $labels.pod }} was OOMKilled",
			"Container {{ $labels.container }} exceeded its memory limit in the last 10 minutes; raise the limit or fix the leak."),
		alert("PostgresDown",
			`pg_up == 0 or absent(pg_up) == 1`,
			"1m", "critical", "PostgreSQL is down or not scraped",
			"postgres_exporter cannot reach PostgreSQL (pg_up is 0) or the exporter itself is missing."),
		alert("PersistentVolumeAlmostFull",
			`kubelet_volume_stats_used_bytes / kubelet_volume_stats_capacity_bytes > 0.85`,
			"5m", "warning", "PVC {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} is above 85%",
			"The volume is {{ $value | humanizePercentage }} full; grow it before the database stops accepting writes."),
		alert("TooManyDBConnections",
			fmt.Sprintf(`sum by (instance) (pg_stat_activity_count) / on (instance) max by (instance) (pg_settings_max_connections) > %g`, a.Monitoring.ConnectionsAlertRatio),
			"5m", "warning", "PostgreSQL connections above "+fmt.Sprintf("%g%%", a.Monitoring.ConnectionsAlertRatio*100)+" of max_connections",
			"{{ $value | humanizePercentage }} of max_connections are in use; check api.poolSize x replicas (the seed's real limit was connection pooling)."),
		alert("APIHighErrorRate",
			`sum(rate(healthcare_api_http_requests_total{status=~"5.."}[5m])) / sum(rate(healthcare_api_http_requests_total[5m])) > 0.05`,
			"5m", "critical", "healthcare-api answers more than 5% of requests with 5xx",
			"{{ $value | humanizePercentage }} of the api's requests failed in the last 5 minutes; check PostgresDown and the api's logs."),
		alert("TargetDown",
			`up == 0`,
			"5m", "warning", "Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}",
			"The target has been down for 5 minutes: its metrics (and the alerts built on them) are missing."),
	}
}

// rulesFile renders the alerts as a Prometheus rules file.
func (a PlatformArgs) rulesFile() (string, error) {
	b, err := yaml.Marshal(map[string]any{"groups": []ruleGroup{{Name: alertGroup, Rules: a.alertRules()}}})
	return string(b), err
}

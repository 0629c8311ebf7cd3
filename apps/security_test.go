package apps

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

var modes = map[string]func() PlatformArgs{
	MonitoringChart:      baseArgs,
	MonitoringStandalone: standaloneArgs,
	MonitoringOff:        offArgs,
}

func TestEveryContainerIsHardened(t *testing.T) {
	wantWorkloads := map[string][]string{
		MonitoringChart: {"Deployment/database/postgres-exporter", "Deployment/healthcare/healthcare-api",
			"Job/database/postgres-roles", "StatefulSet/database/postgres"},
		MonitoringStandalone: {"Deployment/database/postgres-exporter", "Deployment/healthcare/healthcare-api",
			"Deployment/monitoring/prometheus", "Job/database/postgres-roles", "StatefulSet/database/postgres"},
		MonitoringOff: {"Deployment/database/postgres-exporter", "Deployment/healthcare/healthcare-api",
			"Job/database/postgres-roles", "StatefulSet/database/postgres"},
	}
	for mode, args := range modes {
		t.Run(mode, func(t *testing.T) {
			specs := podSpecs(declare(t, args()))
			var got []string
			for k := range specs {
				got = append(got, k)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, wantWorkloads[mode]) {
				t.Fatalf("workloads = %v, want %v", got, wantWorkloads[mode])
			}
			for name, spec := range specs {
				psc := asMap(spec["securityContext"])
				if psc["runAsNonRoot"] != true || get(psc, "seccompProfile", "type") != "RuntimeDefault" {
					t.Errorf("%s: pod securityContext %v lacks runAsNonRoot/seccomp RuntimeDefault", name, psc)
				}
				if spec["automountServiceAccountToken"] != false {
					t.Errorf("%s: pod automountServiceAccountToken = %v, want false", name, spec["automountServiceAccountToken"])
				}
				containers := append(asList(spec["initContainers"]), asList(spec["containers"])...)
				if len(containers) == 0 {
					t.Fatalf("%s: no containers", name)
				}
				for _, c := range containers {
					checkHardened(t, name+"/"+get(c, "name").(string), asMap(get(c, "securityContext")))
					if get(c, "resources", "requests", "cpu") == nil || get(c, "resources", "limits", "memory") == nil {
						t.Errorf("%s: container %v has no requests/limits", name, get(c, "name"))
					}
					if img, _ := get(c, "image").(string); !strings.Contains(img, ":") || strings.HasSuffix(img, ":latest") {
						t.Errorf("%s: image %q is not pinned", name, img)
					}
				}
			}
			api := specs["Deployment/healthcare/healthcare-api"]
			sc := asMap(get(api, "containers", 0, "securityContext"))
			if sc["runAsUser"] != float64(10001) || sc["runAsGroup"] != float64(10001) {
				t.Errorf("api runs as %v:%v, want 10001:10001", sc["runAsUser"], sc["runAsGroup"])
			}
		})
	}
}

func checkHardened(t *testing.T, name string, sc map[string]any) {
	t.Helper()
	want := map[string]any{
		"runAsNonRoot":             true,
		"allowPrivilegeEscalation": false,
		"privileged":               false,
		"readOnlyRootFilesystem":   true,
	}
	for k, v := range want {
		if sc[k] != v {
			t.Errorf("%s: securityContext.%s = %v, want %v", name, k, sc[k], v)
		}
	}
	if uid, _ := sc["runAsUser"].(float64); uid < 1 {
		t.Errorf("%s: runAsUser = %v, want a non-root uid", name, sc["runAsUser"])
	}
	if gid, _ := sc["runAsGroup"].(float64); gid < 1 {
		t.Errorf("%s: runAsGroup = %v, want a non-root gid", name, sc["runAsGroup"])
	}
	if drop := get(sc, "capabilities", "drop"); !reflect.DeepEqual(drop, []any{"ALL"}) {
		t.Errorf("%s: capabilities.drop = %v, want [ALL]", name, drop)
	}
	if add := get(sc, "capabilities", "add"); add != nil {
		t.Errorf("%s: capabilities.add = %v, want none", name, add)
	}
	if get(sc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("%s: seccompProfile = %v, want RuntimeDefault", name, sc["seccompProfile"])
	}
}

func TestServiceAccountsAndPermissions(t *testing.T) {
	for mode, args := range modes {
		t.Run(mode, func(t *testing.T) {
			res := declare(t, args())
			accounts := map[string]bool{}
			for _, sa := range ofType(res, "kubernetes:core/v1:ServiceAccount") {
				if sa.get("automountServiceAccountToken") != false {
					t.Errorf("%s: automountServiceAccountToken = %v, want false", sa.key(), sa.get("automountServiceAccountToken"))
				}
				if _, ok := asMap(sa.get("metadata", "annotations"))[AnnotationNeedsAPIAccess]; ok {
					t.Errorf("%s: claims API access, but no workload of this layer needs it", sa.key())
				}
				accounts[sa.str("metadata", "namespace")+"/"+sa.str("metadata", "name")] = true
			}
			// Each workload has its own account, in its namespace, used by nobody else.
			used := map[string]string{}
			for name, spec := range podSpecs(res) {
				ns := strings.Split(name, "/")[1]
				sa, _ := spec["serviceAccountName"].(string)
				if sa == "" || sa == "default" || !accounts[ns+"/"+sa] {
					t.Errorf("%s: serviceAccountName %q is not its own declared account", name, sa)
				}
				if other, dup := used[ns+"/"+sa]; dup {
					t.Errorf("%s and %s share the ServiceAccount %s", name, other, sa)
				}
				used[ns+"/"+sa] = name
			}
			if len(used) != len(accounts) {
				t.Errorf("accounts %v declared, but workloads use %v: drop unused accounts", accounts, used)
			}
			// None of the layer's own workloads needs the Kubernetes API, so it grants nothing to
			// them; the one Role it declares narrows the chart's Grafana sidecars to ConfigMaps in
			// the monitoring namespace (ensureGrafanaRole). The rest of the chart's RBAC is rendered
			// inside the Chart (see TestChartWorkloadsAreHardened).
			for _, r := range res {
				if !strings.HasPrefix(r.Type, "kubernetes:rbac.authorization.k8s.io/") {
					continue
				}
				if r.Type != "kubernetes:rbac.authorization.k8s.io/v1:Role" || r.str("metadata", "name") != grafanaRole {
					t.Errorf("%s declared: no workload of this layer needs API access", r.key())
					continue
				}
				rules, _ := r.get("rules").([]any)
				if len(rules) != 1 {
					t.Fatalf("%s: rules = %v, want one rule on configmaps", r.key(), rules)
				}
				rule := rules[0].(map[string]any)
				if fmt.Sprint(rule["resources"]) != "[configmaps]" || fmt.Sprint(rule["verbs"]) != "[get list watch]" {
					t.Errorf("%s grants %v on %v; want get/list/watch on configmaps only (never secrets)", r.key(), rule["verbs"], rule["resources"])
				}
			}
			// Cluster-scoped objects are limited to namespaces and the node-bound storage.
			clusterScoped := map[string]bool{
				"kubernetes:core/v1:Namespace": true, "kubernetes:storage.k8s.io/v1:StorageClass": true,
				"kubernetes:core/v1:PersistentVolume": true,
			}
			for _, r := range res {
				if r.Custom && r.str("metadata", "namespace") == "" && !clusterScoped[r.Type] {
					t.Errorf("%s is cluster-scoped (no namespace)", r.key())
				}
			}
		})
	}
}

func TestSecretsArePulumiSecrets(t *testing.T) {
	res := declare(t, baseArgs())
	secrets := ofType(res, "kubernetes:core/v1:Secret")
	want := []string{"Secret/database/postgres-exporter", "Secret/database/postgres-roles",
		"Secret/database/postgres-superuser", "Secret/healthcare/healthcare-api-db", "Secret/monitoring/grafana-admin"}
	var got []string
	for _, s := range secrets {
		got = append(got, s.key())
		if _, ok := s.Inputs["data"]; ok {
			t.Errorf("%s: uses data; values must go through stringData as Pulumi secrets", s.key())
		}
		if len(asMap(s.get("stringData"))) == 0 {
			t.Fatalf("%s: no stringData", s.key())
		}
		// Either the whole map or each value must carry the secret mark.
		walk("stringData", s.Inputs["stringData"], func(path string, v resource.PropertyValue, secret bool) {
			if !secret {
				t.Errorf("%s: %s is not a Pulumi secret", s.key(), path)
			}
		})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("secrets = %v, want %v", got, want)
	}
}

func TestNoCredentialInClear(t *testing.T) {
	credential := regexp.MustCompile(`(?i)pass|secret|token|user|key`)
	for mode, args := range modes {
		t.Run(mode, func(t *testing.T) {
			res := declare(t, args())
			for _, r := range res {
				// No password appears in any non-secret input of any object.
				walk(r.key(), resource.NewObjectProperty(r.Inputs), func(path string, v resource.PropertyValue, secret bool) {
					if secret || !v.IsString() {
						return
					}
					for _, pw := range []string{pgPassword, apiPassword, exporterPassword, grafanaPassword} {
						if strings.Contains(v.StringValue(), pw) {
							t.Errorf("%s holds a password in clear", path)
						}
					}
				})
			}
			// Every credential-looking env var comes from a Secret.
			for name, spec := range podSpecs(res) {
				for _, c := range append(asList(spec["initContainers"]), asList(spec["containers"])...) {
					for _, e := range asList(get(c, "env")) {
						n, _ := get(e, "name").(string)
						if !credential.MatchString(n) || n == "API_DB_USER" || n == "EXPORTER_USER" || n == "PGUSER" {
							continue // role names are not credentials
						}
						if get(e, "value") != nil || get(e, "valueFrom", "secretKeyRef", "name") == nil {
							t.Errorf("%s: env %s is not a secretKeyRef", name, n)
						}
					}
				}
			}
		})
	}
}

func TestChildrenInheritTheProvider(t *testing.T) {
	res := declare(t, baseArgs())
	for _, r := range res {
		if !strings.Contains(r.Provider, "pulumi:providers:kubernetes::k8s") {
			t.Errorf("%s: provider %q, want the one passed to NewPlatform", r.key(), r.Provider)
		}
	}
}

func TestNamespacesEnforceRestricted(t *testing.T) {
	res := declare(t, baseArgs())
	got := map[string]map[string]any{}
	for _, n := range ofType(res, "kubernetes:core/v1:Namespace") {
		got[n.str("metadata", "name")] = n.obj()
	}
	for _, ns := range []string{"healthcare", "database", "monitoring", "monitoring-node"} {
		o, ok := got[ns]
		if !ok {
			t.Fatalf("namespace %s not declared", ns)
		}
		l := asMap(get(o, "metadata", "labels"))
		enforce := "restricted"
		if ns == "monitoring-node" {
			enforce = "privileged"
			if r := get(o, "metadata", "annotations", AnnotationPSAExceptionReason); r == nil || r == "" {
				t.Errorf("%s: exception without %s annotation", ns, AnnotationPSAExceptionReason)
			}
		} else if a := get(o, "metadata", "annotations", AnnotationPSAExceptionReason); a != nil {
			t.Errorf("%s: unexpected exception annotation %v", ns, a)
		}
		for mode, want := range map[string]string{"enforce": enforce, "audit": "restricted", "warn": "restricted"} {
			if l["pod-security.kubernetes.io/"+mode] != want {
				t.Errorf("%s: %s = %v, want %s", ns, mode, l["pod-security.kubernetes.io/"+mode], want)
			}
		}
	}
	if len(got) != 4 {
		t.Errorf("namespaces = %d, want 4", len(got))
	}
}

func TestSkipAwait(t *testing.T) {
	awaited := map[string]bool{
		"kubernetes:apps/v1:Deployment": true, "kubernetes:apps/v1:StatefulSet": true, "kubernetes:batch/v1:Job": true,
		"kubernetes:core/v1:Service": true, "kubernetes:core/v1:PersistentVolume": true,
		// The provider waits for a claim to bind (pkg/await/awaiters.go, untilCoreV1PersistentVolumeClaimReady).
		"kubernetes:core/v1:PersistentVolumeClaim": true,
	}
	for _, skip := range []bool{false, true} {
		a := standaloneArgs()
		a.SkipAwait = skip
		n := 0
		for _, r := range declare(t, a) {
			has := r.get("metadata", "annotations", "pulumi.com/skipAwait") == "true"
			if r.Type == "kubernetes:core/v1:Service" {
				// Never awaited: the workload behind it is (serviceMeta).
				if !has {
					t.Errorf("SkipAwait=%v: %s is awaited (10 s settle after every Endpoints change)", skip, r.key())
				}
			} else if awaited[r.Type] {
				n++
				if has != skip {
					t.Errorf("SkipAwait=%v: %s skipAwait annotation = %v", skip, r.key(), has)
				}
			} else if has {
				t.Errorf("%s: skipAwait on a kind the provider does not await", r.key())
			}
		}
		if n < 5 {
			t.Errorf("only %d awaited objects checked", n)
		}
	}
}

// A Service carries no await of its own (serviceMeta), so its readiness is only proven if its
// selector picks the pods of a workload that is awaited: one in its namespace whose pod template
// labels hold every selector label.
func TestEveryServiceSelectsAnAwaitedWorkload(t *testing.T) {
	a := standaloneArgs()
	a.SkipAwait = false
	rs := declare(t, a)
	workloads := map[string]bool{"kubernetes:apps/v1:Deployment": true, "kubernetes:apps/v1:StatefulSet": true, "kubernetes:apps/v1:DaemonSet": true}
	n := 0
	for _, svc := range rs {
		if svc.Type != "kubernetes:core/v1:Service" {
			continue
		}
		n++
		sel, _ := svc.get("spec", "selector").(map[string]any)
		if len(sel) == 0 {
			t.Errorf("%s selects nothing", svc.key())
			continue
		}
		found := false
		for _, w := range rs {
			if !workloads[w.Type] || w.str("metadata", "namespace") != svc.str("metadata", "namespace") ||
				w.get("metadata", "annotations", "pulumi.com/skipAwait") == "true" {
				continue
			}
			labels, _ := w.get("spec", "template", "metadata", "labels").(map[string]any)
			match := true
			for k, v := range sel {
				if labels[k] != v {
					match = false
				}
			}
			found = found || match
		}
		if !found {
			t.Errorf("%s (selector %v) selects no awaited workload's pods", svc.key(), sel)
		}
	}
	if n < 5 {
		t.Errorf("only %d Services checked", n)
	}
}

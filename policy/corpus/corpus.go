// Package corpus generates pod specs that probe every Pod Security "restricted" control, and
// evaluates a pod spec with the pack's pod rules.
//
// The root module's e2e test sends every spec to a real kube-apiserver in a namespace that
// enforces restricted and checks that whatever the API server rejects, the pack reports too.
package corpus

import (
	"fmt"
	"slices"

	"github.com/infralab/infralab/policy/rules"
)

// ServiceAccount is the ServiceAccount every generated pod runs as; the namespace that
// admits the corpus must have it.
const ServiceAccount = "corpus"

// Spec is one generated pod spec.
type Spec struct {
	// Name is a DNS-1123 name for the pod, unique in the corpus.
	Name string
	// Mutations lists the restricted fields set wrong; none for a spec meant to be valid.
	Mutations []string
	// Pod is the pod's spec (what goes under .spec), as JSON-shaped Go values.
	Pod map[string]any
}

func container(name string) map[string]any {
	return map[string]any{
		"name":  name,
		"image": "registry.invalid/infralab/corpus:1.0.0",
		"securityContext": map[string]any{
			"allowPrivilegeEscalation": false,
			"readOnlyRootFilesystem":   true,
			"capabilities":             map[string]any{"drop": []any{"ALL"}},
		},
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "10m", "memory": "16Mi"},
			"limits":   map[string]any{"cpu": "100m", "memory": "64Mi"},
		},
	}
}

// Base returns a pod spec that satisfies every pod rule and Pod Security restricted.
func Base() map[string]any {
	return map[string]any{
		"serviceAccountName":           ServiceAccount,
		"automountServiceAccountToken": false,
		"securityContext": map[string]any{
			"runAsNonRoot":   true,
			"runAsUser":      10001,
			"runAsGroup":     10001,
			"seccompProfile": map[string]any{"type": "RuntimeDefault"},
		},
		"containers":     []any{container("app")},
		"initContainers": []any{container("init")},
		"volumes":        []any{map[string]any{"name": "tmp", "emptyDir": map[string]any{}}},
	}
}

type mutation struct {
	name  string
	apply func(p map[string]any)
}

func podSC(p map[string]any) map[string]any { return p["securityContext"].(map[string]any) }

func ctr(p map[string]any, list string) map[string]any {
	return p[list].([]any)[0].(map[string]any)
}

func ctrSC(p map[string]any, list string) map[string]any {
	return ctr(p, list)["securityContext"].(map[string]any)
}

// mutations each set one restricted control wrong.
var mutations = []mutation{
	{"pod-run-as-non-root-false", func(p map[string]any) { podSC(p)["runAsNonRoot"] = false }},
	{"run-as-non-root-unset", func(p map[string]any) { delete(podSC(p), "runAsNonRoot") }},
	{"container-run-as-non-root-false", func(p map[string]any) { ctrSC(p, "containers")["runAsNonRoot"] = false }},
	{"pod-run-as-user-0", func(p map[string]any) { podSC(p)["runAsUser"] = 0 }},
	{"container-run-as-user-0", func(p map[string]any) { ctrSC(p, "containers")["runAsUser"] = 0 }},
	{"init-run-as-user-0", func(p map[string]any) { ctrSC(p, "initContainers")["runAsUser"] = 0 }},
	{"privilege-escalation-true", func(p map[string]any) { ctrSC(p, "containers")["allowPrivilegeEscalation"] = true }},
	{"init-privilege-escalation-unset", func(p map[string]any) { delete(ctrSC(p, "initContainers"), "allowPrivilegeEscalation") }},
	{"privileged", func(p map[string]any) {
		sc := ctrSC(p, "containers")
		sc["privileged"] = true
		delete(sc, "allowPrivilegeEscalation") // else validation rejects the pair before Pod Security sees it
	}},
	{"init-privileged", func(p map[string]any) {
		sc := ctrSC(p, "initContainers")
		sc["privileged"] = true
		delete(sc, "allowPrivilegeEscalation")
	}},
	{"capabilities-drop-missing", func(p map[string]any) { delete(ctrSC(p, "containers"), "capabilities") }},
	{"capabilities-add-sys-admin", func(p map[string]any) {
		ctrSC(p, "containers")["capabilities"] = map[string]any{"drop": []any{"ALL"}, "add": []any{"SYS_ADMIN"}}
	}},
	{"init-capabilities-add-net-raw", func(p map[string]any) {
		ctrSC(p, "initContainers")["capabilities"] = map[string]any{"drop": []any{"ALL"}, "add": []any{"NET_RAW"}}
	}},
	{"seccomp-unset", func(p map[string]any) { delete(podSC(p), "seccompProfile") }},
	{"pod-seccomp-unconfined", func(p map[string]any) { podSC(p)["seccompProfile"] = map[string]any{"type": "Unconfined"} }},
	{"container-seccomp-unconfined", func(p map[string]any) {
		ctrSC(p, "containers")["seccompProfile"] = map[string]any{"type": "Unconfined"}
	}},
	{"host-network", func(p map[string]any) { p["hostNetwork"] = true }},
	{"host-pid", func(p map[string]any) { p["hostPID"] = true }},
	{"host-ipc", func(p map[string]any) { p["hostIPC"] = true }},
	{"host-path-volume", func(p map[string]any) {
		p["volumes"] = append(p["volumes"].([]any), map[string]any{"name": "host", "hostPath": map[string]any{"path": "/etc"}})
	}},
	{"host-port", func(p map[string]any) {
		ctr(p, "containers")["ports"] = []any{map[string]any{"containerPort": 8080, "hostPort": 8080}}
	}},
	{"nfs-volume", func(p map[string]any) {
		p["volumes"] = append(p["volumes"].([]any), map[string]any{"name": "nfs", "nfs": map[string]any{"server": "10.0.0.1", "path": "/export"}})
	}},
	{"proc-mount-unmasked", func(p map[string]any) { ctrSC(p, "containers")["procMount"] = "Unmasked" }},
	{"selinux-type-spc", func(p map[string]any) { podSC(p)["seLinuxOptions"] = map[string]any{"type": "spc_t"} }},
	{"selinux-user", func(p map[string]any) {
		ctrSC(p, "initContainers")["seLinuxOptions"] = map[string]any{"user": "system_u"}
	}},
	{"apparmor-unconfined", func(p map[string]any) {
		ctrSC(p, "containers")["appArmorProfile"] = map[string]any{"type": "Unconfined"}
	}},
	{"unsafe-sysctl", func(p map[string]any) {
		podSC(p)["sysctls"] = []any{map[string]any{"name": "kernel.msgmax", "value": "65536"}}
	}},
	{"windows-host-process", func(p map[string]any) {
		ctrSC(p, "containers")["windowsOptions"] = map[string]any{"hostProcess": true}
	}},
}

// valid are variations that Pod Security restricted and the pack both accept.
var valid = []mutation{
	{"base", func(map[string]any) {}},
	{"container-level-only", func(p map[string]any) {
		p["securityContext"] = map[string]any{}
		for _, list := range []string{"containers", "initContainers"} {
			sc := ctrSC(p, list)
			sc["runAsNonRoot"] = true
			sc["runAsUser"] = 10002
			sc["seccompProfile"] = map[string]any{"type": "RuntimeDefault"}
		}
	}},
	{"seccomp-localhost", func(p map[string]any) {
		ctrSC(p, "containers")["seccompProfile"] = map[string]any{"type": "Localhost", "localhostProfile": "profiles/app.json"}
	}},
	{"add-net-bind-service", func(p map[string]any) {
		ctrSC(p, "containers")["capabilities"] = map[string]any{"drop": []any{"ALL"}, "add": []any{"NET_BIND_SERVICE"}}
	}},
	{"safe-sysctl", func(p map[string]any) {
		podSC(p)["sysctls"] = []any{map[string]any{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}}
	}},
	{"selinux-container-t", func(p map[string]any) {
		podSC(p)["seLinuxOptions"] = map[string]any{"type": "container_t", "level": "s0:c123,c456"}
	}},
	{"apparmor-runtime-default", func(p map[string]any) {
		ctrSC(p, "containers")["appArmorProfile"] = map[string]any{"type": "RuntimeDefault"}
	}},
	{"proc-mount-default", func(p map[string]any) { ctrSC(p, "containers")["procMount"] = "Default" }},
	{"restricted-volume-types", func(p map[string]any) {
		p["volumes"] = []any{
			map[string]any{"name": "tmp", "emptyDir": map[string]any{}},
			map[string]any{"name": "cfg", "configMap": map[string]any{"name": "cfg"}},
			map[string]any{"name": "sec", "secret": map[string]any{"secretName": "sec"}},
			map[string]any{"name": "data", "persistentVolumeClaim": map[string]any{"claimName": "data"}},
			map[string]any{"name": "info", "downwardAPI": map[string]any{"items": []any{
				map[string]any{"path": "labels", "fieldRef": map[string]any{"fieldPath": "metadata.labels"}}}}},
			map[string]any{"name": "proj", "projected": map[string]any{"sources": []any{
				map[string]any{"configMap": map[string]any{"name": "cfg"}}}}},
		}
	}},
	{"container-port", func(p map[string]any) {
		ctr(p, "containers")["ports"] = []any{map[string]any{"containerPort": 8080}}
	}},
}

// Generate returns the corpus: every mutation alone, every pair of mutations, and the valid
// variations.
func Generate() []Spec {
	var out []Spec
	for _, v := range valid {
		p := Base()
		v.apply(p)
		out = append(out, Spec{Name: "valid-" + v.name, Pod: p})
	}
	for i, m := range mutations {
		p := Base()
		m.apply(p)
		out = append(out, Spec{Name: fmt.Sprintf("m%02d-%s", i, m.name), Mutations: []string{m.name}, Pod: p})
	}
	for i := range mutations {
		for j := i + 1; j < len(mutations); j++ {
			p := Base()
			mutations[i].apply(p)
			mutations[j].apply(p)
			out = append(out, Spec{Name: fmt.Sprintf("p%02d-%02d", i, j),
				Mutations: []string{mutations[i].name, mutations[j].name}, Pod: p})
		}
	}
	return out
}

// Evaluate runs every mandatory rule of the pack over a Pod with this spec and returns the
// violations (unknown values are not violations). An empty result means the pack admits it.
func Evaluate(podSpec map[string]any) []rules.Finding {
	r := rules.Resource{Type: "kubernetes:core/v1:Pod", Name: "corpus", URN: "urn:pulumi:corpus::corpus::kubernetes:core/v1:Pod::corpus",
		Props: rules.MapFromGo(map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "corpus"}, "spec": podSpec})}
	var out []rules.Finding
	for _, rule := range rules.ResourceRules() {
		if rule.Level != rules.Mandatory {
			continue
		}
		for _, f := range rule.Check(r) {
			if !f.Unknown {
				out = append(out, f)
			}
		}
	}
	return out
}

// MutationNames lists the mutations in corpus order.
func MutationNames() []string {
	var out []string
	for _, m := range mutations {
		out = append(out, m.name)
	}
	return slices.Clip(out)
}

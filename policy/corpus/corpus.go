// Package corpus generates pod specs that probe every Pod Security "restricted" control, and
// evaluates a pod spec with the pack's pod rules.
//
// The specs come in sections: Linux pods, pods in a user namespace (hostUsers: false, where
// Kubernetes relaxes the run-as controls) and Windows pods (spec.os.name: windows, exempt from the
// Linux-only controls). Each section has a base that passes every rule, valid variations, every
// mutation alone and every pair of mutations. The root module's e2e test sends every spec to a
// real kube-apiserver in a namespace that enforces restricted and checks that the API server and
// the pack agree both ways.
package corpus

import (
	"fmt"

	"github.com/infralab/infralab/policy/rules"
)

// ServiceAccount is the ServiceAccount every generated pod runs as; the namespace that
// admits the corpus must have it.
const ServiceAccount = "corpus"

// Spec is one generated pod spec.
type Spec struct {
	// Name is a DNS-1123 name for the pod, unique in the corpus.
	Name string
	// Section is linux, userns or windows.
	Section string
	// Mutations lists the restricted fields set wrong; none for a spec meant to be valid.
	Mutations []string
	// Annotations are the pod's annotations (AppArmor's annotation form).
	Annotations map[string]string
	// Pod is the pod's spec (what goes under .spec), as JSON-shaped Go values.
	Pod map[string]any
}

// variant edits a pod spec and its annotations.
type variant struct {
	name  string
	apply func(p map[string]any, ann map[string]string)
}

// section is a base pod and what is done to it.
type section struct {
	name      string
	prefix    string // of spec names: "" for linux (the corpus's original names), else name + "-"
	base      func() map[string]any
	valid     []variant
	mutations []variant
}

func resources() map[string]any {
	return map[string]any{
		"requests": map[string]any{"cpu": "10m", "memory": "16Mi", "ephemeral-storage": "16Mi"},
		"limits":   map[string]any{"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "64Mi"},
	}
}

func container(name string) map[string]any {
	return map[string]any{
		"name":            name,
		"image":           "registry.invalid/infralab/corpus:1.0.0",
		"imagePullPolicy": "IfNotPresent",
		"securityContext": map[string]any{
			"allowPrivilegeEscalation": false,
			"readOnlyRootFilesystem":   true,
			"capabilities":             map[string]any{"drop": []any{"ALL"}},
		},
		"resources": resources(),
	}
}

// Base returns a Linux pod spec that satisfies every pod rule and Pod Security restricted.
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

// userNamespaceBase is Base in a user namespace.
func userNamespaceBase() map[string]any {
	p := Base()
	p["hostUsers"] = false
	return p
}

// windowsBase is a Windows pod that passes every rule: none of the Linux-only fields (Kubernetes
// validation forbids them on Windows pods), non-root through runAsNonRoot and runAsUserName.
func windowsBase() map[string]any {
	c := func(name string) map[string]any {
		return map[string]any{
			"name": name, "image": "registry.invalid/infralab/corpus-windows:1.0.0", "imagePullPolicy": "IfNotPresent",
			"resources": resources(),
		}
	}
	return map[string]any{
		"os":                           map[string]any{"name": "windows"},
		"serviceAccountName":           ServiceAccount,
		"automountServiceAccountToken": false,
		"securityContext": map[string]any{
			"runAsNonRoot":   true,
			"windowsOptions": map[string]any{"runAsUserName": "ContainerUser"},
		},
		"containers":     []any{c("app")},
		"initContainers": []any{c("init")},
		"volumes":        []any{map[string]any{"name": "tmp", "emptyDir": map[string]any{}}},
	}
}

// obj returns m[key] as a map, creating it.
func obj(m map[string]any, key string) map[string]any {
	if v, ok := m[key].(map[string]any); ok {
		return v
	}
	v := map[string]any{}
	m[key] = v
	return v
}

func podSC(p map[string]any) map[string]any { return obj(p, "securityContext") }

func ctr(p map[string]any, list string) map[string]any {
	return p[list].([]any)[0].(map[string]any)
}

func ctrSC(p map[string]any, list string) map[string]any { return obj(ctr(p, list), "securityContext") }

func addVolume(p map[string]any, v map[string]any) { p["volumes"] = append(p["volumes"].([]any), v) }

func pod(apply func(p map[string]any)) func(map[string]any, map[string]string) {
	return func(p map[string]any, _ map[string]string) { apply(p) }
}

func annotate(key, value string) func(map[string]any, map[string]string) {
	return func(_ map[string]any, ann map[string]string) { ann[key] = value }
}

const appArmorAnnotation = "container.apparmor.security.beta.kubernetes.io/app"

// linuxMutations each set one restricted control wrong on a Linux pod.
var linuxMutations = []variant{
	{"pod-run-as-non-root-false", pod(func(p map[string]any) { podSC(p)["runAsNonRoot"] = false })},
	{"run-as-non-root-unset", pod(func(p map[string]any) { delete(podSC(p), "runAsNonRoot") })},
	{"container-run-as-non-root-false", pod(func(p map[string]any) { ctrSC(p, "containers")["runAsNonRoot"] = false })},
	{"pod-run-as-user-0", pod(func(p map[string]any) { podSC(p)["runAsUser"] = 0 })},
	{"container-run-as-user-0", pod(func(p map[string]any) { ctrSC(p, "containers")["runAsUser"] = 0 })},
	{"init-run-as-user-0", pod(func(p map[string]any) { ctrSC(p, "initContainers")["runAsUser"] = 0 })},
	{"privilege-escalation-true", pod(func(p map[string]any) { ctrSC(p, "containers")["allowPrivilegeEscalation"] = true })},
	{"init-privilege-escalation-unset", pod(func(p map[string]any) { delete(ctrSC(p, "initContainers"), "allowPrivilegeEscalation") })},
	{"privileged", pod(func(p map[string]any) {
		sc := ctrSC(p, "containers")
		sc["privileged"] = true
		delete(sc, "allowPrivilegeEscalation") // else validation rejects the pair before Pod Security sees it
	})},
	{"init-privileged", pod(func(p map[string]any) {
		sc := ctrSC(p, "initContainers")
		sc["privileged"] = true
		delete(sc, "allowPrivilegeEscalation")
	})},
	{"capabilities-drop-missing", pod(func(p map[string]any) { delete(ctrSC(p, "containers"), "capabilities") })},
	{"capabilities-add-sys-admin", pod(func(p map[string]any) {
		ctrSC(p, "containers")["capabilities"] = map[string]any{"drop": []any{"ALL"}, "add": []any{"SYS_ADMIN"}}
	})},
	{"init-capabilities-add-net-raw", pod(func(p map[string]any) {
		ctrSC(p, "initContainers")["capabilities"] = map[string]any{"drop": []any{"ALL"}, "add": []any{"NET_RAW"}}
	})},
	{"seccomp-unset", pod(func(p map[string]any) { delete(podSC(p), "seccompProfile") })},
	{"pod-seccomp-unconfined", pod(func(p map[string]any) { podSC(p)["seccompProfile"] = map[string]any{"type": "Unconfined"} })},
	{"container-seccomp-unconfined", pod(func(p map[string]any) {
		ctrSC(p, "containers")["seccompProfile"] = map[string]any{"type": "Unconfined"}
	})},
	{"host-network", pod(func(p map[string]any) { p["hostNetwork"] = true })},
	{"host-pid", pod(func(p map[string]any) { p["hostPID"] = true })},
	{"host-ipc", pod(func(p map[string]any) { p["hostIPC"] = true })},
	{"host-path-volume", pod(func(p map[string]any) {
		addVolume(p, map[string]any{"name": "host", "hostPath": map[string]any{"path": "/etc"}})
	})},
	{"host-port", pod(func(p map[string]any) {
		ctr(p, "containers")["ports"] = []any{map[string]any{"containerPort": 8080, "hostPort": 8080}}
	})},
	{"nfs-volume", pod(func(p map[string]any) {
		addVolume(p, map[string]any{"name": "nfs", "nfs": map[string]any{"server": "10.0.0.1", "path": "/export"}})
	})},
	{"proc-mount-unmasked", pod(func(p map[string]any) { ctrSC(p, "containers")["procMount"] = "Unmasked" })},
	{"selinux-type-spc", pod(func(p map[string]any) { podSC(p)["seLinuxOptions"] = map[string]any{"type": "spc_t"} })},
	{"selinux-user", pod(func(p map[string]any) {
		ctrSC(p, "initContainers")["seLinuxOptions"] = map[string]any{"user": "system_u"}
	})},
	{"apparmor-unconfined", pod(func(p map[string]any) {
		ctrSC(p, "containers")["appArmorProfile"] = map[string]any{"type": "Unconfined"}
	})},
	{"unsafe-sysctl", pod(func(p map[string]any) {
		podSC(p)["sysctls"] = []any{map[string]any{"name": "kernel.msgmax", "value": "65536"}}
	})},
	{"windows-host-process", pod(func(p map[string]any) {
		ctrSC(p, "containers")["windowsOptions"] = map[string]any{"hostProcess": true}
	})},
	// Added with the upstream evaluator (issue 21).
	{"apparmor-annotation-unconfined", annotate(appArmorAnnotation, "unconfined")},
	{"pod-apparmor-unconfined", pod(func(p map[string]any) { podSC(p)["appArmorProfile"] = map[string]any{"type": "Unconfined"} })},
	{"selinux-role", pod(func(p map[string]any) {
		ctrSC(p, "containers")["seLinuxOptions"] = map[string]any{"role": "system_r"}
	})},
	{"liveness-probe-host", pod(func(p map[string]any) {
		ctr(p, "containers")["livenessProbe"] = map[string]any{"httpGet": map[string]any{"host": "10.0.0.1", "path": "/", "port": 8080}}
	})},
	{"post-start-host", pod(func(p map[string]any) {
		ctr(p, "containers")["lifecycle"] = map[string]any{"postStart": map[string]any{"tcpSocket": map[string]any{"host": "10.0.0.1", "port": 80}}}
	})},
	{"unsafe-sysctl-next-to-safe", pod(func(p map[string]any) {
		podSC(p)["sysctls"] = []any{map[string]any{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"},
			map[string]any{"name": "net.core.somaxconn", "value": "1024"}}
	})},
}

// linuxValid are variations that Pod Security restricted and the pack both accept.
var linuxValid = []variant{
	{"base", pod(func(map[string]any) {})},
	{"container-level-only", pod(func(p map[string]any) {
		p["securityContext"] = map[string]any{}
		for _, list := range []string{"containers", "initContainers"} {
			sc := ctrSC(p, list)
			sc["runAsNonRoot"] = true
			sc["runAsUser"] = 10002
			sc["runAsGroup"] = 10002
			sc["seccompProfile"] = map[string]any{"type": "RuntimeDefault"}
		}
	})},
	{"seccomp-localhost", pod(func(p map[string]any) {
		ctrSC(p, "containers")["seccompProfile"] = map[string]any{"type": "Localhost", "localhostProfile": "profiles/app.json"}
	})},
	{"add-net-bind-service", pod(func(p map[string]any) {
		ctrSC(p, "containers")["capabilities"] = map[string]any{"drop": []any{"ALL"}, "add": []any{"NET_BIND_SERVICE"}}
	})},
	{"safe-sysctl", pod(func(p map[string]any) {
		podSC(p)["sysctls"] = []any{map[string]any{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}}
	})},
	{"selinux-container-t", pod(func(p map[string]any) {
		podSC(p)["seLinuxOptions"] = map[string]any{"type": "container_t", "level": "s0:c123,c456"}
	})},
	{"apparmor-runtime-default", pod(func(p map[string]any) {
		ctrSC(p, "containers")["appArmorProfile"] = map[string]any{"type": "RuntimeDefault"}
	})},
	{"proc-mount-default", pod(func(p map[string]any) { ctrSC(p, "containers")["procMount"] = "Default" })},
	{"restricted-volume-types", pod(func(p map[string]any) {
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
	})},
	{"container-port", pod(func(p map[string]any) {
		ctr(p, "containers")["ports"] = []any{map[string]any{"containerPort": 8080}}
	})},
	// Added with the upstream evaluator (issue 21): what the hand-written copy flagged wrongly.
	{"apparmor-annotation-runtime-default", annotate(appArmorAnnotation, "runtime/default")},
	{"apparmor-annotation-localhost", annotate(appArmorAnnotation, "localhost/k8s-apparmor-example-deny-write")},
	{"apparmor-localhost-field", pod(func(p map[string]any) {
		ctrSC(p, "containers")["appArmorProfile"] = map[string]any{"type": "Localhost", "localhostProfile": "k8s-apparmor-example-deny-write"}
	})},
	{"pod-apparmor-runtime-default", pod(func(p map[string]any) { podSC(p)["appArmorProfile"] = map[string]any{"type": "RuntimeDefault"} })},
	{"sysctls-tcp-rmem-wmem", pod(func(p map[string]any) {
		podSC(p)["sysctls"] = []any{
			map[string]any{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"},
			map[string]any{"name": "net.ipv4.tcp_wmem", "value": "4096 16384 4194304"},
		}
	})},
	{"sysctls-keepalive", pod(func(p map[string]any) {
		podSC(p)["sysctls"] = []any{
			map[string]any{"name": "net.ipv4.tcp_keepalive_time", "value": "600"},
			map[string]any{"name": "net.ipv4.tcp_keepalive_intvl", "value": "60"},
			map[string]any{"name": "net.ipv4.tcp_keepalive_probes", "value": "5"},
			map[string]any{"name": "net.ipv4.tcp_fin_timeout", "value": "30"},
			map[string]any{"name": "net.ipv4.ip_local_reserved_ports", "value": "30000-30100"},
		}
	})},
	{"image-volume", pod(func(p map[string]any) {
		addVolume(p, map[string]any{"name": "model", "image": map[string]any{"reference": "registry.invalid/infralab/model:1.0.0", "pullPolicy": "IfNotPresent"}})
	})},
	{"selinux-container-engine-t", pod(func(p map[string]any) {
		ctrSC(p, "containers")["seLinuxOptions"] = map[string]any{"type": "container_engine_t"}
	})},
	{"probe-on-pod-ip", pod(func(p map[string]any) {
		ctr(p, "containers")["livenessProbe"] = map[string]any{"httpGet": map[string]any{"path": "/healthz", "port": 8080}}
	})},
}

// userNamespaceValid are what a user namespace relaxes (Pod Security v1.35): the run-as controls.
var userNamespaceValid = []variant{
	{"base", pod(func(map[string]any) {})},
	{"pod-run-as-non-root-false", pod(func(p map[string]any) { podSC(p)["runAsNonRoot"] = false })},
	{"run-as-non-root-unset", pod(func(p map[string]any) { delete(podSC(p), "runAsNonRoot") })},
	{"pod-run-as-user-0", pod(func(p map[string]any) { podSC(p)["runAsUser"] = 0 })},
	{"root-in-the-namespace", pod(func(p map[string]any) {
		podSC(p)["runAsNonRoot"] = false
		podSC(p)["runAsUser"] = 0
		podSC(p)["runAsGroup"] = 0
		ctrSC(p, "containers")["runAsUser"] = 0
		ctrSC(p, "initContainers")["runAsNonRoot"] = false
	})},
}

// userNamespaceMutations are controls a user namespace does not relax.
var userNamespaceMutations = []variant{
	{"proc-mount-unmasked", pod(func(p map[string]any) { ctrSC(p, "containers")["procMount"] = "Unmasked" })},
	{"privilege-escalation-true", pod(func(p map[string]any) { ctrSC(p, "containers")["allowPrivilegeEscalation"] = true })},
	{"capabilities-add-sys-admin", pod(func(p map[string]any) {
		ctrSC(p, "containers")["capabilities"] = map[string]any{"drop": []any{"ALL"}, "add": []any{"SYS_ADMIN"}}
	})},
	{"seccomp-unset", pod(func(p map[string]any) { delete(podSC(p), "seccompProfile") })},
	{"host-path-volume", pod(func(p map[string]any) {
		addVolume(p, map[string]any{"name": "host", "hostPath": map[string]any{"path": "/etc"}})
	})},
	{"unsafe-sysctl", pod(func(p map[string]any) {
		podSC(p)["sysctls"] = []any{map[string]any{"name": "kernel.msgmax", "value": "65536"}}
	})},
	{"apparmor-unconfined", pod(func(p map[string]any) {
		ctrSC(p, "containers")["appArmorProfile"] = map[string]any{"type": "Unconfined"}
	})},
	{"run-as-user-0-and-privileged", pod(func(p map[string]any) {
		podSC(p)["runAsUser"] = 0
		sc := ctrSC(p, "containers")
		sc["privileged"] = true
		delete(sc, "allowPrivilegeEscalation")
	})},
}

// windowsValid: Windows pods skip seccomp, capabilities and allowPrivilegeEscalation, and the
// pack's read-only root filesystem and id rules do not apply to them.
var windowsValid = []variant{
	{"base", pod(func(map[string]any) {})},
	{"container-run-as-non-root", pod(func(p map[string]any) {
		delete(podSC(p), "runAsNonRoot")
		ctrSC(p, "containers")["runAsNonRoot"] = true
		ctrSC(p, "initContainers")["runAsNonRoot"] = true
	})},
	{"container-port", pod(func(p map[string]any) {
		ctr(p, "containers")["ports"] = []any{map[string]any{"containerPort": 8080}}
	})},
}

// windowsMutations are controls that still apply to Windows pods.
var windowsMutations = []variant{
	{"pod-run-as-non-root-false", pod(func(p map[string]any) { podSC(p)["runAsNonRoot"] = false })},
	{"run-as-non-root-unset", pod(func(p map[string]any) { delete(podSC(p), "runAsNonRoot") })},
	{"container-run-as-non-root-false", pod(func(p map[string]any) { ctrSC(p, "containers")["runAsNonRoot"] = false })},
	{"host-port", pod(func(p map[string]any) {
		ctr(p, "containers")["ports"] = []any{map[string]any{"containerPort": 8080, "hostPort": 8080}}
	})},
	{"host-path-volume", pod(func(p map[string]any) {
		addVolume(p, map[string]any{"name": "host", "hostPath": map[string]any{"path": "C:\\data"}})
	})},
	{"nfs-volume", pod(func(p map[string]any) {
		addVolume(p, map[string]any{"name": "nfs", "nfs": map[string]any{"server": "10.0.0.1", "path": "/export"}})
	})},
	{"host-process", pod(func(p map[string]any) {
		ctrSC(p, "containers")["windowsOptions"] = map[string]any{"hostProcess": true, "runAsUserName": "NT AUTHORITY\\SYSTEM"}
	})},
}

func sections() []section {
	return []section{
		{name: "linux", base: Base, valid: linuxValid, mutations: linuxMutations},
		{name: "userns", prefix: "userns-", base: userNamespaceBase, valid: userNamespaceValid, mutations: userNamespaceMutations},
		{name: "windows", prefix: "windows-", base: windowsBase, valid: windowsValid, mutations: windowsMutations},
	}
}

// Generate returns the corpus: per section, the valid variations, every mutation alone and
// every pair of mutations.
func Generate() []Spec {
	var out []Spec
	for _, sec := range sections() {
		build := func(name string, muts []string, vs ...variant) Spec {
			p, ann := sec.base(), map[string]string{}
			for _, v := range vs {
				v.apply(p, ann)
			}
			if len(ann) == 0 {
				ann = nil
			}
			return Spec{Name: sec.prefix + name, Section: sec.name, Mutations: muts, Annotations: ann, Pod: p}
		}
		for _, v := range sec.valid {
			out = append(out, build("valid-"+v.name, nil, v))
		}
		ms := sec.mutations
		for i, m := range ms {
			out = append(out, build(fmt.Sprintf("m%02d-%s", i, m.name), []string{m.name}, m))
		}
		for i := range ms {
			for j := i + 1; j < len(ms); j++ {
				out = append(out, build(fmt.Sprintf("p%02d-%02d", i, j), []string{ms[i].name, ms[j].name}, ms[i], ms[j]))
			}
		}
	}
	return out
}

func resource(s Spec) rules.Resource {
	meta := map[string]any{"name": "corpus"}
	if len(s.Annotations) > 0 {
		ann := map[string]any{}
		for k, v := range s.Annotations {
			ann[k] = v
		}
		meta["annotations"] = ann
	}
	return rules.Resource{Type: "kubernetes:core/v1:Pod", Name: "corpus", URN: "urn:pulumi:corpus::corpus::kubernetes:core/v1:Pod::corpus",
		Props: rules.MapFromGo(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": s.Pod})}
}

// Evaluate runs every mandatory rule of the pack, at its default settings (Pod Security
// restricted at rules.DefaultPodSecurityVersion), over a Pod with this spec and returns the
// violations (unknown values are not violations). An empty result means the pack admits it.
func Evaluate(s Spec) []rules.Finding {
	return evaluate(s, func(rules.ResourceRule) bool { return true })
}

// EvaluatePodSecurity is Evaluate with only the rules decided by the upstream Pod Security
// checks: the pack's own rules (read-only root filesystem, ids, resources, ...) are stricter than
// Pod Security on purpose.
func EvaluatePodSecurity(s Spec) []rules.Finding {
	return evaluate(s, func(r rules.ResourceRule) bool { return r.PodSecurity })
}

func evaluate(s Spec, use func(rules.ResourceRule) bool) []rules.Finding {
	r := resource(s)
	var out []rules.Finding
	for _, rule := range rules.ResourceRules() {
		if rule.Level != rules.Mandatory || !use(rule) {
			continue
		}
		for _, f := range rule.Check(r, rules.Settings{}) {
			if !f.Unknown {
				out = append(out, f)
			}
		}
	}
	return out
}

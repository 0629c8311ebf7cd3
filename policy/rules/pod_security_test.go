package rules

import (
	"testing"
)

var allPodKinds = []string{tPod, tDeployment, "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet",
	"kubernetes:apps/v1:ReplicaSet", "kubernetes:batch/v1:Job", tCronJob}

// TestGoodPodPassesEveryRule guards the tables below: their failing cases differ from a pod
// that passes everything by exactly the edit they name.
func TestGoodPodPassesEveryRule(t *testing.T) {
	for _, kind := range allPodKinds {
		spec := goodPodSpec()
		eph := goodContainer("debug")
		delete(eph, "resources")
		spec["ephemeralContainers"] = []any{eph}
		for _, rule := range ResourceRules() {
			if fs := rule.Check(res(kind, wrap(kind, spec)), Settings{}); len(fs) != 0 {
				t.Errorf("%s %s: %s", kind, rule.Name, fs[0].Message())
			}
		}
	}
}

func TestEveryPodKindIsChecked(t *testing.T) {
	if len(PodKinds()) != len(allPodKinds) {
		t.Fatalf("PodKinds() = %v", PodKinds())
	}
	for _, kind := range allPodKinds {
		fs := ruleNamed(t, "pod-privileged").Check(res(kind, wrap(kind, set(goodPodSpec(), "containers.0.securityContext.privileged", true))), Settings{})
		if len(fs) != 1 || fs[0].Container != `container "app"` {
			t.Errorf("%s: got %v", kind, fs)
		}
	}
}

func TestRunAsNonRoot(t *testing.T) {
	runRuleTable(t, "pod-run-as-non-root", []ruleCase{
		podCase("pod level true", tPod, nil, 0),
		podCase("container level true, pod unset", tDeployment, nil, 0,
			kv{"securityContext.runAsNonRoot", nil},
			kv{"containers.0.securityContext.runAsNonRoot", true},
			kv{"initContainers.0.securityContext.runAsNonRoot", true}),
		podCase("unset everywhere", tPod, []string{`container "app"`, `initContainer "migrate"`}, 0,
			kv{"securityContext.runAsNonRoot", nil}),
		podCase("container false wins over pod true", tPod, []string{`container "app", field spec.containers[0].securityContext.runAsNonRoot: runAsNonRoot is false`}, 0,
			kv{"containers.0.securityContext.runAsNonRoot", false}),
		podCase("container true wins over pod false, pod false still reported", tPod, []string{"at pod level"}, 0,
			kv{"securityContext.runAsNonRoot", false},
			kv{"containers.0.securityContext.runAsNonRoot", true},
			kv{"initContainers.0.securityContext.runAsNonRoot", true}),
		podCase("ephemeral container false", tPod, []string{`ephemeralContainer "debug"`}, 0,
			kv{"ephemeralContainers", []any{map[string]any{"name": "debug", "image": "busybox:1.36",
				"securityContext": map[string]any{"runAsNonRoot": false}}}}),
		podCase("cronjob nesting", tCronJob, []string{"spec.jobTemplate.spec.template.spec.initContainers[0].securityContext.runAsNonRoot"}, 0,
			kv{"initContainers.0.securityContext.runAsNonRoot", false}),
		podCase("pod level unknown, containers unset", tPod, nil, 1,
			kv{"securityContext.runAsNonRoot", Unknown()}),
		podCase("container level unknown", tPod, nil, 1,
			kv{"containers.0.securityContext.runAsNonRoot", Unknown()}),
		podCase("containers list unknown", tPod, nil, 1, kv{"containers", Unknown()}),
		{name: "whole spec unknown", typ: tDeployment, props: map[string]any{"spec": map[string]any{"template": map[string]any{"spec": Unknown()}}}, unknowns: 1},
		{name: "not a pod", typ: "kubernetes:core/v1:Service", props: map[string]any{"spec": map[string]any{}}},
	})
}

func TestRunAsUserGroup(t *testing.T) {
	runRuleTable(t, "pod-run-as-user-group", []ruleCase{
		podCase("non-zero ids", tPod, nil, 0),
		podCase("pod runAsUser 0", tPod, []string{"spec.securityContext.runAsUser: runAsUser is 0 (root) at pod level"}, 0,
			kv{"securityContext.runAsUser", 0}),
		podCase("container runAsUser 0", tDeployment, []string{`container "app", field spec.template.spec.containers[0].securityContext.runAsUser: runAsUser is 0 (root)`}, 0,
			kv{"containers.0.securityContext.runAsUser", 0}),
		podCase("runAsGroup 0 is pod-high-uid-gid's, not Pod Security's", tPod, nil, 0,
			kv{"containers.0.securityContext.runAsGroup", 0}),
		podCase("user namespace: runAsUser 0 allowed from v1.35", tPod, nil, 0,
			kv{"hostUsers", false}, kv{"securityContext.runAsUser", 0}),
		{name: "user namespace at v1.34: runAsUser 0 still forbidden", typ: tPod, want: []string{"at pod level"},
			props: wrap(tPod, set(set(goodPodSpec(), "hostUsers", false), "securityContext.runAsUser", 0)), settings: settingsAt(t, "restricted", "v1.34")},
		podCase("hostUsers unknown", tPod, nil, 1, kv{"hostUsers", Unknown()}, kv{"securityContext.runAsUser", 0}),
		podCase("init and ephemeral runAsUser 0", tPod, []string{`initContainer "migrate"`, `ephemeralContainer "debug"`}, 0,
			kv{"initContainers.0.securityContext.runAsUser", 0},
			kv{"ephemeralContainers", []any{map[string]any{"name": "debug", "securityContext": map[string]any{"runAsUser": 0}}}}),
		podCase("unknown uid", tPod, nil, 1, kv{"securityContext.runAsUser", Unknown()}),
	})
}

func TestPrivilegeEscalation(t *testing.T) {
	runRuleTable(t, "pod-privilege-escalation", []ruleCase{
		podCase("false everywhere", tPod, nil, 0),
		podCase("true on init container", tPod, []string{`initContainer "migrate", field spec.initContainers[0].securityContext.allowPrivilegeEscalation: allowPrivilegeEscalation is true`}, 0,
			kv{"initContainers.0.securityContext.allowPrivilegeEscalation", true}),
		podCase("unset on container", tCronJob, []string{"defaults to true"}, 0,
			kv{"containers.0.securityContext.allowPrivilegeEscalation", nil}),
		podCase("pod level has no such field: container must set it", tPod, []string{`container "app"`}, 0,
			kv{"containers.0.securityContext", map[string]any{"readOnlyRootFilesystem": true}}),
		podCase("unknown", tPod, nil, 1, kv{"containers.0.securityContext.allowPrivilegeEscalation", Unknown()}),
		podCase("securityContext unknown", tPod, nil, 1, kv{"containers.0.securityContext", Unknown()}),
	})
}

func TestPrivileged(t *testing.T) {
	runRuleTable(t, "pod-privileged", []ruleCase{
		podCase("not set", tPod, nil, 0),
		podCase("false", tPod, nil, 0, kv{"containers.0.securityContext.privileged", false}),
		podCase("true on ephemeral", tPod, []string{`ephemeralContainer "debug"`}, 0,
			kv{"ephemeralContainers", []any{map[string]any{"name": "debug", "securityContext": map[string]any{"privileged": true}}}}),
		podCase("unknown", tPod, nil, 1, kv{"containers.0.securityContext.privileged", Unknown()}),
	})
}

func TestCapabilities(t *testing.T) {
	runRuleTable(t, "pod-capabilities", []ruleCase{
		podCase("drop ALL", tPod, nil, 0),
		podCase("drop ALL add NET_BIND_SERVICE", tPod, nil, 0,
			kv{"containers.0.securityContext.capabilities.add", []any{"NET_BIND_SERVICE"}}),
		podCase("drop missing", tPod, []string{"capabilities.drop does not contain ALL"}, 0,
			kv{"containers.0.securityContext.capabilities", nil}),
		podCase("drop only NET_RAW", tDeployment, []string{`initContainer "migrate"`}, 0,
			kv{"initContainers.0.securityContext.capabilities.drop", []any{"NET_RAW"}}),
		podCase("add SYS_ADMIN", tPod, []string{"capabilities.add contains SYS_ADMIN"}, 0,
			kv{"containers.0.securityContext.capabilities.add", []any{"NET_BIND_SERVICE", "SYS_ADMIN"}}),
		podCase("drop list unknown", tPod, nil, 1, kv{"containers.0.securityContext.capabilities.drop", Unknown()}),
		podCase("one drop entry unknown, no ALL", tPod, nil, 1, kv{"containers.0.securityContext.capabilities.drop", []any{Unknown()}}),
		podCase("add entry unknown", tPod, nil, 1, kv{"containers.0.securityContext.capabilities.add", []any{Unknown()}}),
	})
}

func TestSeccomp(t *testing.T) {
	runRuleTable(t, "pod-seccomp", []ruleCase{
		podCase("pod RuntimeDefault", tPod, nil, 0),
		podCase("containers Localhost, pod unset", tPod, nil, 0,
			kv{"securityContext.seccompProfile", nil},
			kv{"containers.0.securityContext.seccompProfile", map[string]any{"type": "Localhost", "localhostProfile": "p.json"}},
			kv{"initContainers.0.securityContext.seccompProfile", map[string]any{"type": "RuntimeDefault"}}),
		podCase("unset everywhere", tPod, []string{`container "app"`, `initContainer "migrate"`}, 0,
			kv{"securityContext.seccompProfile", nil}),
		podCase("container Unconfined wins over pod", tPod, []string{"seccompProfile.type is Unconfined"}, 0,
			kv{"containers.0.securityContext.seccompProfile.type", "Unconfined"}),
		podCase("pod Unconfined", tPod, []string{"at pod level"}, 0,
			kv{"securityContext.seccompProfile.type", "Unconfined"},
			kv{"containers.0.securityContext.seccompProfile.type", "RuntimeDefault"},
			kv{"initContainers.0.securityContext.seccompProfile.type", "RuntimeDefault"}),
		podCase("pod unknown", tPod, nil, 1, kv{"securityContext.seccompProfile.type", Unknown()}),
	})
}

func TestReadOnlyRootFilesystem(t *testing.T) {
	runRuleTable(t, "pod-read-only-root-filesystem", []ruleCase{
		podCase("true", tPod, nil, 0),
		podCase("false on init", tPod, []string{`initContainer "migrate"`}, 0,
			kv{"initContainers.0.securityContext.readOnlyRootFilesystem", false}),
		podCase("unset", tCronJob, []string{`container "app"`}, 0,
			kv{"containers.0.securityContext.readOnlyRootFilesystem", nil}),
		podCase("unknown", tPod, nil, 1, kv{"containers.0.securityContext.readOnlyRootFilesystem", Unknown()}),
	})
}

func TestHostAccess(t *testing.T) {
	runRuleTable(t, "pod-host-access", []ruleCase{
		podCase("none", tPod, nil, 0),
		podCase("false is fine", tPod, nil, 0, kv{"hostNetwork", false}, kv{"hostPID", false}),
		podCase("hostNetwork hostPID hostIPC", tDeployment, []string{"hostNetwork is true", "hostPID is true", "hostIPC is true"}, 0,
			kv{"hostNetwork", true}, kv{"hostPID", true}, kv{"hostIPC", true}),
		podCase("hostPath volume", tPod, []string{`volume "root" mounts a hostPath`}, 0,
			kv{"volumes", []any{map[string]any{"name": "root", "hostPath": map[string]any{"path": "/"}}}}),
		podCase("hostPort on init container", tPod, []string{`initContainer "migrate", field spec.initContainers[0].ports[0].hostPort: hostPort 8080`}, 0,
			kv{"initContainers.0.ports", []any{map[string]any{"containerPort": 8080, "hostPort": 8080}}}),
		podCase("containerPort only", tPod, nil, 0, kv{"containers.0.ports", []any{map[string]any{"containerPort": 8080}}}),
		podCase("hostNetwork unknown", tPod, nil, 1, kv{"hostNetwork", Unknown()}),
		podCase("volumes unknown", tPod, nil, 1, kv{"volumes", Unknown()}),
		podCase("hostPort unknown", tPod, nil, 1, kv{"containers.0.ports", []any{map[string]any{"hostPort": Unknown()}}}),
	})
}

func TestVolumeTypes(t *testing.T) {
	allowed := []any{}
	// What Pod Security v1.35 restricted allows; image volumes are the newest (KEP-4639).
	for _, ty := range []string{"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret"} {
		allowed = append(allowed, map[string]any{"name": ty, ty: map[string]any{}})
	}
	runRuleTable(t, "pod-volume-types", []ruleCase{
		podCase("every restricted type", tPod, nil, 0, kv{"volumes", allowed}),
		podCase("nfs", tPod, []string{`volume "data" has type nfs`}, 0,
			kv{"volumes", []any{map[string]any{"name": "data", "nfs": map[string]any{"server": "x", "path": "/"}}}}),
		podCase("hostPath left to pod-host-access", tPod, nil, 0,
			kv{"volumes", []any{map[string]any{"name": "root", "hostPath": map[string]any{"path": "/"}}}}),
		podCase("volume unknown", tPod, nil, 1, kv{"volumes", []any{Unknown()}}),
	})
}

func TestSecurityBaseline(t *testing.T) {
	runRuleTable(t, "pod-security-baseline", []ruleCase{
		podCase("clean", tPod, nil, 0),
		podCase("allowed values", tPod, nil, 0,
			kv{"securityContext.seLinuxOptions", map[string]any{"type": "container_t", "level": "s0:c1"}},
			kv{"securityContext.sysctls", []any{map[string]any{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}}},
			kv{"containers.0.securityContext.procMount", "Default"},
			kv{"containers.0.securityContext.appArmorProfile", map[string]any{"type": "RuntimeDefault"}}),
		podCase("procMount Unmasked", tPod, []string{"procMount is Unmasked"}, 0,
			kv{"containers.0.securityContext.procMount", "Unmasked"}),
		podCase("selinux type spc_t and user", tPod, []string{"seLinuxOptions.type spc_t", "seLinuxOptions.user is set"}, 0,
			kv{"securityContext.seLinuxOptions", map[string]any{"type": "spc_t"}},
			kv{"initContainers.0.securityContext.seLinuxOptions", map[string]any{"user": "root"}}),
		podCase("apparmor unconfined field", tDeployment, []string{"appArmorProfile.type is Unconfined"}, 0,
			kv{"containers.0.securityContext.appArmorProfile", map[string]any{"type": "Unconfined"}}),
		{name: "apparmor unconfined annotation on the pod template", typ: tDeployment, want: []string{"AppArmor annotation container.apparmor.security.beta.kubernetes.io/app is \"unconfined\""},
			props: set(wrap(tDeployment, goodPodSpec()), "spec.template.metadata.annotations",
				map[string]any{"container.apparmor.security.beta.kubernetes.io/app": "unconfined"})},
		podCase("unsafe sysctl", tPod, []string{"sysctl kernel.msgmax"}, 0,
			kv{"securityContext.sysctls", []any{map[string]any{"name": "kernel.msgmax", "value": "1"}}}),
		podCase("windows host process", tPod, []string{"hostProcess is true"}, 0,
			kv{"containers.0.securityContext.windowsOptions", map[string]any{"hostProcess": true}}),
		podCase("sysctls unknown", tPod, nil, 1, kv{"securityContext.sysctls", Unknown()}),
	})
}

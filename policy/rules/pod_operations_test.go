package rules

import "testing"

func TestEphemeralStorage(t *testing.T) {
	runRuleTable(t, "pod-ephemeral-storage", []ruleCase{
		podCase("requests and limits", tPod, nil, 0),
		podCase("no request", tDeployment, []string{`container "app", field spec.template.spec.containers[0].resources.requests.ephemeral-storage: resources.requests.ephemeral-storage is not set`}, 0,
			kv{"containers.0.resources.requests.ephemeral-storage", nil}),
		podCase("no limit on init container", tCronJob, []string{`initContainer "migrate", field spec.jobTemplate.spec.template.spec.initContainers[0].resources.limits.ephemeral-storage`}, 0,
			kv{"initContainers.0.resources.limits.ephemeral-storage", nil}),
		podCase("no resources at all", tPod, []string{"requests.ephemeral-storage", "limits.ephemeral-storage"}, 0,
			kv{"containers.0.resources", nil}),
		podCase("ephemeral containers may not set resources", tPod, nil, 0,
			kv{"ephemeralContainers", []any{map[string]any{"name": "debug", "image": "busybox:1.36"}}}),
		podCase("unknown limit", tPod, nil, 1, kv{"containers.0.resources.limits.ephemeral-storage", Unknown()}),
	})
}

func TestProbesDistinct(t *testing.T) {
	http := func(path string, delay int) map[string]any {
		return map[string]any{"httpGet": map[string]any{"path": path, "port": "http"}, "initialDelaySeconds": delay}
	}
	pgIsReady := map[string]any{"exec": map[string]any{"command": []any{"pg_isready", "-h", "127.0.0.1"}}}
	runRuleTable(t, "pod-probes-distinct", []ruleCase{
		podCase("no probes", tPod, nil, 0),
		podCase("different paths", tPod, nil, 0,
			kv{"containers.0.livenessProbe", http("/healthz", 0)}, kv{"containers.0.readinessProbe", http("/readyz", 0)}),
		podCase("only liveness", tPod, nil, 0, kv{"containers.0.livenessProbe", http("/healthz", 0)}),
		podCase("same path, other timing", tDeployment, []string{`container "app", field spec.template.spec.containers[0].livenessProbe: livenessProbe runs the same check as readinessProbe ({"httpGet":{"path":"/healthz","port":"http"}})`}, 0,
			kv{"containers.0.livenessProbe", http("/healthz", 30)}, kv{"containers.0.readinessProbe", http("/healthz", 5)}),
		podCase("same exec command on init container", tPod, []string{`initContainer "migrate"`}, 0,
			kv{"initContainers.0.livenessProbe", pgIsReady}, kv{"initContainers.0.readinessProbe", pgIsReady}),
		podCase("exec versus tcpSocket", tPod, nil, 0,
			kv{"containers.0.livenessProbe", map[string]any{"tcpSocket": map[string]any{"port": 5432}}}, kv{"containers.0.readinessProbe", pgIsReady}),
		podCase("unknown liveness path", tPod, nil, 1,
			kv{"containers.0.livenessProbe", map[string]any{"httpGet": map[string]any{"path": Unknown(), "port": 80}}}, kv{"containers.0.readinessProbe", http("/readyz", 0)}),
	})
}

func TestHighUIDGID(t *testing.T) {
	runRuleTable(t, "pod-high-uid-gid", []ruleCase{
		podCase("10001 at pod level", tPod, nil, 0),
		podCase("container ids win", tPod, nil, 0,
			kv{"securityContext.runAsUser", nil}, kv{"securityContext.runAsGroup", nil},
			kv{"containers.0.securityContext.runAsUser", 10002}, kv{"containers.0.securityContext.runAsGroup", 10002},
			kv{"initContainers.0.securityContext.runAsUser", 10003}, kv{"initContainers.0.securityContext.runAsGroup", 10003}),
		podCase("postgres 999 at pod level", tDeployment, []string{
			"spec.template.spec.securityContext.runAsUser: runAsUser is 999, below 10000",
			"spec.template.spec.securityContext.runAsGroup: runAsGroup is 999"}, 0,
			kv{"securityContext.runAsUser", 999}, kv{"securityContext.runAsGroup", 999}),
		podCase("container 1000", tPod, []string{`container "app", field spec.containers[0].securityContext.runAsUser: runAsUser is 1000`}, 0,
			kv{"containers.0.securityContext.runAsUser", 1000}),
		podCase("runAsUser 0 is left to pod-run-as-user-group", tPod, nil, 0, kv{"containers.0.securityContext.runAsUser", 0}),
		podCase("runAsGroup 0", tPod, []string{`initContainer "migrate", field spec.initContainers[0].securityContext.runAsGroup: runAsGroup is 0`}, 0,
			kv{"initContainers.0.securityContext.runAsGroup", 0}),
		podCase("unset everywhere", tPod, []string{
			`container "app", field spec.containers[0].securityContext.runAsUser: runAsUser is not set on the container or the pod, so the image decides the id`,
			`initContainer "migrate", field spec.initContainers[0].securityContext.runAsUser`}, 0,
			kv{"securityContext.runAsUser", nil}),
		podCase("fsGroup and a supplemental group below 10000", tPod, []string{"fsGroup is 999", "field spec.securityContext.supplementalGroups[1]: a supplemental group is 6"}, 0,
			kv{"securityContext.fsGroup", 999}, kv{"securityContext.supplementalGroups", []any{10001, 6}}),
		podCase("user namespace is exempt", tPod, nil, 0, kv{"hostUsers", false}, kv{"securityContext.runAsUser", 999}),
		podCase("windows is exempt", tPod, nil, 0, kv{"os", map[string]any{"name": "windows"}}, kv{"securityContext.runAsUser", nil}),
		podCase("pod-level unknown", tPod, nil, 1, kv{"securityContext.runAsUser", Unknown()}),
		podCase("supplemental groups unknown", tPod, nil, 1, kv{"securityContext.supplementalGroups", Unknown()}),
	})
}

func TestImagePullPolicy(t *testing.T) {
	digest := Settings{Images: ImageSettings{RequireDigest: true}}
	const sha = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	withSettings := func(c ruleCase, s Settings) ruleCase { c.settings = s; return c }
	runRuleTable(t, "pod-image-pull-policy", []ruleCase{
		podCase("IfNotPresent", tPod, nil, 0),
		podCase("not set", tDeployment, []string{`container "app", field spec.template.spec.containers[0].imagePullPolicy: imagePullPolicy is not set`}, 0,
			kv{"containers.0.imagePullPolicy", nil}),
		podCase("not a policy", tPod, []string{`imagePullPolicy "Sometimes" is not a pull policy`}, 0,
			kv{"initContainers.0.imagePullPolicy", "Sometimes"}),
		podCase("ephemeral container too", tPod, []string{`ephemeralContainer "debug"`}, 0,
			kv{"ephemeralContainers", []any{map[string]any{"name": "debug", "image": "busybox:1.36"}}}),
		podCase("tag is fine without requireDigest", tPod, nil, 0, kv{"containers.0.imagePullPolicy", "Always"}),
		withSettings(podCase("requireDigest: a pulled tag fails", tPod, []string{
			`container "app", field spec.containers[0].image: image "ghcr.io/infralab/api:1.2.3" is pulled (imagePullPolicy IfNotPresent) by tag`,
			`initContainer "migrate", field spec.initContainers[0].image`}, 0), digest),
		withSettings(podCase("requireDigest: digests pass", tPod, nil, 0,
			kv{"containers.0.image", "ghcr.io/infralab/api:1.2.3" + sha}, kv{"initContainers.0.image", "ghcr.io/infralab/api" + sha}), digest),
		withSettings(podCase("requireDigest: a local image (Never) passes by tag", tPod, nil, 0,
			kv{"containers.0.imagePullPolicy", "Never"}, kv{"initContainers.0.imagePullPolicy", "Never"}), digest),
		withSettings(podCase("requireDigest: unknown image", tPod, nil, 1,
			kv{"containers.0.image", Unknown()}, kv{"initContainers.0.imagePullPolicy", "Never"}), digest),
		podCase("unknown policy", tPod, nil, 1, kv{"containers.0.imagePullPolicy", Unknown()}),
	})
}

// Windows pods must not set readOnlyRootFilesystem (Kubernetes validation), so the rule skips them.
func TestReadOnlyRootFilesystemWindows(t *testing.T) {
	runRuleTable(t, "pod-read-only-root-filesystem", []ruleCase{
		podCase("windows without the field", tPod, nil, 0, kv{"os", map[string]any{"name": "windows"}},
			kv{"containers.0.securityContext.readOnlyRootFilesystem", nil}, kv{"initContainers.0.securityContext.readOnlyRootFilesystem", nil}),
		podCase("linux without the field", tPod, []string{`container "app"`}, 0, kv{"os", map[string]any{"name": "linux"}},
			kv{"containers.0.securityContext.readOnlyRootFilesystem", nil}),
	})
}

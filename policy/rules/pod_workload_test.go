package rules

import "testing"

func TestResources(t *testing.T) {
	runRuleTable(t, "pod-resources", []ruleCase{
		podCase("requests and limits", tPod, nil, 0),
		podCase("no cpu limit is only advisory", tPod, nil, 0, kv{"containers.0.resources.limits.cpu", nil}),
		podCase("no resources on init container", tDeployment, []string{
			`initContainer "migrate", field spec.template.spec.initContainers[0].resources.requests.cpu: resources.requests.cpu is not set`,
			"resources.requests.memory is not set", "resources.limits.memory is not set"}, 0,
			kv{"initContainers.0.resources", nil}),
		podCase("memory limit missing in a CronJob", tCronJob, []string{"spec.jobTemplate.spec.template.spec.containers[0].resources.limits.memory"}, 0,
			kv{"containers.0.resources.limits.memory", nil}),
		podCase("ephemeral containers cannot have resources", tPod, nil, 0,
			kv{"ephemeralContainers", []any{map[string]any{"name": "debug"}}}),
		podCase("unknown memory request", tPod, nil, 1, kv{"containers.0.resources.requests.memory", Unknown()}),
		podCase("unknown resources block", tPod, nil, 3, kv{"containers.0.resources", Unknown()}),
	})
	runRuleTable(t, "pod-cpu-limit", []ruleCase{
		podCase("cpu limit set", tPod, nil, 0),
		podCase("cpu limit missing", tPod, []string{"resources.limits.cpu is not set"}, 0, kv{"containers.0.resources.limits.cpu", nil}),
		podCase("unknown", tPod, nil, 1, kv{"containers.0.resources.limits.cpu", Unknown()}),
	})
	if ruleNamed(t, "pod-cpu-limit").Level != Advisory || ruleNamed(t, "pod-resources").Level != Mandatory {
		t.Error("cpu limits must be advisory, requests and memory limits mandatory")
	}
}

func TestImageTag(t *testing.T) {
	runRuleTable(t, "pod-image-tag", []ruleCase{
		podCase("tag", tPod, nil, 0),
		podCase("digest", tPod, nil, 0, kv{"containers.0.image", "ghcr.io/x/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}),
		podCase("registry port and tag", tPod, nil, 0, kv{"containers.0.image", "localhost:5000/api:1.0"}),
		podCase("no tag", tPod, []string{`image "postgres" has no tag`}, 0, kv{"containers.0.image", "postgres"}),
		podCase("registry port, no tag", tPod, []string{"has no tag"}, 0, kv{"containers.0.image", "localhost:5000/api"}),
		podCase("latest on init container", tPod, []string{`initContainer "migrate", field spec.initContainers[0].image: image "busybox:latest" uses the tag latest`}, 0,
			kv{"initContainers.0.image", "busybox:latest"}),
		podCase("missing image", tPod, []string{"image is not set"}, 0, kv{"containers.0.image", nil}),
		podCase("ephemeral latest", tPod, []string{`ephemeralContainer "debug"`}, 0,
			kv{"ephemeralContainers", []any{map[string]any{"name": "debug", "image": "busybox:latest"}}}),
		podCase("unknown image", tPod, nil, 1, kv{"containers.0.image", Unknown()}),
	})
}

func TestServiceAccountToken(t *testing.T) {
	withAnnotation := func(kind string, on string, value any, edits ...kv) map[string]any {
		spec := goodPodSpec()
		for _, e := range edits {
			set(spec, e.p, e.v)
		}
		props := wrap(kind, spec)
		path := map[string]string{"template": "spec.template.metadata.annotations", "object": "metadata.annotations",
			"pod": "metadata.annotations", "cron": "spec.jobTemplate.spec.template.metadata.annotations"}[on]
		return set(props, path, map[string]any{APIAccessAnnotation: value})
	}
	runRuleTable(t, "pod-service-account-token", []ruleCase{
		podCase("false", tPod, nil, 0),
		podCase("unset", tDeployment, []string{"spec.template.spec.automountServiceAccountToken: automountServiceAccountToken is not set"}, 0,
			kv{"automountServiceAccountToken", nil}),
		podCase("true", tPod, []string{"automountServiceAccountToken is true. Fix: set automountServiceAccountToken: false in the pod spec, or opt in with the annotation " + APIAccessAnnotation}, 0,
			kv{"automountServiceAccountToken", true}),
		{name: "opt in on the pod template", typ: tDeployment,
			props: withAnnotation(tDeployment, "template", "watches Endpoints", kv{"automountServiceAccountToken", true})},
		{name: "opt in on the workload object", typ: tDeployment,
			props: withAnnotation(tDeployment, "object", "watches Endpoints", kv{"automountServiceAccountToken", nil})},
		{name: "opt in on a CronJob's pod template", typ: tCronJob,
			props: withAnnotation(tCronJob, "cron", "creates Jobs", kv{"automountServiceAccountToken", true})},
		{name: "opt in on a Pod", typ: tPod, props: withAnnotation(tPod, "pod", "reads ConfigMaps", kv{"automountServiceAccountToken", true})},
		{name: "opt in without reason", typ: tDeployment, want: []string{"the API access opt-in has no reason"},
			props: withAnnotation(tDeployment, "template", " ", kv{"automountServiceAccountToken", true})},
		{name: "annotation unknown", typ: tDeployment, unknowns: 1,
			props: withAnnotation(tDeployment, "template", Unknown(), kv{"automountServiceAccountToken", true})},
		podCase("automount unknown", tPod, nil, 1, kv{"automountServiceAccountToken", Unknown()}),
	})
}

func TestServiceAccountName(t *testing.T) {
	runRuleTable(t, "workload-service-account", []ruleCase{
		podCase("own account", tPod, nil, 0),
		podCase("unset", tDeployment, []string{"runs as the namespace's default ServiceAccount"}, 0, kv{"serviceAccountName", nil}),
		podCase("default", tCronJob, []string{"spec.jobTemplate.spec.template.spec.serviceAccountName"}, 0, kv{"serviceAccountName", "default"}),
		podCase("deprecated serviceAccount field", tPod, nil, 0, kv{"serviceAccountName", nil}, kv{"serviceAccount", "api"}),
		podCase("unknown", tPod, nil, 1, kv{"serviceAccountName", Unknown()}),
	})
}

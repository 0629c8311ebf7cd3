package rules

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

func settingsAt(t *testing.T, level, version string) Settings {
	t.Helper()
	ps, err := ParsePodSecurity(level, version)
	if err != nil {
		t.Fatal(err)
	}
	return Settings{PodSecurity: ps}
}

// The classes where a hand-written copy of the Pod Security checks lagged upstream (issue 21):
// each is decided by the upstream checks now, at the configured version.
func TestPodSecurityFollowsUpstream(t *testing.T) {
	windows := func(p map[string]any) map[string]any {
		set(p, "os", map[string]any{"name": "windows"})
		set(p, "securityContext", map[string]any{"runAsNonRoot": true})
		for _, c := range []string{"containers.0", "initContainers.0"} {
			set(p, c+".securityContext", map[string]any{"runAsNonRoot": true})
		}
		return p
	}
	cases := []struct {
		name     string
		rule     string
		spec     map[string]any
		meta     map[string]any // pod template annotations
		settings Settings
		want     []string
	}{
		{name: "apparmor annotation runtime/default", rule: "pod-security-baseline",
			meta: map[string]any{"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}},
		{name: "apparmor annotation localhost profile", rule: "pod-security-baseline",
			meta: map[string]any{"container.apparmor.security.beta.kubernetes.io/app": "localhost/k8s-apparmor-example"}},
		{name: "apparmor annotation unconfined", rule: "pod-security-baseline",
			meta: map[string]any{"container.apparmor.security.beta.kubernetes.io/app": "unconfined", "other": "x"},
			want: []string{`field spec.template.metadata.annotations.container.apparmor.security.beta.kubernetes.io/app: AppArmor annotation container.apparmor.security.beta.kubernetes.io/app is "unconfined"`}},
		{name: "apparmor field Localhost at pod level", rule: "pod-security-baseline",
			spec: set(goodPodSpec(), "securityContext.appArmorProfile", map[string]any{"type": "Localhost", "localhostProfile": "p"})},
		{name: "apparmor field Unconfined at pod level", rule: "pod-security-baseline",
			spec: set(goodPodSpec(), "securityContext.appArmorProfile", map[string]any{"type": "Unconfined"}),
			want: []string{"spec.template.spec.securityContext.appArmorProfile.type: appArmorProfile.type is Unconfined at pod level"}},
		{name: "apparmor field Unconfined on init container", rule: "pod-security-baseline",
			spec: set(goodPodSpec(), "initContainers.0.securityContext.appArmorProfile", map[string]any{"type": "Unconfined"}),
			want: []string{`initContainer "migrate", field spec.template.spec.initContainers[0].securityContext.appArmorProfile.type: appArmorProfile.type is Unconfined`}},
		{name: "sysctl tcp_rmem and tcp_wmem are safe from v1.32", rule: "pod-security-baseline",
			spec: set(goodPodSpec(), "securityContext.sysctls", []any{
				map[string]any{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"},
				map[string]any{"name": "net.ipv4.tcp_wmem", "value": "4096 16384 4194304"}})},
		{name: "sysctl tcp_rmem is not safe at v1.31", rule: "pod-security-baseline", settings: settingsAt(t, "restricted", "v1.31"),
			spec: set(goodPodSpec(), "securityContext.sysctls", []any{
				map[string]any{"name": "net.ipv4.tcp_keepalive_time", "value": "600"},
				map[string]any{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}}),
			want: []string{"spec.template.spec.securityContext.sysctls[1]: sysctl net.ipv4.tcp_rmem is not in the Pod Security restricted:v1.31 safe set"}},
		{name: "image volume is a restricted type", rule: "pod-volume-types",
			spec: set(goodPodSpec(), "volumes", []any{map[string]any{"name": "model", "image": map[string]any{"reference": "ghcr.io/infralab/model:1"}}})},
		{name: "nfs volume names the allowed types, image included", rule: "pod-volume-types",
			spec: set(goodPodSpec(), "volumes", []any{map[string]any{"name": "data", "nfs": map[string]any{"server": "x", "path": "/"}}}),
			want: []string{`field spec.template.spec.volumes[0].nfs: volume "data" has type nfs, which Pod Security restricted forbids. Fix: use one of configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected, secret`}},
		{name: "user namespace relaxes runAsNonRoot", rule: "pod-run-as-non-root",
			spec: set(set(set(goodPodSpec(), "hostUsers", false), "securityContext.runAsNonRoot", false), "securityContext.runAsUser", 0)},
		{name: "user namespace does not relax runAsNonRoot at v1.34", rule: "pod-run-as-non-root", settings: settingsAt(t, "restricted", "v1.34"),
			spec: set(set(goodPodSpec(), "hostUsers", false), "securityContext.runAsNonRoot", false),
			want: []string{"runAsNonRoot is false at pod level", `container "app"`, `initContainer "migrate"`}},
		{name: "user namespace: procMount Unmasked still forbidden at restricted", rule: "pod-security-baseline",
			spec: set(set(goodPodSpec(), "hostUsers", false), "containers.0.securityContext.procMount", "Unmasked"),
			want: []string{`container "app", field spec.template.spec.containers[0].securityContext.procMount: procMount is Unmasked`}},
		{name: "user namespace: procMount Unmasked allowed at baseline", rule: "pod-security-baseline", settings: settingsAt(t, "baseline", ""),
			spec: set(set(goodPodSpec(), "hostUsers", false), "containers.0.securityContext.procMount", "Unmasked")},
		{name: "windows pod: no seccomp needed", rule: "pod-seccomp", spec: windows(goodPodSpec())},
		{name: "windows pod: no capabilities needed", rule: "pod-capabilities", spec: windows(goodPodSpec())},
		{name: "windows pod: no allowPrivilegeEscalation needed", rule: "pod-privilege-escalation", spec: windows(goodPodSpec())},
		{name: "windows pod: read-only root does not apply", rule: "pod-read-only-root-filesystem", spec: windows(goodPodSpec())},
		{name: "windows pod: runAsNonRoot still required", rule: "pod-run-as-non-root",
			spec: set(windows(goodPodSpec()), "containers.0.securityContext.runAsNonRoot", false),
			want: []string{`container "app", field spec.template.spec.containers[0].securityContext.runAsNonRoot: runAsNonRoot is false`}},
		{name: "windows host process", rule: "pod-security-baseline",
			spec: set(windows(goodPodSpec()), "containers.0.securityContext.windowsOptions", map[string]any{"hostProcess": true}),
			want: []string{"containers[0].securityContext.windowsOptions.hostProcess: windowsOptions.hostProcess is true"}},
		{name: "baseline level: runAsNonRoot not required", rule: "pod-run-as-non-root", settings: settingsAt(t, "baseline", ""),
			spec: set(goodPodSpec(), "securityContext.runAsNonRoot", false)},
		{name: "privileged level: nothing checked", rule: "pod-privileged", settings: settingsAt(t, "privileged", ""),
			spec: set(goodPodSpec(), "containers.0.securityContext.privileged", true)},
		{name: "baseline level: capabilities beyond the default set", rule: "pod-capabilities", settings: settingsAt(t, "baseline", ""),
			spec: set(goodPodSpec(), "containers.0.securityContext.capabilities", map[string]any{"add": []any{"CHOWN", "SYS_ADMIN"}}),
			want: []string{"capabilities.add[1]: capabilities.add contains SYS_ADMIN, beyond the default set Pod Security baseline allows"}},
		{name: "probe aimed at another host (v1.34)", rule: "pod-host-access",
			spec: set(goodPodSpec(), "containers.0.livenessProbe", map[string]any{"httpGet": map[string]any{"host": "10.0.0.1", "port": 80}}),
			want: []string{`containers[0].livenessProbe.httpGet.host: livenessProbe.httpGet.host is "10.0.0.1"`}},
		{name: "probe aimed at another host is fine at v1.33", rule: "pod-host-access", settings: settingsAt(t, "restricted", "v1.33"),
			spec: set(goodPodSpec(), "containers.0.livenessProbe", map[string]any{"httpGet": map[string]any{"host": "10.0.0.1", "port": 80}})},
		{name: "pod Unconfined seccomp with valid containers reports the pod only", rule: "pod-seccomp",
			spec: set(set(goodPodSpec(), "securityContext.seccompProfile.type", "Unconfined"), "containers.0.securityContext.seccompProfile", map[string]any{"type": "RuntimeDefault"}),
			want: []string{"seccompProfile.type is Unconfined at pod level"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			if spec == nil {
				spec = goodPodSpec()
			}
			props := wrap(tDeployment, spec)
			if tc.meta != nil {
				set(props, "spec.template.metadata.annotations", tc.meta)
			}
			var got []string
			for _, f := range ruleNamed(t, tc.rule).Check(res(tDeployment, props), tc.settings) {
				if f.Unknown {
					t.Errorf("unexpected unknown: %s", f.Message())
					continue
				}
				got = append(got, f.Message())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("finding %q does not contain %q", got[i], w)
				}
			}
		})
	}
}

// A failure the rule cannot place on a field is still reported, with the upstream reason.
func TestPodSecurityFailureWithoutPlacementIsReported(t *testing.T) {
	silent := psaRule{checks: []policy.CheckID{idPrivileged}, locate: func(*psaLocator) {}}
	fs := podSecurityRule("pod-privileged", silent)(res(tPod, wrap(tPod, set(goodPodSpec(), "containers.0.securityContext.privileged", true))), Settings{})
	if len(fs) != 1 || !strings.Contains(fs[0].Message(), `field spec: Pod Security restricted:v1.35 forbids this pod: privileged (container "app" must not set securityContext.privileged=true)`) {
		t.Fatalf("got %v", fs)
	}
}

func TestPodSpecThatDoesNotDecode(t *testing.T) {
	props := wrap(tPod, set(goodPodSpec(), "securityContext.runAsUser", "ten thousand"))
	for _, rule := range []string{"pod-security-baseline", "pod-run-as-user-group"} {
		fs := ruleNamed(t, rule).Check(res(tPod, props), Settings{})
		if rule == decodeRule {
			if len(fs) != 1 || !strings.Contains(fs[0].Message(), "field spec.securityContext.runAsUser: the pod spec does not fit the Kubernetes API types") {
				t.Errorf("%s: %v", rule, fs)
			}
		} else if len(fs) != 0 {
			t.Errorf("%s reports the decode error too: %v", rule, fs)
		}
	}
}

// active() picks checks the way policy.NewEvaluator does; this compares the two on pods that
// fail many checks at once, at every level and at versions across the checks' revisions.
func TestActiveChecksMatchUpstream(t *testing.T) {
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := true
	root := int64(0)
	unmasked := corev1.UnmaskedProcMount
	bad := corev1.Container{Name: "c", SecurityContext: &corev1.SecurityContext{Privileged: &tr, RunAsUser: &root, ProcMount: &unmasked,
		Capabilities:   &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}},
		Ports:         []corev1.ContainerPort{{HostPort: 80}},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Host: "x"}}}}
	specs := []corev1.PodSpec{
		{Containers: []corev1.Container{{Name: "plain"}}},
		{HostNetwork: true, Containers: []corev1.Container{bad}, Volumes: []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{}}}},
			SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "net.ipv4.tcp_rmem"}, {Name: "kernel.msgmax"}}}},
		{HostUsers: new(bool), Containers: []corev1.Container{bad}},
	}
	meta := metav1.ObjectMeta{Annotations: map[string]string{"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}}
	for _, level := range []api.Level{api.LevelPrivileged, api.LevelBaseline, api.LevelRestricted} {
		for _, version := range []string{"v1.0", "v1.19", "v1.22", "v1.25", "v1.29", "v1.31", "v1.32", "v1.34", "v1.35", "v1.99", "latest"} {
			v, _ := api.ParseVersion(version)
			lv := api.LevelVersion{Level: level, Version: v}
			for i, spec := range specs {
				var want, got []string
				for _, r := range ev.EvaluatePod(lv, &meta, &spec) {
					want = append(want, fmt.Sprint(r))
				}
				for _, c := range upstreamChecks().active(lv) {
					got = append(got, fmt.Sprint(c.run(&meta, &spec)))
				}
				slices.Sort(want)
				slices.Sort(got)
				if !slices.Equal(want, got) {
					t.Errorf("%s, pod %d:\nupstream %v\nours     %v", lv, i, want, got)
				}
			}
		}
	}
}

func TestParseSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  map[string]any
		want    string // PodSecurity.String()
		digest  bool
		problem string
	}{
		{name: "empty", want: "restricted:v1.35"},
		{name: "baseline latest", config: map[string]any{"podSecurity": map[string]any{"level": "baseline", "version": "latest"}}, want: "baseline:latest"},
		{name: "version only", config: map[string]any{"podSecurity": map[string]any{"version": "v1.33"}}, want: "restricted:v1.33"},
		{name: "digests", config: map[string]any{"images": map[string]any{"requireDigest": true}}, want: "restricted:v1.35", digest: true},
		{name: "bad level", config: map[string]any{"podSecurity": map[string]any{"level": "strict"}}, want: "restricted:v1.35",
			problem: `settings.podSecurity: level "strict" must be one of privileged, baseline, restricted; use level baseline or restricted`},
		{name: "bad version", config: map[string]any{"podSecurity": map[string]any{"version": "1.35"}}, want: "restricted:v1.35",
			problem: `settings.podSecurity: version "1.35" must be "latest" or "v1.x"`},
		{name: "unknown key", config: map[string]any{"podsecurity": map[string]any{}}, want: "restricted:v1.35",
			problem: "settings.podsecurity: unknown setting"},
		{name: "requireDigest not a bool", config: map[string]any{"images": map[string]any{"requireDigest": "yes"}}, want: "restricted:v1.35",
			problem: "settings.images.requireDigest: must be true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, problems := ParseSettings(tc.config)
			if s.PodSecurity.String() != tc.want || s.Images.RequireDigest != tc.digest {
				t.Errorf("got %s digest=%v", s.PodSecurity, s.Images.RequireDigest)
			}
			if tc.problem == "" && len(problems) > 0 || tc.problem != "" && (len(problems) != 1 || !strings.Contains(problems[0], tc.problem)) {
				t.Errorf("problems %q, want %q", problems, tc.problem)
			}
		})
	}
}

// The default version is the cluster's Kubernetes minor and the evaluator module's release.
func TestDefaultPodSecurityVersion(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s.io/pod-security-admission v0\.(\d+)\.`).FindSubmatch(gomod)
	if m == nil || "v1."+string(m[1]) != DefaultPodSecurityVersion {
		t.Errorf("policy/go.mod has k8s.io/pod-security-admission %s, DefaultPodSecurityVersion is %s: move them together", m, DefaultPodSecurityVersion)
	}
	// Pseudo-versions (k8s.io/utils, kube-openapi) are not released with Kubernetes.
	for _, line := range regexp.MustCompile(`(?m)^\s*k8s.io/[a-z-]+ v0\.\d+\.\d+( |$)`).FindAll(gomod, -1) {
		if !strings.Contains(string(line), " v0."+string(m[1])+".") {
			t.Errorf("policy/go.mod: %s is not the release of k8s.io/pod-security-admission; keep every k8s.io module at one release", strings.TrimSpace(string(line)))
		}
	}
	lab, err := os.ReadFile(filepath.Join("..", "..", "stacks", "Pulumi.lab.yaml"))
	if err != nil {
		t.Skip("stacks/Pulumi.lab.yaml is not next to the policy module: ", err)
	}
	k := regexp.MustCompile(`(?m)^\s+version: (\d+)\.(\d+)\.\d+`).FindSubmatch(lab)
	if k == nil || fmt.Sprintf("v%s.%s", k[1], k[2]) != DefaultPodSecurityVersion {
		t.Errorf("the lab stack runs Kubernetes %s, the pack defaults to Pod Security %s", k, DefaultPodSecurityVersion)
	}
}

// stacks/policy.lab.json is the pack config the lab runs with; every entry must parse.
func TestLabPackConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "stacks", "policy.lab.json"))
	if err != nil {
		t.Skip("stacks/policy.lab.json is not next to the policy module: ", err)
	}
	var cfg map[string]map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	s, problems := ParseSettings(cfg["settings"])
	if len(problems) > 0 || s.PodSecurity.String() != "restricted:"+DefaultPodSecurityVersion {
		t.Errorf("settings %s: %v", s.PodSecurity, problems)
	}
	if ex := ParseExceptions(cfg["exceptions"], func(n string) bool { return slices.Contains(RuleNames(), n) }); len(ex.Problems) > 0 {
		t.Errorf("exceptions: %v", ex.Problems)
	}
}

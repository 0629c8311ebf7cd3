package rules

import (
	"fmt"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// The Pod Security rules do not copy the Pod Security Standards: they run the checks of
// k8s.io/pod-security-admission's policy package, the code kube-apiserver's PodSecurity admission
// runs, at the level and version of the pack config. The pack only adds where each failure sits
// (field path) and how to fix it.

// DefaultPodSecurityVersion is the Pod Security version the pack evaluates unless its config says
// otherwise: the minor of the cluster's Kubernetes (stacks/Pulumi.lab.yaml kubernetes.version)
// and of the k8s.io/pod-security-admission module the pack is built with (a test pins both).
const DefaultPodSecurityVersion = "v1.35"

// PodSecurity is the Pod Security level and version the pod rules evaluate.
type PodSecurity struct {
	Level   api.Level   // "" means restricted
	Version api.Version // the zero value means DefaultPodSecurityVersion
}

func (ps PodSecurity) levelVersion() api.LevelVersion {
	lv := api.LevelVersion{Level: ps.Level, Version: ps.Version}
	if lv.Level == "" {
		lv.Level = api.LevelRestricted
	}
	if lv.Version == (api.Version{}) {
		lv.Version, _ = api.ParseVersion(DefaultPodSecurityVersion)
	}
	return lv
}

func (ps PodSecurity) String() string { return ps.levelVersion().String() }

// ParsePodSecurity reads a level ("baseline", "restricted"; "privileged" turns the checks off)
// and a version ("v1.x" or "latest"); empty strings take the defaults.
func ParsePodSecurity(level, version string) (PodSecurity, error) {
	var ps PodSecurity
	if level != "" {
		l, err := api.ParseLevel(level)
		if err != nil {
			return PodSecurity{}, fmt.Errorf("level %q %v", level, err)
		}
		ps.Level = l
	}
	if version != "" {
		v, err := api.ParseVersion(version)
		if err != nil {
			return PodSecurity{}, fmt.Errorf("version %q %v", version, err)
		}
		ps.Version = v
	}
	return ps, nil
}

// psaCheck is one upstream check at one policy version.
type psaCheck struct {
	id  policy.CheckID
	run policy.CheckPodFn
}

// checkTable holds the upstream checks; it is immutable once built.
type checkTable struct {
	checks []policy.Check
	max    api.Version
}

var upstreamChecks = sync.OnceValue(func() checkTable {
	t := checkTable{checks: policy.DefaultChecks()}
	for _, c := range t.checks {
		if v := c.Versions[len(c.Versions)-1].MinimumVersion; t.max.Older(v) {
			t.max = v
		}
	}
	return t
})

// active returns the checks the upstream evaluator runs for lv, by ID. It follows
// policy.NewEvaluator: a version newer than the newest check is evaluated as that newest one;
// restricted runs its own checks plus the baseline ones it does not override; each check runs
// its revision with the highest minimum version not above lv.Version.
// TestActiveChecksMatchUpstream compares the outcome with policy's own EvaluatePod.
func (t checkTable) active(lv api.LevelVersion) []psaCheck {
	if lv.Level == api.LevelPrivileged {
		return nil
	}
	if t.max.Older(lv.Version) {
		lv.Version = t.max
	}
	pick := func(c policy.Check) (policy.VersionedCheck, bool) {
		var found policy.VersionedCheck
		ok := false
		for _, v := range c.Versions {
			if !lv.Version.Older(v.MinimumVersion) {
				found, ok = v, true
			}
		}
		return found, ok
	}
	overridden := map[policy.CheckID]bool{}
	var out []psaCheck
	for _, c := range t.checks {
		if c.Level != api.LevelRestricted || lv.Level != api.LevelRestricted {
			continue
		}
		if v, ok := pick(c); ok {
			for _, o := range v.OverrideCheckIDs {
				overridden[o] = true
			}
			out = append(out, psaCheck{id: c.ID, run: v.CheckPod})
		}
	}
	for _, c := range t.checks {
		if c.Level != api.LevelBaseline || overridden[c.ID] {
			continue
		}
		if v, ok := pick(c); ok {
			out = append(out, psaCheck{id: c.ID, run: v.CheckPod})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// psaVerdict is what the upstream checks say about one pod, with the means to ask again about
// variations of it (one container, one volume), which is how findings are placed on fields.
type psaVerdict struct {
	meta   metav1.ObjectMeta
	spec   corev1.PodSpec
	checks map[policy.CheckID]policy.CheckPodFn
	failed map[policy.CheckID]policy.CheckResult
}

func evaluatePodSecurity(ps PodSecurity, meta metav1.ObjectMeta, spec corev1.PodSpec) *psaVerdict {
	v := &psaVerdict{meta: meta, spec: spec, checks: map[policy.CheckID]policy.CheckPodFn{},
		failed: map[policy.CheckID]policy.CheckResult{}}
	for _, c := range upstreamChecks().active(ps.levelVersion()) {
		v.checks[c.id] = c.run
		m, s := meta, spec
		if r := c.run(&m, &s); !r.Allowed {
			v.failed[c.id] = r
		}
	}
	return v
}

// fails reports whether check id fails for the pod as it is.
func (v *psaVerdict) fails(id policy.CheckID) bool {
	_, ok := v.failed[id]
	return ok
}

// failsWith reports whether check id fails for a variation of the pod: edit changes deep copies.
func (v *psaVerdict) failsWith(id policy.CheckID, edit func(meta *metav1.ObjectMeta, spec *corev1.PodSpec)) bool {
	run, ok := v.checks[id]
	if !ok || !v.fails(id) {
		return false
	}
	meta, spec := v.meta.DeepCopy(), v.spec.DeepCopy()
	edit(meta, spec)
	return !run(meta, spec).Allowed
}

// containerRef names one container of the pod: its list and index.
type containerRef struct {
	list  string // containers, initContainers or ephemeralContainers
	index int
}

// only keeps just the referenced container in spec (in its own list), so a check judges it
// alone with the pod-level settings it inherits.
func (c containerRef) only(spec *corev1.PodSpec) {
	keep := func(n int) bool { return n == c.index }
	switch c.list {
	case "containers":
		spec.Containers = filterIndex(spec.Containers, keep)
		spec.InitContainers, spec.EphemeralContainers = nil, nil
	case "initContainers":
		spec.InitContainers = filterIndex(spec.InitContainers, keep)
		spec.Containers, spec.EphemeralContainers = nil, nil
	default:
		spec.EphemeralContainers = filterIndex(spec.EphemeralContainers, keep)
		spec.Containers, spec.InitContainers = nil, nil
	}
}

func filterIndex[T any](in []T, keep func(int) bool) []T {
	var out []T
	for i, x := range in {
		if keep(i) {
			out = append(out, x)
		}
	}
	return out
}

// container returns the referenced container, or nil when the list is shorter (an unknown list).
func (c containerRef) container(spec *corev1.PodSpec) *corev1.Container {
	switch c.list {
	case "containers":
		if c.index < len(spec.Containers) {
			return &spec.Containers[c.index]
		}
	case "initContainers":
		if c.index < len(spec.InitContainers) {
			return &spec.InitContainers[c.index]
		}
	default:
		if c.index < len(spec.EphemeralContainers) {
			return (*corev1.Container)(&spec.EphemeralContainers[c.index].EphemeralContainerCommon)
		}
	}
	return nil
}

// noContainers drops every container, so only pod-level settings are judged.
func noContainers(_ *metav1.ObjectMeta, spec *corev1.PodSpec) {
	spec.Containers, spec.InitContainers, spec.EphemeralContainers = nil, nil, nil
}

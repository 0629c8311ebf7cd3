package rules

import "fmt"

// podSpecPaths maps every pod-bearing kind to where its pod template lives.
var podSpecPaths = map[string][]string{
	"kubernetes:core/v1:Pod":         {"spec"},
	"kubernetes:apps/v1:Deployment":  {"spec", "template", "spec"},
	"kubernetes:apps/v1:StatefulSet": {"spec", "template", "spec"},
	"kubernetes:apps/v1:DaemonSet":   {"spec", "template", "spec"},
	"kubernetes:apps/v1:ReplicaSet":  {"spec", "template", "spec"},
	"kubernetes:batch/v1:Job":        {"spec", "template", "spec"},
	"kubernetes:batch/v1:CronJob":    {"spec", "jobTemplate", "spec", "template", "spec"},
}

// PodKinds lists the resource types whose pods the pod rules check.
func PodKinds() []string {
	out := make([]string, 0, len(podSpecPaths))
	for k := range podSpecPaths {
		out = append(out, k)
	}
	return out
}

// pod is the pod template of a workload.
type pod struct {
	spec node
	// meta is the pod template's metadata (the object's own metadata for a Pod).
	meta node
	// objMeta is the workload object's metadata.
	objMeta node
}

type container struct {
	node
	// label names the container in messages, e.g. `initContainer "migrate"`.
	label string
	// ephemeral containers may not declare resources or ports.
	ephemeral bool
}

// podOf returns the pod template of a pod-bearing resource.
func podOf(r Resource) (pod, bool) {
	keys, ok := podSpecPaths[r.Type]
	if !ok {
		return pod{}, false
	}
	top := root(r.Props, "")
	spec := top.at(keys...)
	meta := top.at(keys[:len(keys)-1]...).get("metadata")
	return pod{spec: spec, meta: meta, objMeta: top.get("metadata")}, true
}

var containerLists = []struct{ key, singular string }{
	{"containers", "container"},
	{"initContainers", "initContainer"},
	{"ephemeralContainers", "ephemeralContainer"},
}

// containers lists every container, init container and ephemeral container. Lists whose
// value is unknown are reported through unknownFn.
func (p pod) containers(unknownFn func(field string)) []container {
	var out []container
	for _, l := range containerLists {
		list := p.spec.get(l.key)
		items, ok := list.items()
		if !ok {
			unknownFn(list.path)
			continue
		}
		for i, it := range items {
			name, ok := it.get("name").str()
			if !ok {
				name = fmt.Sprintf("#%d", i)
			}
			out = append(out, container{node: it, label: fmt.Sprintf("%s %q", l.singular, name),
				ephemeral: l.key == "ephemeralContainers"})
		}
	}
	return out
}

// podRule adapts a check over one pod template into a ResourceRule check. A pod spec that is
// unknown as a whole is reported as unknown.
func podRule(name string, check func(f *finder, p pod)) func(Resource, Settings) []Finding {
	return podRuleWith(name, func(f *finder, p pod, _ Settings) { check(f, p) })
}

// podRuleWith is podRule for a check that reads the pack settings.
func podRuleWith(name string, check func(f *finder, p pod, s Settings)) func(Resource, Settings) []Finding {
	return func(r Resource, s Settings) []Finding {
		p, ok := podOf(r)
		if !ok {
			return nil
		}
		f := newFinder(name, r)
		if p.spec.unknown {
			f.unknown("", p.spec.path)
			return f.out
		}
		if p.spec.missing {
			return nil
		}
		check(f, p, s)
		return f.out
	}
}

// eachContainer runs check for every container of the pod, reporting unknown lists.
func eachContainer(f *finder, p pod, check func(c container)) {
	for _, c := range p.containers(func(field string) { f.unknown("", field) }) {
		if c.unknown {
			f.unknown(c.label, c.path)
			continue
		}
		check(c)
	}
}

// isWindows reports whether the pod declares spec.os.name: windows. Kubernetes forbids the
// Linux-only security fields (readOnlyRootFilesystem, runAsUser, runAsGroup, ...) on such pods.
func (p pod) isWindows() bool {
	s, _ := p.spec.at("os", "name").str()
	return s == "windows"
}

// hostUsersFalse reports whether the pod runs in a user namespace (hostUsers: false).
func (p pod) hostUsersFalse() bool {
	b, ok := p.spec.get("hostUsers").boolean()
	return ok && !b
}

// anySettings adapts a check that reads no settings.
func anySettings(check func(Resource) []Finding) func(Resource, Settings) []Finding {
	return func(r Resource, _ Settings) []Finding { return check(r) }
}

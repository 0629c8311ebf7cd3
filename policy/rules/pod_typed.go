package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// typedPod is a pod template decoded into the Kubernetes API types the upstream Pod Security
// checks read. A value that is unknown during preview is replaced by its most permissive
// setting (bestCase), so whatever the checks still reject is wrong whatever the value turns out
// to be; the unknown paths are kept so each rule can list the ones it reads.
type typedPod struct {
	meta     metav1.ObjectMeta
	spec     corev1.PodSpec
	unknowns []string // property paths of unknown values, e.g. spec.template.spec.containers[0].securityContext
	// decodeErr is set when the inputs do not fit the Kubernetes types (the API server would
	// reject them too); decodeField is the field the decoder names.
	decodeErr   error
	decodeField string
}

func decodePod(p pod) typedPod {
	var tp typedPod
	spec := plain(p.spec, "", &tp.unknowns)
	meta := plain(p.meta, "", &tp.unknowns)
	if err := decodeInto(spec, &tp.spec); err != nil {
		tp.decodeErr, tp.decodeField = err, p.spec.path
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			tp.decodeField = p.spec.path + "." + te.Field
		}
	}
	if m, ok := meta.(map[string]any); ok {
		// Only annotations matter to the checks; labels or names of any shape must not fail here.
		_ = decodeInto(map[string]any{"annotations": m["annotations"]}, &tp.meta)
	}
	return tp
}

func decodeInto(v any, out any) error {
	if v == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// plain turns a node into JSON-shaped Go values. parentKey is the map key the node sits under
// ("" for array elements and the root); unknown values are recorded and replaced by bestCase.
func plain(n node, parentKey string, unknowns *[]string) any {
	if n.missing {
		return nil
	}
	if n.unknown {
		*unknowns = append(*unknowns, n.path)
		return bestCase(n.path, parentKey)
	}
	v := n.v
	switch {
	case v.IsString():
		return v.AsString()
	case v.IsBool():
		return v.AsBool()
	case v.IsNumber():
		return v.AsNumber()
	case v.IsMap():
		out := map[string]any{}
		es, _ := n.entries()
		for _, e := range es {
			if x := plain(e.node, e.key, unknowns); x != nil {
				out[e.key] = x
			} else if e.unknown && isVolumeSource(e.path) {
				// The volume's type is known even if its settings are not.
				out[e.key] = map[string]any{}
			}
		}
		return out
	case v.IsArray():
		items, _ := n.items()
		out := make([]any, 0, len(items))
		for _, it := range items {
			if it.unknown {
				*unknowns = append(*unknowns, it.path)
				out = append(out, bestElement(it.path))
				continue
			}
			out = append(out, plain(it, "", unknowns))
		}
		return out
	}
	return nil // assets, archives, resource references: nothing the pod checks read
}

var volumeSourceRE = regexp.MustCompile(`(^|\.)volumes\[\d+\]\.[A-Za-z]+$`)

func isVolumeSource(path string) bool {
	return volumeSourceRE.MatchString(path) && !strings.HasSuffix(path, ".name")
}

// hardenedContainerSecurity is what an unknown container securityContext is assumed to be.
func hardenedContainerSecurity() map[string]any {
	return map[string]any{
		"runAsNonRoot": true, "allowPrivilegeEscalation": false, "privileged": false,
		"capabilities":   map[string]any{"drop": []any{"ALL"}},
		"seccompProfile": map[string]any{"type": "RuntimeDefault"}, "procMount": "Default",
	}
}

// bestCase is the most permissive value of an unknown field for Pod Security: with it every
// check the field feeds passes. nil removes the field (unset is allowed by every check that is
// not listed).
func bestCase(path, key string) any {
	podLevel := !strings.Contains(path, "ontainers[")
	switch key {
	case "securityContext":
		if podLevel {
			return map[string]any{"runAsNonRoot": true, "seccompProfile": map[string]any{"type": "RuntimeDefault"}}
		}
		return hardenedContainerSecurity()
	case "runAsNonRoot":
		return true
	case "allowPrivilegeEscalation", "privileged", "hostNetwork", "hostPID", "hostIPC":
		return false
	case "hostUsers":
		return false // a user namespace relaxes the run-as checks
	case "capabilities":
		return map[string]any{"drop": []any{"ALL"}}
	case "drop":
		return []any{"ALL"}
	case "seccompProfile":
		return map[string]any{"type": "RuntimeDefault"}
	case "type":
		if strings.HasSuffix(path, "seccompProfile.type") || strings.HasSuffix(path, "appArmorProfile.type") {
			return "RuntimeDefault"
		}
	case "procMount":
		return "Default"
	case "os":
		return map[string]any{"name": "windows"} // Windows pods skip the Linux-only checks
	case "name":
		if strings.HasSuffix(path, "os.name") {
			return "windows"
		}
	}
	return nil
}

// bestElement is bestCase for an unknown array element.
func bestElement(path string) any {
	list := path[:strings.LastIndex(path, "[")]
	switch {
	case strings.HasSuffix(list, "ontainers"):
		return map[string]any{"securityContext": hardenedContainerSecurity()}
	case strings.HasSuffix(list, "volumes"):
		return map[string]any{"emptyDir": map[string]any{}}
	case strings.HasSuffix(list, "capabilities.drop"):
		return "ALL"
	case strings.HasSuffix(list, "capabilities.add"):
		return "NET_BIND_SERVICE"
	case strings.HasSuffix(list, "sysctls"):
		return map[string]any{"name": "kernel.shm_rmid_forced", "value": "0"}
	}
	return map[string]any{}
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

// relevantUnknowns returns the unknown paths that could change what a check reading the given
// fields decides. reads are paths relative to the pod spec with [] for any index, e.g.
// "containers[].securityContext.privileged"; "@annotations" stands for the pod's annotations.
// An unknown path is relevant when it is one of them, inside one, or holds one.
func relevantUnknowns(p pod, unknowns []string, reads []string) []string {
	var out []string
	for _, u := range unknowns {
		rel, ok := strings.CutPrefix(u, p.spec.path+".")
		if u == p.spec.path {
			rel, ok = "", true
		}
		if !ok {
			if a, isMeta := strings.CutPrefix(u, p.meta.path+"."); isMeta {
				rel, ok = "@"+a, true
			} else if u == p.meta.path {
				rel, ok = "@", true
			}
		}
		if !ok {
			continue
		}
		norm := indexRE.ReplaceAllString(rel, "[]")
		for _, r := range reads {
			if norm == "" || norm == "@" && strings.HasPrefix(r, "@") || pathWithin(norm, r) || pathWithin(r, norm) {
				out = append(out, u)
				break
			}
		}
	}
	return out
}

// pathWithin reports whether path a is b or below it.
func pathWithin(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(a, b+"[")
}

// containerRefs lists the pod's containers in the order of containerLists, with their labels
// and property paths.
func (p pod) containerRefs(tp typedPod) []typedContainer {
	var out []typedContainer
	for _, l := range containerLists {
		list := p.spec.get(l.key)
		items, _ := list.items()
		for i, it := range items {
			ref := containerRef{list: l.key, index: i}
			c := ref.container(&tp.spec)
			if c == nil {
				continue
			}
			name, ok := it.get("name").str()
			if !ok {
				name = fmt.Sprintf("#%d", i)
			}
			out = append(out, typedContainer{ref: ref, c: c, label: fmt.Sprintf("%s %q", l.singular, name), path: it.path})
		}
	}
	return out
}

type typedContainer struct {
	ref   containerRef
	c     *corev1.Container
	label string
	path  string // property path of the container, e.g. spec.containers[0]
}

package rules

import (
	"fmt"
	"strings"
)

// APIAccessAnnotation opts a workload in to a mounted ServiceAccount token. Its value is the
// reason the workload talks to the Kubernetes API, e.g. "reads Endpoints for discovery".
const APIAccessAnnotation = "infralab.dev/needs-api-access"

func checkResources(f *finder, p pod, cpuLimitOnly bool) {
	eachContainer(f, p, func(c container) {
		if c.ephemeral {
			return // Kubernetes forbids resources on ephemeral containers.
		}
		for _, want := range [][2]string{{"requests", "cpu"}, {"requests", "memory"}, {"limits", "memory"}, {"limits", "cpu"}} {
			isCPULimit := want == [2]string{"limits", "cpu"}
			if isCPULimit != cpuLimitOnly {
				continue
			}
			n := c.at("resources", want[0], want[1])
			switch {
			case n.unknown:
				f.unknown(c.label, n.path)
			case n.missing:
				f.bad(c.label, n.path, fmt.Sprintf("resources.%s.%s is not set", want[0], want[1]),
					fmt.Sprintf("set resources.%s.%s on this container (e.g. %s)", want[0], want[1], example(want[1])))
			}
		}
	})
}

func example(res string) string {
	if res == "cpu" {
		return `"100m"`
	}
	return `"128Mi"`
}

// imageTag returns the tag of an image reference, whether it has a digest, and ok=false when
// it names neither.
func imageTag(image string) (tag string, digest bool) {
	if i := strings.Index(image, "@"); i >= 0 {
		return "", true
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:], false
	}
	return "", false
}

func checkImage(f *finder, p pod) {
	eachContainer(f, p, func(c container) {
		n := c.get("image")
		img, set, known := readString(f, c.label, n)
		if !known {
			return
		}
		if !set || img == "" {
			f.bad(c.label, n.path, "image is not set", "set image to a reference with a version tag or digest")
			return
		}
		tag, digest := imageTag(img)
		switch {
		case digest:
		case tag == "":
			f.bad(c.label, n.path, fmt.Sprintf("image %q has no tag or digest, so it means :latest", img),
				"pin a version tag (e.g. "+img+":1.2.3) or a digest (@sha256:...)")
		case tag == "latest":
			f.bad(c.label, n.path, fmt.Sprintf("image %q uses the tag latest", img),
				"pin a version tag or a digest (@sha256:...)")
		}
	})
}

// apiAccessReason finds the opt-in annotation on the pod template or the workload object.
// found=false when absent; unknown=true when the annotations cannot be read during preview.
func apiAccessReason(p pod) (reason string, found, unknown bool) {
	for _, meta := range []node{p.meta, p.objMeta} {
		n := meta.at("annotations", APIAccessAnnotation)
		if n.unknown {
			return "", false, true
		}
		if s, ok := n.str(); ok {
			return s, true, false
		}
	}
	return "", false, false
}

func checkServiceAccountToken(f *finder, p pod) {
	reason, found, unknown := apiAccessReason(p)
	if unknown {
		f.unknown("", p.meta.get("annotations").path)
		return
	}
	if found {
		if strings.TrimSpace(reason) == "" {
			f.bad("", "metadata.annotations."+APIAccessAnnotation, "the API access opt-in has no reason",
				fmt.Sprintf("set the annotation %s to why the workload needs the Kubernetes API", APIAccessAnnotation))
		}
		return
	}
	n := p.spec.get("automountServiceAccountToken")
	v, set, known := readBool(f, "", n)
	if known && (!set || v) {
		what := "automountServiceAccountToken is not set, so a ServiceAccount token is mounted by default"
		if set {
			what = "automountServiceAccountToken is true"
		}
		f.bad("", n.path, what, fmt.Sprintf(
			"set automountServiceAccountToken: false in the pod spec, or opt in with the annotation %s: \"<reason>\"",
			APIAccessAnnotation))
	}
}

func checkServiceAccountName(f *finder, p pod) {
	n := p.spec.get("serviceAccountName")
	if n.missing {
		n = p.spec.get("serviceAccount") // deprecated alias
		if n.missing {
			n = p.spec.get("serviceAccountName")
		}
	}
	v, set, known := readString(f, "", n)
	if known && (!set || v == "" || v == "default") {
		f.bad("", n.path, "the pod runs as the namespace's default ServiceAccount",
			"create a ServiceAccount for this workload and set serviceAccountName to it")
	}
}

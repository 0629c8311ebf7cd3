package cluster

import (
	"net/url"
	"strings"
)

// Calico is installed from the pinned release manifests by a remote command on the control
// plane, not through the Helm chart:
//   - nodes become Ready only once a CNI runs, and the component's Kubeconfig output waits for
//     wait-nodes-ready, so the CNI must be installed inside this component before that output
//     exists (a chart would need a second Kubernetes provider of its own here);
//   - applied from the control plane, which already holds the admin kubeconfig, it needs no chart
//     repository access from the machine running `pulumi up`;
//   - operator-crds.yaml and tigera-operator.yaml are two pinned files, each checked against its
//     sha256 and applied server-side, so a re-run converges.
//
// The Installation below is ours and generated here.

// DefaultCalicoVersion is the Calico release the lab stack pins (stacks/Pulumi.lab.yaml,
// hack/versions.env): v3.31 is the line Calico tests with Kubernetes 1.35 (its requirements list
// 1.35, projectcalico discussion 11717), and v3.31.0 is the one
// whose operator (tigera/operator v1.40.0, the image tigera-operator.yaml of v3.31.0 runs) the Go
// module proxy serves, so a Calico built from source here and the one the lab downloads agree.
const DefaultCalicoVersion = "v3.31.0"

// calicoManifestPin is the sha256 of a release's two manifests.
type calicoManifestPin struct {
	Operator string // manifests/tigera-operator.yaml
	CRDs     string // manifests/operator-crds.yaml
}

// DefaultCalicoManifestBaseURL is where calico.sh downloads a release's manifests by default:
// <base>/<version>/manifests/<file>, the URLs Calico's install docs use. A mirror
// (KubeadmArgs.CalicoManifestBaseURL, e.g. the box's http://10.77.0.1:8080/calico) serves the
// same layout; what it serves is checked against the same sha256 pins, so it cannot change them.
const DefaultCalicoManifestBaseURL = "https://raw.githubusercontent.com/projectcalico/calico"

// calicoPins are the manifests calico.sh downloads
// (DefaultCalicoManifestBaseURL/<version>/manifests/<file>). Each sha256 is of the file in the git tree of that tag (`git show
// v3.31.0:manifests/tigera-operator.yaml | sha256sum` in a clone of projectcalico/calico), which is
// what raw.githubusercontent.com serves for the tag: it returns the blob's bytes unchanged (the
// repo's manifests/.gitattributes only marks them linguist-generated, no filter or eol rule).
// The Go module proxy does not serve the calico module (403 for v3.31.0, checked 2026-12), so no
// module zip was compared. A version listed here needs no sha256 in the stack config.
var calicoPins = map[string]calicoManifestPin{
	"v3.31.0": {
		Operator: "8ded4500cfe6380832e140d7a36d46aafa6b7c6851466fb98c61c7ac1bf95792",
		CRDs:     "2b2342a6d49e1ec7c43aaa2849e02254a208bdb2dafb4f117b1c6f833dae2234",
	},
}

// calicoSHA256s are the sha256 calico.sh checks: the configured ones, else the pinned ones of
// the version; empty when neither exists (the manifest is then pinned by version only).
func calicoSHA256s(version, operator, crds string) (string, string) {
	pin := calicoPins[version]
	if operator == "" {
		operator = pin.Operator
	}
	if crds == "" {
		crds = pin.CRDs
	}
	return operator, crds
}

// CalicoPinnedSHA256s are the sha256 of tigera-operator.yaml and operator-crds.yaml that the
// calico phase checks for version without a stack override (ok false: none pinned), so a mirror
// (the box's) can refuse to serve other bytes before a node does.
func CalicoPinnedSHA256s(version string) (operator, crds string, ok bool) {
	pin, ok := calicoPins[version]
	return pin.Operator, pin.CRDs, ok
}

// CalicoManifestsPinned reports whether both manifests of version are checked against a sha256,
// from the stack config (operatorSHA256, crdsSHA256) or from the pins above.
func CalicoManifestsPinned(version, operatorSHA256, crdsSHA256 string) bool {
	o, c := calicoSHA256s(version, operatorSHA256, crdsSHA256)
	return o != "" && c != ""
}

// calicoManifestBaseURL is the base calico.sh downloads from.
func (a *KubeadmArgs) calicoManifestBaseURL() string {
	if a.CalicoManifestBaseURL == "" {
		return DefaultCalicoManifestBaseURL
	}
	return a.CalicoManifestBaseURL
}

// checkCalicoManifestBaseURL says what is wrong with a configured base URL, or "". The URL is
// never echoed: it could carry credentials.
func checkCalicoManifestBaseURL(raw string, pinned bool) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http"):
		return "must be an http:// or https:// URL, e.g. " + DefaultCalicoManifestBaseURL + " (the default)"
	case u.User != nil:
		return "must be a URL without user information (the nodes fetch it anonymously)"
	case u.Host == "":
		return "has no host, e.g. http://10.77.0.1:8080/calico"
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#"):
		return "must be a URL without a query or fragment: calico.sh appends /<version>/manifests/<file>"
	case strings.HasSuffix(raw, "/"):
		return "must be given without a trailing slash: calico.sh appends /<version>/manifests/<file>"
	case u.Scheme == "http" && !pinned:
		return "plain http:// needs both manifests pinned by sha256 (a known calicoVersion, or calicoManifestSha256 and calicoCrdsSha256): nothing else would notice a changed download, and the manifests run as cluster-admin"
	}
	return ""
}

// CalicoInstallation is the Installation the calico phase applies for podCIDR with images from
// imageRepository ("" for upstream), exported so the proofs (the operator run against the
// embedded control plane, the box) apply the same bytes.
func CalicoInstallation(podCIDR, imageRepository string) ([]byte, error) {
	return renderCalicoInstallation(podCIDR, imageRepository)
}

// renderCalicoInstallation renders the operator's Installation with our pod CIDR. VXLAN on every
// packet with BGP off is the one Calico network of the lab: it needs no BGP peering and no routes
// learnt from one (VXLANCrossSubnet routes same-subnet traffic natively, which relies on BGP; IPIP
// and unencapsulated pools the operator refuses without BGP, tigera/operator v1.40.0
// pkg/controller/installation/validation.go), and it needs no BIRD, Calico's one C component,
// which cannot be built from the Go proxy (docs/box.md, "Calico"). Both values are in the
// Installation CRD's enums of v3.31.0 (operator-crds.yaml: calicoNetwork.bgp Enabled|Disabled,
// ipPools[].encapsulation ... VXLAN ...).
//
// Only what the lab uses is deployed (tigera/operator v1.40.0 pkg/render/node.go, csi.go):
//   - no APIServer resource, so no calico-apiserver: it serves Calico's own projectcalico.org/v3
//     API (calicoctl-style policy through kubectl); the lab writes Kubernetes NetworkPolicies only,
//     and an unavailable aggregated API would break discovery for every kubectl and for Pulumi;
//   - flexVolumePath None: no flexvol-driver init container (pod2daemon-flexvol), which only
//     serves Calico's application-layer policy (Dikastes), not used here;
//   - kubeletVolumePluginPath None: no csi-node-driver DaemonSet (calico/csi and
//     node-driver-registrar), the same application-layer feature's newer mount path;
//   - Goldmane and Whisker (flow logs UI) are deployed only for their own Goldmane/Whisker
//     resources, which the lab never creates.
//
// Every container the operator renders gets requests and memory/ephemeral-storage limits (the
// policy pack's pod-resources and pod-ephemeral-storage), through the Installation's override
// fields, the only part of those pods the operator lets us set (calicoNodeDaemonSet,
// typhaDeployment, calicoKubeControllersDeployment in operator-crds.yaml). No CPU limit: a
// throttled calico-node programs the dataplane late; stacks/policy.lab.json excepts it.
//
// With an image repository (KubeadmArgs.ImageRepository: the box, a restricted network), every
// image comes from it at upstream's paths below it: spec.registry "<repository>/", no imagePath
// or imagePrefix. tigera/operator v1.40.0 pkg/components/references.go GetReference names an
// image <registry><image>:<version> (a registry without the trailing slash the CRD asks for
// gets one), image being the component's "calico/node", "calico/cni", "calico/typha",
// "calico/kube-controllers" (pkg/components/calico.go); imagePath would replace the "calico"
// part and imagePrefix prepend to the last one, neither of which a mirror at upstream's paths
// needs. Without one, no registry: the operator's defaults (quay.io/ for the calico/ images).
func renderCalicoInstallation(podCIDR, imageRepository string) ([]byte, error) {
	installation := map[string]any{
		"apiVersion": "operator.tigera.io/v1",
		"kind":       "Installation",
		"metadata":   map[string]any{"name": "default"},
		"spec": map[string]any{
			"calicoNetwork": map[string]any{
				"bgp": "Disabled",
				"ipPools": []any{map[string]any{
					"name":          "default-ipv4-ippool",
					"blockSize":     26,
					"cidr":          podCIDR,
					"encapsulation": "VXLAN",
					"natOutgoing":   "Enabled",
					"nodeSelector":  "all()",
				}},
			},
			"flexVolumePath":          "None",
			"kubeletVolumePluginPath": "None",
			"calicoNodeDaemonSet": podOverride(
				[]any{calicoContainer("calico-node", "250m", "256Mi", "1Gi")},
				[]any{calicoContainer("install-cni", "10m", "64Mi", "256Mi"), calicoContainer("ebpf-bootstrap", "10m", "64Mi", "256Mi")}),
			"typhaDeployment":                 podOverride([]any{calicoContainer("calico-typha", "100m", "128Mi", "512Mi")}, nil),
			"calicoKubeControllersDeployment": podOverride([]any{calicoContainer("calico-kube-controllers", "50m", "128Mi", "512Mi")}, nil),
		},
	}
	if imageRepository != "" {
		installation["spec"].(map[string]any)["registry"] = imageRepository + "/"
	}
	return joinYAML(installation)
}

// calicoContainer is an override of one operator-rendered container's resources: the requests,
// and a memory limit of memLimit (the same for ephemeral storage: logs go to host paths).
func calicoContainer(name, cpu, mem, memLimit string) map[string]any {
	return map[string]any{"name": name, "resources": map[string]any{
		"requests": map[string]any{"cpu": cpu, "memory": mem, "ephemeral-storage": "64Mi"},
		"limits":   map[string]any{"memory": memLimit, "ephemeral-storage": "256Mi"},
	}}
}

func podOverride(containers, initContainers []any) map[string]any {
	spec := map[string]any{"containers": containers}
	if initContainers != nil {
		spec["initContainers"] = initContainers
	}
	return map[string]any{"spec": map[string]any{"template": map[string]any{"spec": spec}}}
}

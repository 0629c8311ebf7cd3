package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/infralab/infralab/cluster"
	"github.com/infralab/infralab/proof/images"
)

// What the box serves for the cluster layer's calico phase, so it runs unmodified on machines
// that reach nothing but the box:
//   - the images: with kubernetes.imageRepository = ImageRepository(prefix), the Installation's
//     spec.registry is "<that>/" and the operator's Deployment image <that>/tigera/operator:<tag>
//     (cluster/calico.go); tigera/operator v1.40.0 names each Calico image
//     <registry><image>:<version> (pkg/components/references.go GetReference, images
//     "calico/node" etc. at v3.31.0 in pkg/components/calico.go). proof/images builds them under
//     exactly those paths and tags, so Push's <Addr>/<prefix>/<name>:<tag> is what is asked for;
//   - the two pinned manifests, as files under an HTTP root at the layout calico.sh fetches
//     (<base>/<version>/manifests/<file>), with kubernetes.calicoManifestBaseUrl = <root URL>/calico.

// CalicoManifestsPath is the folder under an HTTP root that holds the manifests.
const CalicoManifestsPath = "calico"

// PushCalico builds (or takes from b's cache) Calico's images for the lab's Installation and the
// tigera operator's, and pushes them under prefix, the same prefix as the control-plane images:
// the calico phase takes its images from kubernetes.imageRepository, like kubeadm. A second
// push sends nothing.
func (r *Registry) PushCalico(ctx context.Context, b *images.Builder, prefix string) ([]Pushed, error) {
	built, err := b.BuildCalico(ctx)
	if err != nil {
		return nil, err
	}
	return r.Push(ctx, prefix, built)
}

// CalicoManifestBaseURL is kubernetes.calicoManifestBaseUrl for manifests written by
// WriteCalicoManifests under the root served at rootURL (e.g. http://10.77.0.1:8080).
func CalicoManifestBaseURL(rootURL string) string {
	return strings.TrimSuffix(rootURL, "/") + "/" + CalicoManifestsPath
}

// WriteCalicoManifests copies tigera-operator.yaml and operator-crds.yaml of
// cluster.DefaultCalicoVersion from b's Calico build to
// <root>/calico/<version>/manifests/, each checked against the sha256 the calico phase pins, so
// the box serves only the bytes a node would accept. It returns the folder written. Plain HTTP is
// enough for that reason (the phase checks the sha256 on the node, cluster/calico.go), as for
// the box's apt repository, whose signatures apt checks.
func WriteCalicoManifests(b *images.Builder, root string) (string, error) {
	version := cluster.DefaultCalicoVersion
	operator, crds, ok := cluster.CalicoPinnedSHA256s(version)
	if !ok {
		return "", fmt.Errorf("calico %s has no pinned manifests in the cluster layer", version)
	}
	dir := filepath.Join(root, CalicoManifestsPath, version, "manifests")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for name, want := range map[string]string{"tigera-operator.yaml": operator, "operator-crds.yaml": crds} {
		src, err := b.CalicoManifest(name)
		if err != nil {
			return "", err
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != want {
			return "", fmt.Errorf("%s has sha256 %s, the calico phase pins %s for Calico %s; rebuild it with hack/tools.sh calico", src, got, want, version)
		}
		if err := writeFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

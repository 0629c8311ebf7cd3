package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/infralab/infralab/cluster"
	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/box/aptrepo"
	"github.com/infralab/infralab/proof/images"
)

// calicoBuilder builds into the cache folder the box uses for Calico's images.
func calicoBuilder(t *testing.T) *images.Builder {
	t.Helper()
	b := &images.Builder{OutDir: filepath.Join(testenv.CacheDir(), "images", "calico"), RepoDir: testenv.RepoRoot(), Log: testWriter{t}}
	if _, err := b.CalicoManifest("operator-crds.yaml"); err != nil {
		if testenv.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return b
}

// The manifests the box serves are the pinned ones, at the URLs calico.sh builds from
// kubernetes.calicoManifestBaseUrl (<base>/<version>/manifests/<file>), through the box's own
// HTTP server (aptrepo.Serve, the one serving 10.77.0.1:8080); a build whose manifest differs
// from the pin is refused before anything is written.
func TestCalicoManifestsServedWhereTheCalicoPhaseFetchesThem(t *testing.T) {
	b := calicoBuilder(t)
	root := t.TempDir()
	if _, err := WriteCalicoManifests(b, root); err != nil {
		t.Fatal(err)
	}
	srv, err := aptrepo.Serve("127.0.0.1:0", root)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	operator, crds, _ := cluster.CalicoPinnedSHA256s(cluster.DefaultCalicoVersion)
	base := CalicoManifestBaseURL("http://" + srv.Addr + "/")
	if base != "http://"+srv.Addr+"/calico" {
		t.Fatalf("base URL %s", base)
	}
	for file, want := range map[string]string{"tigera-operator.yaml": operator, "operator-crds.yaml": crds} {
		resp, err := http.Get(base + "/" + cluster.DefaultCalicoVersion + "/manifests/" + file)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", file, resp.StatusCode, err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s served with sha256 %s, the calico phase pins %s", file, got, want)
		}
	}

	// A Calico build whose operator manifest was changed.
	share := filepath.Join(t.TempDir(), "calico")
	for _, f := range []string{"tigera-operator.yaml", "operator-crds.yaml"} {
		src, _ := b.CalicoManifest(f)
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if f == "tigera-operator.yaml" {
			data = append(data, "# changed\n"...)
		}
		if err := os.MkdirAll(filepath.Join(share, "share", "manifests"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(share, "share", "manifests", f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := t.TempDir()
	_, err = WriteCalicoManifests(&images.Builder{RepoDir: testenv.RepoRoot(), CalicoDir: share}, other)
	if err == nil || !strings.Contains(err.Error(), "the calico phase pins") {
		t.Fatalf("a changed manifest: err %v, want a sha256 mismatch", err)
	}
	if _, err := os.Stat(filepath.Join(other, CalicoManifestsPath, cluster.DefaultCalicoVersion, "manifests", "tigera-operator.yaml")); err == nil {
		t.Error("the changed manifest was written")
	}
}

// Every image the lab's Installation and the operator Deployment name, with the box's
// imageRepository, is in the registry at that reference and pulls over the box CA's TLS: the
// four Calico images at <repository>/calico/<name>:v3.31.0 (spec.registry "<repository>/",
// tigera/operator v1.40.0 pkg/components/references.go) and <repository>/tigera/operator:v1.40.0
// (calico.sh's rewrite of the Deployment). A second push sends nothing.
func TestCalicoImagesInTheBoxRegistryWhereTheInstallationNamesThem(t *testing.T) {
	b := calicoBuilder(t)
	r, _ := startRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	pushed, err := r.PushCalico(ctx, b, DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built and pushed %d images in %s", len(pushed), time.Since(start).Round(time.Millisecond))
	again, err := r.PushCalico(ctx, b, DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range again {
		if !p.Skipped || p.Digest != pushed[i].Digest {
			t.Errorf("second push of %s sent it again (skipped=%v)", p.Ref, p.Skipped)
		}
	}

	repo := r.ImageRepository(DefaultPrefix)
	var want []string
	for _, img := range []string{"calico/node", "calico/cni", "calico/kube-controllers", "calico/typha"} {
		want = append(want, repo+"/"+img+":"+cluster.DefaultCalicoVersion)
	}
	want = append(want, repo+"/tigera/operator:v1.40.0")
	have, err := r.Tags(ctx, DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	sort.Strings(have)
	if strings.Join(want, "\n") != strings.Join(have, "\n") {
		t.Fatalf("the Installation names\n  %s\nthe registry holds\n  %s", strings.Join(want, "\n  "), strings.Join(have, "\n  "))
	}
	for _, ref := range want {
		tag, err := name.NewTag(ref, name.StrictValidation)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(tag, remote.WithContext(ctx), remote.WithTransport(r.Transport()))
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) == 0 {
			t.Fatalf("%s: layers %d %v", ref, len(layers), err)
		}
	}
}

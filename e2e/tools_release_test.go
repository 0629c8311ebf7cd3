package e2e

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The release path of hack/tools.sh (fetch_release, build_pulumi, build_kube) against a loopback
// HTTP server that serves release-shaped tarballs: the official layouts of
// pulumi-v<v>-linux-x64.tar.gz (pulumi/pulumi) and v<v>/kubernetes-server-linux-amd64.tar.gz
// (kubernetes/server/bin/*), with fake binaries that print the version. Each case runs the real
// script, sourced from a copy of hack/ in a temp "repo" so nothing is linked into this clone.

const (
	fakePulumiVersion = "3.274.1"
	fakeKubeVersion   = "1.35.4"
)

var kubeBinaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "kubeadm", "kubectl"}

// tarGz writes a .tar.gz holding executable shell scripts (name -> body).
func tarGz(t *testing.T, path string, files map[string]string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []interface{ Close() error }{tw, gz, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type releaseServer struct {
	url                   string
	pulumiSum, kubeSum    string
	tampered, unreachable string
}

// serveReleases serves good releases under /good and the same paths with one byte changed
// under /tampered; /down is a server that was closed (a machine without internet).
func serveReleases(t *testing.T) releaseServer {
	t.Helper()
	root := t.TempDir()
	pulumi := map[string]string{"pulumi/pulumi": "#!/bin/sh\necho v" + fakePulumiVersion + "\n", "pulumi/pulumi-language-go": "#!/bin/sh\n"}
	kube := map[string]string{"kubernetes/server/bin/kube-aggregator": "#!/bin/sh\n"}
	for _, b := range kubeBinaries {
		kube["kubernetes/server/bin/"+b] = "#!/bin/sh\necho Kubernetes v" + fakeKubeVersion + "\n"
	}
	var s releaseServer
	s.pulumiSum = tarGz(t, filepath.Join(root, "good", "pulumi-v"+fakePulumiVersion+"-linux-x64.tar.gz"), pulumi)
	s.kubeSum = tarGz(t, filepath.Join(root, "good", "v"+fakeKubeVersion, "kubernetes-server-linux-amd64.tar.gz"), kube)
	for _, rel := range []string{"pulumi-v" + fakePulumiVersion + "-linux-x64.tar.gz", "v" + fakeKubeVersion + "/kubernetes-server-linux-amd64.tar.gz"} {
		b, err := os.ReadFile(filepath.Join(root, "good", rel))
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		dst := filepath.Join(root, "tampered", rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(root))) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	s.url, s.tampered, s.unreachable = srv.URL+"/good", srv.URL+"/tampered", down.URL
	return s
}

// runTools sources a copy of hack/tools.sh in a temp repo and runs script (after the sourcing,
// so it can set versions.env's values) with env. It returns the combined output, the exit error
// and the temp cache folder.
func runTools(t *testing.T, script string, env ...string) (string, error, string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	repo := t.TempDir()
	for _, f := range []string{"tools.sh", "versions.env"} {
		b, err := os.ReadFile(filepath.Join("..", "hack", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(repo, "hack"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, "hack", f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cache := filepath.Join(repo, "cache")
	c := exec.Command("bash", "-c", `set -euo pipefail; . "$1/hack/tools.sh"; `+script, "bash", repo)
	c.Env = append(os.Environ(), append([]string{"INFRALAB_CACHE=" + cache, "PULUMI_HOME=" + filepath.Join(cache, "pulumi-home"),
		"INFRALAB_TOOLS_FROM=", "INFRALAB_RELEASE_BASE_URL="}, env...)...)
	out, err := c.CombinedOutput()
	return string(out), err, cache
}

func wantOutput(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestToolsReleaseKubernetesVerified(t *testing.T) {
	s := serveReleases(t)
	out, err, cache := runTools(t, `KUBERNETES_SERVER_SHA256_LINUX_AMD64=`+s.kubeSum+`; build_kube`, "INFRALAB_RELEASE_BASE_URL="+s.url)
	if err != nil {
		t.Fatalf("build_kube from a good release: %v\n%s", err, out)
	}
	wantOutput(t, out, "using the official release "+s.url+"/v"+fakeKubeVersion+"/kubernetes-server-linux-amd64.tar.gz (sha256 verified)", "kubernetes Kubernetes v"+fakeKubeVersion)
	dir := filepath.Join(cache, "tools", "kubernetes-v"+fakeKubeVersion)
	for _, b := range append(kubeBinaries, ".done") {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Errorf("%s not installed from the release: %v", b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "kube-aggregator")); err == nil {
		t.Error("kube-aggregator was extracted too; only the pinned binaries should be")
	}
	if strings.Contains(out, "from source") {
		t.Errorf("built from source although the release matched:\n%s", out)
	}
}

func TestToolsReleaseTamperedIsRefused(t *testing.T) {
	s := serveReleases(t)
	// auto: a mismatch is an error, not a quiet fallback to a source build.
	out, err, cache := runTools(t, `KUBERNETES_SERVER_SHA256_LINUX_AMD64=`+s.kubeSum+`; build_kube`, "INFRALAB_RELEASE_BASE_URL="+s.tampered)
	if err == nil {
		t.Fatalf("build_kube accepted a tampered release:\n%s", out)
	}
	wantOutput(t, out, "refusing "+s.tampered+"/v"+fakeKubeVersion+"/kubernetes-server-linux-amd64.tar.gz: its sha256 is", "hack/versions.env pins "+s.kubeSum)
	dir := filepath.Join(cache, "tools", "kubernetes-v"+fakeKubeVersion)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("a refused download left files in %s: %v", dir, entries)
	}
	if strings.Contains(out, "building Kubernetes") {
		t.Errorf("fell back to a source build after a checksum mismatch:\n%s", out)
	}
}

func TestToolsReleaseDecision(t *testing.T) {
	s := serveReleases(t)
	pulumiURL := func(base string) string { return base + "/pulumi-v" + fakePulumiVersion + "-linux-x64.tar.gz" }
	cases := []struct {
		name, script string
		env          []string
		ok           bool
		wants        []string
	}{
		{"unpinned: source, says why", `fetch_release pulumi ` + pulumiURL(s.url) + ` "" "$INFRALAB_CACHE/x" || echo "rc=$?"`, nil, true,
			[]string{"pulumi: building from source: no sha256 pinned for " + pulumiURL(s.url) + " in hack/versions.env", "rc=1"}},
		{"unpinned with INFRALAB_TOOLS_FROM=release: error", `fetch_release pulumi ` + pulumiURL(s.url) + ` "" "$INFRALAB_CACHE/x"`,
			[]string{"INFRALAB_TOOLS_FROM=release"}, false, []string{"INFRALAB_TOOLS_FROM=release, but no sha256 pinned"}},
		{"unreachable: source, says why", `fetch_release pulumi ` + pulumiURL(s.unreachable) + ` ` + s.pulumiSum + ` "$INFRALAB_CACHE/x" || echo "rc=$?"`, nil, true,
			[]string{"pulumi: building from source: cannot download " + pulumiURL(s.unreachable), "rc=1"}},
		{"INFRALAB_TOOLS_FROM=source: never downloads", `fetch_release pulumi ` + pulumiURL(s.url) + ` ` + s.pulumiSum + ` "$INFRALAB_CACHE/x" || echo "rc=$?"; [ ! -e "$INFRALAB_CACHE/x" ]`,
			[]string{"INFRALAB_TOOLS_FROM=source"}, true, []string{"building from source (INFRALAB_TOOLS_FROM=source)", "rc=1"}},
		{"malformed pin: error", `fetch_release pulumi ` + pulumiURL(s.url) + ` ABC "$INFRALAB_CACHE/x"`, nil, false,
			[]string{"is not 64 lowercase hex digits"}},
		{"pulumi release, verified", `PULUMI_RELEASE_SHA256_LINUX_AMD64=` + s.pulumiSum + `; build_pulumi; [ -x "$INFRALAB_CACHE/tools/pulumi-v` + fakePulumiVersion + `/pulumi" ]`,
			[]string{"INFRALAB_RELEASE_BASE_URL=" + s.url}, true, []string{"pulumi: using the official release " + pulumiURL(s.url) + " (sha256 verified)", "pulumi v" + fakePulumiVersion}},
		{"pulumi tampered: refused", `PULUMI_RELEASE_SHA256_LINUX_AMD64=` + s.pulumiSum + `; build_pulumi`,
			[]string{"INFRALAB_RELEASE_BASE_URL=" + s.tampered}, false, []string{"pulumi: refusing " + pulumiURL(s.tampered)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err, _ := runTools(t, c.script, c.env...)
			if (err == nil) != c.ok {
				t.Fatalf("ok = %v (%v), want %v:\n%s", err == nil, err, c.ok, out)
			}
			wantOutput(t, out, c.wants...)
		})
	}
}

// A pulumi on PATH at the pinned version is used (copied, so our language host can sit next to
// it) without any download; one at another version is not.
func TestToolsPulumiOnPath(t *testing.T) {
	for _, v := range []string{fakePulumiVersion, "3.1.0"} {
		pathDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(pathDir, "pulumi"), []byte("#!/bin/sh\necho v"+v+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		// The release is "unreachable", so only the PATH copy can succeed without a build;
		// INFRALAB_TOOLS_FROM=release turns the would-be source build into an error.
		out, err, cache := runTools(t, `PULUMI_RELEASE_SHA256_LINUX_AMD64=`+strings.Repeat("0", 64)+`; build_pulumi`,
			"PATH="+pathDir+":"+os.Getenv("PATH"), "INFRALAB_RELEASE_BASE_URL=http://127.0.0.1:9", "INFRALAB_TOOLS_FROM=release")
		copied := filepath.Join(cache, "tools", "pulumi-v"+fakePulumiVersion, "pulumi")
		if v == fakePulumiVersion {
			if err != nil {
				t.Fatalf("pulumi v%s on PATH not used: %v\n%s", v, err, out)
			}
			wantOutput(t, out, "pulumi: using "+filepath.Join(pathDir, "pulumi")+" from PATH")
			if st, err := os.Lstat(copied); err != nil || st.Mode()&os.ModeSymlink != 0 {
				t.Errorf("%s should be a copy of the PATH binary: %v", copied, err)
			}
		} else {
			if err == nil || strings.Contains(out, "from PATH") {
				t.Errorf("pulumi v%s on PATH was used for pinned v%s:\n%s", v, fakePulumiVersion, out)
			}
		}
	}
}

package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry is the name prefix of every local image; nothing is ever pushed or pulled there.
const Registry = "infralab.local"

// builderVersion goes into every cache key: bump it when the layer format or layout changes.
const builderVersion = "1"

// Builder makes images into OutDir, which is also the cache.
type Builder struct {
	OutDir  string
	RepoDir string    // repository root: sources of cmd/pause and healthcare-api
	Log     io.Writer // progress; nil for none
	Go      string    // go binary for cmd/pause; "go" when empty
	// ToolsDir holds binaries `make tools` built (coredns); default RepoDir/.tools/bin.
	ToolsDir string
	// ToolsCache is hack/tools.sh's cache of builds it does not link (etcd and CoreDNS at
	// kubeadm's versions); default ~/.cache/infralab/tools.
	ToolsCache string
	// CalicoDir is the Calico build `hack/tools.sh calico` links; default RepoDir/.tools/calico.
	CalicoDir string
}

func (b *Builder) toolsDir() string {
	if b.ToolsDir != "" {
		return b.ToolsDir
	}
	return filepath.Join(b.RepoDir, ".tools", "bin")
}

// Result is one built (or cached) image.
type Result struct {
	Name     string            `json:"name"`
	Ref      string            `json:"ref"`
	Path     string            `json:"path"`
	Key      string            `json:"key"`
	ImageID  string            `json:"imageID"`
	Size     int64             `json:"size"`
	Files    int               `json:"files"`
	Cached   bool              `json:"cached"`
	Packages map[string]string `json:"packages"`
}

// plan is an image whose files are collected but not yet written.
type plan struct {
	spec     spec
	files    *fileSet
	packages map[string]string
	key      string
	tag      name.Tag
	path     string
}

func (b *Builder) goBin() string {
	if b.Go != "" {
		return b.Go
	}
	return "go"
}

func (b *Builder) logf(format string, args ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, format+"\n", args...)
	}
}

func selectSpecs(names []string) ([]spec, error) {
	if len(names) == 0 {
		return specs(), nil
	}
	byName := map[string]spec{}
	for _, s := range namedSpecs() {
		byName[s.name] = s
	}
	var out []spec
	var unknown []string
	for _, n := range names {
		s, ok := byName[n]
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		out = append(out, s)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown image(s) %s; known: %s", strings.Join(unknown, ", "), strings.Join(append(append(Names(), CNPGNames()...), CalicoNames()...), ", "))
	}
	return out, nil
}

// Plan collects each image's files and computes its cache key and reference, writing nothing.
func (b *Builder) Plan(ctx context.Context, names []string) ([]*plan, error) {
	ss, err := selectSpecs(names)
	if err != nil {
		return nil, err
	}
	major := debianMajor()
	var plans []*plan
	for _, s := range ss {
		p, err := b.plan(ctx, s, major)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.name, err)
		}
		plans = append(plans, p)
	}
	return plans, nil
}

func (b *Builder) plan(ctx context.Context, s spec, major string) (*plan, error) {
	f := newFileSet()
	pkgs, err := s.collect(ctx, b, f)
	if err != nil {
		return nil, err
	}
	if err := f.addLibraries(ctx); err != nil {
		return nil, err
	}
	versions := map[string]string{}
	for _, pkg := range pkgs {
		v, err := dpkgVersion(ctx, pkg)
		if err != nil {
			return nil, err
		}
		versions[pkg] = v
	}
	cfg, err := json.Marshal(s.config)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "builder %s\nimage %s\nuser %s\nconfig %s\n", builderVersion, s.name, s.user.user(), cfg)
	for _, pkg := range sortedKeys(versions) {
		fmt.Fprintf(h, "package %s=%s\n", pkg, versions[pkg])
	}
	h.Write([]byte(f.manifest()))
	key := hex.EncodeToString(h.Sum(nil))

	tagName := s.version
	if s.versionOf != nil {
		if tagName, err = s.versionOf(ctx, b); err != nil {
			return nil, err
		}
	}
	if s.tagPackage != "" {
		v, ok := versions[s.tagPackage]
		if !ok {
			return nil, fmt.Errorf("tag package %s not among collected packages", s.tagPackage)
		}
		tagName = imageTag(v, major)
	}
	tag, err := name.NewTag(Registry+"/"+s.name+":"+tagName, name.StrictValidation)
	if err != nil {
		return nil, err
	}
	return &plan{
		spec: s, files: f, packages: versions, key: key, tag: tag,
		path: filepath.Join(b.OutDir, fileBase(s.name)+"-"+key[:16]+".tar"),
	}, nil
}

// Build makes the named images (all when names is empty), reusing cached tars whose key
// matches, and writes OutDir/images.json listing every image now in OutDir.
func (b *Builder) Build(ctx context.Context, names []string) ([]Result, error) {
	if err := os.MkdirAll(b.OutDir, 0o755); err != nil {
		return nil, err
	}
	ss, err := selectSpecs(names)
	if err != nil {
		return nil, err
	}
	return b.buildSpecs(ctx, ss)
}

// buildSpecs builds ss into OutDir and merges them into OutDir/images.json.
func (b *Builder) buildSpecs(ctx context.Context, ss []spec) ([]Result, error) {
	if err := os.MkdirAll(b.OutDir, 0o755); err != nil {
		return nil, err
	}
	major := debianMajor()
	var results []Result
	for _, s := range ss {
		start := time.Now()
		b.logf("==> %s: collecting files (%s)", s.name, s.description)
		p, err := b.plan(ctx, s, major)
		if err != nil {
			return results, fmt.Errorf("image %s: %w", s.name, err)
		}
		r, err := b.write(p)
		if err != nil {
			return results, fmt.Errorf("image %s: %w", s.name, err)
		}
		state := "built"
		if r.Cached {
			state = "cached"
		}
		b.logf("    %s %s (%d files, %.1f MiB) in %s", state, r.Ref, r.Files, float64(r.Size)/(1<<20),
			time.Since(start).Round(100*time.Millisecond))
		results = append(results, r)
	}
	return results, b.writeIndex(results)
}

func (b *Builder) write(p *plan) (Result, error) {
	r := Result{
		Name: p.spec.name, Ref: p.tag.String(), Path: p.path, Key: p.key,
		Files: len(p.files.paths()), Packages: p.packages,
	}
	if img, err := tarball.ImageFromPath(p.path, &p.tag); err == nil {
		if id, err := img.ConfigName(); err == nil {
			st, _ := os.Stat(p.path)
			r.ImageID, r.Size, r.Cached = id.String(), st.Size(), true
			return r, nil
		}
	}

	layerTar, err := os.CreateTemp(b.OutDir, "."+fileBase(p.spec.name)+"-layer-*.tar")
	if err != nil {
		return r, err
	}
	defer os.Remove(layerTar.Name())
	if err := p.files.writeTar(layerTar); err != nil {
		layerTar.Close()
		return r, err
	}
	if err := layerTar.Close(); err != nil {
		return r, err
	}
	layer, err := tarball.LayerFromFile(layerTar.Name(), tarball.WithCompressedCaching)
	if err != nil {
		return r, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return r, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return r, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Author = "infralab images builder"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = p.spec.config
	cf.Config.User = p.spec.user.user()
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   p.spec.name,
		"org.opencontainers.image.version": p.tag.TagStr(),
		"org.opencontainers.image.source":  "https://github.com/infralab/infralab",
		"dev.infralab.cache-key":           p.key,
		"dev.infralab.debian-packages":     packageList(p.packages),
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return r, err
	}
	tmp := p.path + ".tmp"
	if err := tarball.WriteToFile(tmp, p.tag, img); err != nil {
		os.Remove(tmp)
		return r, err
	}
	if err := os.Rename(tmp, p.path); err != nil {
		return r, err
	}
	b.prune(p)
	id, err := img.ConfigName()
	if err != nil {
		return r, err
	}
	st, err := os.Stat(p.path)
	if err != nil {
		return r, err
	}
	r.ImageID, r.Size = id.String(), st.Size()
	return r, nil
}

// prune removes the same image's tars for older keys, so the cache holds one per image.
func (b *Builder) prune(p *plan) {
	old, _ := filepath.Glob(filepath.Join(b.OutDir, fileBase(p.spec.name)+"-????????????????.tar"))
	for _, o := range old {
		if o != p.path {
			os.Remove(o)
		}
	}
}

// writeIndex merges results into OutDir/images.json, the file the node reads to import images.
func (b *Builder) writeIndex(results []Result) error {
	path := filepath.Join(b.OutDir, "images.json")
	index := map[string]Result{}
	if data, err := os.ReadFile(path); err == nil {
		var prev []Result
		if json.Unmarshal(data, &prev) == nil {
			for _, r := range prev {
				if _, err := os.Stat(r.Path); err == nil {
					index[r.Name] = r
				}
			}
		}
	}
	for _, r := range results {
		index[r.Name] = r
	}
	var out []Result
	for _, n := range sortedKeys(index) {
		out = append(out, index[n])
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// fileBase is an image name as a file name: "calico/node" is calico-node.
func fileBase(name string) string { return strings.ReplaceAll(name, "/", "-") }

func packageList(m map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

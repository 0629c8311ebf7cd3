package registry

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/infralab/infralab/proof/images"
)

// DefaultPrefix is the repository path the control-plane images go under:
// imageRepository = <Addr>/k8s.
const DefaultPrefix = "k8s"

// Pushed is one image in the registry.
type Pushed struct {
	Ref    string // <addr>/<prefix>/<name>:<tag>
	Digest string
	// Skipped: the registry already held this tag at this digest; nothing was sent.
	Skipped bool
}

// ImageRepository is kubeadm's imageRepository for prefix on this registry.
func (r *Registry) ImageRepository(prefix string) string { return r.Addr + "/" + prefix }

// Push copies built images (docker-archive tars from proof/images) into the registry as
// <Addr>/<prefix>/<name>:<tag>, the tag being the one the builder gave it. A tag that already
// points at the same digest is left alone, so a second push sends nothing.
func (r *Registry) Push(ctx context.Context, prefix string, built []images.Result) ([]Pushed, error) {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(r.Transport())}
	var out []Pushed
	for _, b := range built {
		src, err := name.NewTag(b.Ref, name.StrictValidation)
		if err != nil {
			return out, err
		}
		img, err := tarball.ImageFromPath(b.Path, &src)
		if err != nil {
			return out, fmt.Errorf("read %s: %w", b.Path, err)
		}
		dst, err := name.NewTag(r.ImageRepository(prefix)+"/"+b.Name+":"+src.TagStr(), name.StrictValidation)
		if err != nil {
			return out, err
		}
		digest, err := img.Digest()
		if err != nil {
			return out, err
		}
		p := Pushed{Ref: dst.String(), Digest: digest.String()}
		if d, err := remote.Head(dst, opts...); err == nil && d.Digest == digest {
			p.Skipped = true
			out = append(out, p)
			continue
		} else if err != nil && !isNotFound(err) {
			return out, fmt.Errorf("check %s: %w", dst, err)
		}
		if err := remote.Write(dst, img, opts...); err != nil {
			return out, fmt.Errorf("push %s: %w", dst, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func isNotFound(err error) bool {
	s := err.Error()
	return strings.Contains(s, fmt.Sprint(http.StatusNotFound)) || strings.Contains(s, "MANIFEST_UNKNOWN") || strings.Contains(s, "NAME_UNKNOWN")
}

// Tags lists every <Addr>/<repo>:<tag> under prefix, from the registry's catalog: what a pull
// can find, read back from the registry rather than from what was pushed.
func (r *Registry) Tags(ctx context.Context, prefix string) ([]string, error) {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(r.Transport())}
	reg, err := name.NewRegistry(r.Addr, name.StrictValidation)
	if err != nil {
		return nil, err
	}
	repos, err := remote.Catalog(ctx, reg, opts...)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, repo := range repos {
		if !strings.HasPrefix(repo, prefix+"/") {
			continue
		}
		rp, err := name.NewRepository(r.Addr+"/"+repo, name.StrictValidation)
		if err != nil {
			return nil, err
		}
		tags, err := remote.List(rp, opts...)
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			out = append(out, rp.String()+":"+t)
		}
	}
	return out, nil
}

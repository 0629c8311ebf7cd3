package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve/download"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ensureImage has Proxmox itself download the cloud image onto the node and verify its checksum,
// so the image never passes through the machine running pulumi.
//
// VMs import this file as their disk (content type `import`, disk importFrom) instead of cloning
// a template VM: a template would be one more VM per node to create, keep an ID for and keep in
// sync with the image, and clones of it must live on the template's node anyway. Importing keeps
// the chain to file -> VM, and a new image URL is just a new download.
//
// A new image never reaches existing VMs: bpg's disk code copies an existing disk's import_from
// from state and never re-imports (proxmoxtf/resource/vm/disk/disk.go, "Never re-import existing
// disks"). Only VMs created afterwards boot the new image (docs/infra.md, "The cloud image").
func (r *reconciler) ensureImage(pn ProxmoxNode) error {
	im := r.plan.args.Image
	file, err := download.NewFile(r.ctx, r.child("image-%s", pn.Name), &download.FileArgs{
		NodeName:          pulumi.String(pn.Name),
		DatastoreId:       pulumi.String(pn.ImageStorage),
		ContentType:       pulumi.String("import"),
		Url:               pulumi.String(im.URL),
		Checksum:          pulumi.String(im.Checksum),
		ChecksumAlgorithm: pulumi.String(im.ChecksumAlgorithm),
		// The name holds the checksum, the URL and the node, so a changed image is a second file
		// beside the first: the provider replaces this resource create-before-delete and its
		// Delete removes the volume by ID (fwprovider/nodes/resource_download_file.go), which with
		// one fixed name was the file just downloaded. No overwriteUnmanaged (it deleted any
		// same-named file first, ours or not): a leftover of a failed run now fails the create
		// with "refusing to override existing file" instead of being deleted silently.
		FileName: pulumi.String(imageFileName(im, pn.Name)),
		// The checksum pins the content, so the provider's size checks against the URL (which
		// replace the file when the mirror's size changes, default on) can only cause surprises.
		Overwrite: pulumi.Bool(false),
		// Cloud images are ~400 MB; give slow mirrors 30 minutes instead of the default 10.
		UploadTimeout: pulumi.Int(1800),
	}, r.pxOpts()...)
	if err != nil {
		return err
	}
	if r.images == nil {
		r.images = map[string]*download.File{}
	}
	r.images[pn.Name] = file
	return nil
}

// imageFileName is the image's file name on a node's storage:
// <first 12 hex digits of the checksum>-<8 hex digits of sha256(url)>-<node>-<name>, where name is
// image.fileName or the URL's last path element. The checksum and URL parts make a new image a new
// file; the node part keeps two nodes that share one storage from owning (and deleting) one file.
func imageFileName(im ImageArgs, node string) string {
	base := im.FileName
	if base == "" {
		u, err := url.Parse(im.URL)
		if err != nil {
			return ""
		}
		base = path.Base(u.Path)
	}
	sum := im.Checksum
	if len(sum) > 12 {
		sum = sum[:12]
	}
	u := sha256.Sum256([]byte(im.URL))
	return fmt.Sprintf("%s-%s-%s-%s", sum, hex.EncodeToString(u[:4]), node, base)
}

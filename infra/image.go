package infra

import (
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
func (r *reconciler) ensureImage(pn ProxmoxNode) error {
	im := r.plan.args.Image
	file, err := download.NewFile(r.ctx, r.child("image-%s", pn.Name), &download.FileArgs{
		NodeName:          pulumi.String(pn.Name),
		DatastoreId:       pulumi.String(pn.ImageStorage),
		ContentType:       pulumi.String("import"),
		Url:               pulumi.String(im.URL),
		Checksum:          pulumi.String(im.Checksum),
		ChecksumAlgorithm: pulumi.String(im.ChecksumAlgorithm),
		FileName:          pulumi.String(r.plan.imageFile),
		// The checksum pins the content, so taking over a same-named file left by an earlier
		// run is safe and lets a rebuild converge instead of failing on "file exists".
		OverwriteUnmanaged: pulumi.Bool(true),
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

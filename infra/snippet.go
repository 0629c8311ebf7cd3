package infra

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve/storage"
	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

//go:embed scripts/snippet-cleanup.sh
var snippetCleanupScript string

// snippetFileName is the one name a VM's user-data ever has on its node's snippet storage.
func snippetFileName(stack, vm string) string {
	return fmt.Sprintf("infralab-%s-%s.user-data.yaml", stack, vm)
}

// ensureSnippet uploads the VM's cloud-init user-data to its node's snippet storage and returns
// the volume ID for the VM, plus what the VM must depend on.
//
// Why a fixed name with RetainOnDelete (read in bpg terraform-provider-proxmox v0.95.0):
//   - proxmoxtf/resource/file.go: source_raw.data is ForceNew, a create overwrites a same-named
//     file (overwrite defaults to true) and fileDelete deletes the volume by ID. Pulumi replaces
//     create-before-delete, so the old resource's delete removed the very file the new one had
//     written, and qemu-server reads that file at every cold start (src/PVE/QemuServer/Cloudinit.pm,
//     read_cloudinit_snippets_file dies on a missing file): the VM would not start again.
//   - proxmoxtf/resource/vm/vm.go: initialization.user_data_file_id is ForceNew, so a new name per
//     content would replace the VM (and wipe its disk) on every user-data edit.
//   - delete-before-replace on the snippet would make Pulumi replace the VM that depends on it.
//
// So the file keeps its name, a replaced snippet retains (does not delete) the file its successor
// overwrote, and the VM gets the volume ID as a string known at preview time (an unknown ID of a
// replaced snippet would show the VM as "replace" in preview). The file is removed by a remote
// command the VM depends on: Pulumi deletes the VM first, then that command runs `remove`.
func (r *reconciler) ensureSnippet(v VMArgs, pn ProxmoxNode, data string) (string, []pulumi.Resource, error) {
	a := r.plan.args
	file := snippetFileName(a.Stack, v.Name)
	volid := pn.ImageStorage + ":snippets/" + file
	snippet, err := storage.NewFile(r.ctx, r.child("user-data-%s", v.Name), &storage.FileArgs{
		NodeName:    pulumi.String(pn.Name),
		DatastoreId: pulumi.String(pn.ImageStorage),
		ContentType: pulumi.String("snippets"),
		SourceRaw: &storage.FileSourceRawArgs{
			FileName: pulumi.String(file),
			Data:     pulumi.String(data),
		},
		// A replacement writes the same path; explicit because the design relies on it.
		Overwrite: pulumi.Bool(true),
	}, r.pxOpts(pulumi.RetainOnDelete(true))...)
	if err != nil {
		return "", nil, err
	}
	cleanup, err := r.ensureSnippetCleanup(v, pn, volid, snippet)
	if err != nil {
		return "", nil, err
	}
	return volid, []pulumi.Resource{snippet, cleanup}, nil
}

// ensureSnippetCleanup declares the command that checks the uploaded snippet and removes it once
// its VM is gone. The script goes on stdin, which pulumi-command v1.1.0 also sends to the delete
// run, from state (provider/pkg/provider/remote/commandOutputs.go). It is not replaced when the
// snippet is (no input refers to the snippet's outputs), so a user-data edit never removes the file.
func (r *reconciler) ensureSnippetCleanup(v VMArgs, pn ProxmoxNode, volid string, snippet pulumi.Resource) (*remote.Command, error) {
	a := r.plan.args
	sum := sha256.Sum256([]byte(snippetCleanupScript))
	line := func(action string) string { return snippetCommand(a.Proxmox.HostSSH.User, volid, action) }
	return remote.NewCommand(r.ctx, r.child("user-data-cleanup-%s", v.Name), &remote.CommandArgs{
		Connection: r.hostConnection(pn, r.plan.hostAddress[pn.Name]),
		Create:     pulumi.String(line("check")),
		Delete:     pulumi.String(line("remove")),
		Stdin:      pulumi.String(snippetCleanupScript),
		Triggers:   pulumi.Array{pulumi.String(hex.EncodeToString(sum[:])), pulumi.String(volid)},
	}, pulumi.Parent(r.parent), pulumi.DependsOn([]pulumi.Resource{snippet}))
}

// snippetCommand is the remote shell line that runs the cleanup script (on stdin) for one snippet.
// The volume ID goes in on the command line: sshd drops SSH-level environment on a stock host.
func snippetCommand(user, volid, action string) string {
	sudo := ""
	if user != "root" {
		sudo = "sudo -n "
	}
	return fmt.Sprintf("%senv INFRALAB_SNIPPET=%s sh -s %s", sudo, shellQuote(volid), action)
}

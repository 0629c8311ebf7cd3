package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storagePrivileges is the least the API token needs on each storage, from the permission
// checks of the calls the provider makes (docs/infra.md, "Why exactly these storage privileges",
// cites each source):
//   - disk storage: new disks, the disk imported from the image and the cloud-init drive need
//     Datastore.AllocateSpace (qemu-server API2/Qemu.pm, check_storage_access and create_vm);
//     the provider reads a disk's format (GET .../content/{volume}), which for a VM's own
//     volume needs Datastore.Audit (pve-storage PVE/Storage.pm, check_volume_access).
//   - image storage: download-url needs Datastore.AllocateTemplate (pve-storage
//     API2/Storage/Status.pm); listing it needs Datastore.Audit (API2/Storage/Content.pm index);
//     the snippet upload first reads the storage's config, GET /storage/{id}, which needs
//     Datastore.Allocate (API2/Storage/Config.pm read), as does deleting the image or an old
//     snippet (Content.pm delete).
var storagePrivileges = map[string][]string{
	"/storage/local-lvm":       {"Datastore.AllocateSpace", "Datastore.Audit"},
	"/storage/infralab-images": {"Datastore.Allocate", "Datastore.AllocateTemplate", "Datastore.Audit"},
}

// Issue 13.14: the documented pveum commands, run as written against a stand-in pveum that
// records them, leave the token with exactly the storage privileges above: the user and the
// token (privilege separation: the intersection applies) on every path, and no Datastore
// privilege on any other path.
func TestDocumentedTokenGetsExactlyTheStoragePrivilegesNeeded(t *testing.T) {
	bash := testenv.Tool(t, "bash")
	md, err := os.ReadFile("docs/infra.md")
	require.NoError(t, err)
	var block string
	for _, b := range shellBlocks("docs/infra.md", md) {
		if strings.Contains(b.text, "pveum role add") {
			block = b.text
		}
	}
	require.NotEmpty(t, block, "docs/infra.md has no block with the pveum role commands")

	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	stub := "#!/bin/sh\n{ for a in \"$@\"; do printf '%s\\037' \"$a\"; done; echo; } >>" + log + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pveum"), []byte(stub), 0o755))
	cmd := exec.Command(bash, "--norc", "--noprofile", "-e", "-c", block)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the documented block fails:\n%s", out)
	calls, err := os.ReadFile(log)
	require.NoError(t, err)

	roles := map[string][]string{}
	grants := map[string]map[string][]string{} // principal -> path -> privileges
	for _, line := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
		args := strings.Split(strings.TrimSuffix(line, "\037"), "\037")
		switch {
		case len(args) >= 5 && args[0] == "role" && args[1] == "add" && args[3] == "--privs":
			roles[args[2]] = strings.Split(args[4], ",")
		case len(args) >= 2 && args[0] == "acl" && args[1] == "modify":
			path, who, role := args[2], flag(args, "--users")+flag(args, "--tokens"), flag(args, "--roles")
			require.Contains(t, roles, role, "acl modify %v grants a role the block never added", args)
			if grants[who] == nil {
				grants[who] = map[string][]string{}
			}
			grants[who][path] = append(grants[who][path], roles[role]...)
		}
	}
	require.Contains(t, grants, "infralab@pve")
	require.Contains(t, grants, "infralab@pve!pulumi", "the token's ACL must name infralab@pve!pulumi exactly")
	assert.Equal(t, grants["infralab@pve"], grants["infralab@pve!pulumi"], "with privilege separation user and token need the same ACL")
	for path, privs := range grants["infralab@pve!pulumi"] {
		var datastore []string
		for _, p := range privs {
			if strings.HasPrefix(p, "Datastore.") {
				datastore = append(datastore, p)
			}
		}
		slices.Sort(datastore)
		assert.Equal(t, storagePrivileges[path], datastore, "Datastore privileges on %s", path)
	}
	for path := range storagePrivileges {
		assert.Contains(t, grants["infralab@pve!pulumi"], path)
	}

	// The README's role table says the same as the commands.
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\s*\\| `(Infralab\\w+)` \\| ([^|]+) \\|")
	found := 0
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		found++
		var privs []string
		for _, p := range strings.Split(strings.ReplaceAll(strings.Split(m[2], "(")[0], "`", ""), ",") {
			privs = append(privs, strings.TrimSpace(p))
		}
		assert.ElementsMatch(t, roles[m[1]], privs, "README role %s", m[1])
	}
	assert.Equal(t, len(roles), found, "the README's table lists every role of docs/infra.md")
}

func flag(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

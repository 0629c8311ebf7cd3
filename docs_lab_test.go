package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 13.17: the README's "Run the lab stack", walked by a newcomer with an empty home directory.
// Each check is a step that did not work as written: no backend or passphrase before the first
// `pulumi stack init`, the host key file named differently in README, docs and hints, nothing
// about Go and Pulumi on the machine that runs it, no plugin install, `proxmox.nodes[0].name`
// and `.address` not explained.
func TestReadmeLabWalkthroughFromAnEmptyHome(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	lab := section(t, string(readme), "## Run the lab stack")
	gomod, err := os.ReadFile("go.mod")
	require.NoError(t, err)

	at := func(s string) int {
		i := strings.Index(lab, s)
		assert.GreaterOrEqual(t, i, 0, "README, \"Run the lab stack\", never says %q", s)
		return i
	}
	initAt := at("pulumi stack init lab")
	assert.Less(t, at("pulumi login"), initAt, "a backend before the first stack")
	assert.Less(t, at("PULUMI_CONFIG_PASSPHRASE"), initAt, "a passphrase before the first stack")
	assert.Less(t, initAt, at("pulumi config set --secret"), "the stack exists before its secrets")

	// The machine that runs `up` needs Go at go.mod's version and the Pulumi CLI.
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	require.NotNil(t, goVersion)
	at("Go ≥ " + string(goVersion[1]))
	at("Pulumi CLI")

	// The provider plugins at the versions the SDKs in go.mod ask for.
	for mod, plugin := range map[string]string{"github.com/muhlba91/pulumi-proxmoxve/sdk/v7": "proxmoxve", "github.com/pulumi/pulumi-command/sdk": "command"} {
		v := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(mod) + ` v(\S+)`).FindSubmatch(gomod)
		require.NotNil(t, v, mod)
		at("pulumi plugin install resource " + plugin + " " + string(v[1]))
	}

	at("`proxmox.nodes[0].name`")
	at("`hostname`")
	assert.Regexp(t, "`proxmox.nodes\\[0\\].address`: required", lab)
	at("sshHostKey")
	at("imageStorage: infralab-images")
}

// Every place that tells a reader which key file feeds which secret names the same file: the
// README, docs/, the shipped stack file's comment and the validation hints.
func TestOneKeyFilePerSSHSecretEverywhere(t *testing.T) {
	files := docFiles(t)
	for _, glob := range []string{"stacks/*.yaml", "stacks/*.go", "infra/*.go"} {
		m, err := filepath.Glob(glob)
		require.NoError(t, err)
		files = append(files, m...)
	}
	// `< PATH`, not a placeholder such as `< KEY`.
	use := regexp.MustCompile("--secret (proxmoxSshPrivateKey|sshPrivateKey) < ([~/][^\\s\"'`)]*)")
	seen := map[string]map[string][]string{} // secret -> file -> where
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range use.FindAllStringSubmatch(string(b), -1) {
			if seen[m[1]] == nil {
				seen[m[1]] = map[string][]string{}
			}
			seen[m[1]][m[2]] = append(seen[m[1]][m[2]], f)
		}
	}
	for _, secret := range []string{"proxmoxSshPrivateKey", "sshPrivateKey"} {
		assert.Len(t, seen[secret], 1, "%s is fed from more than one key file: %v", secret, seen[secret])
	}
	for key := range seen["proxmoxSshPrivateKey"] {
		for vm := range seen["sshPrivateKey"] {
			assert.NotEqual(t, key, vm, "the host key and the VMs' key are different keys")
		}
	}
}

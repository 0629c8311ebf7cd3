package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// requiredPlugins finds the resource plugins a Go program needs the way Pulumi's official Go
// language host does (sdk/go/pulumi-language-go/main.go, GetRequiredPlugins): find the program's
// go.mod (`go list -m -f {{.GoMod}}`), run `go list -m -json` on the modules it requires, and for
// each one read pulumi-plugin.json from its folder, its go/ folder or a go/* folder; a module
// without one counts only when its path starts with github.com/pulumi/pulumi- (the plugin is
// named after it). The version is pulumi-plugin.json's, or else the module's, with a
// pseudo-version turned into the release before it.
//
// One difference: only direct requirements count. The official host also reads `// indirect`
// ones, so for this repo it would report github.com/pulumi/pulumi-cloud-sdk/go (an indirect
// dependency of sdk/v3) as a resource plugin "cloud-sdk", which does not exist; a program can
// only declare resources of SDKs it imports, and those are direct requirements.
func requiredPlugins(ctx context.Context, programDir string) ([]*pulumirpc.PluginDependency, error) {
	modDir, requires, err := directRequires(ctx, programDir)
	if err != nil || len(requires) == 0 {
		return nil, err
	}
	out, err := goCommand(ctx, modDir, append([]string{"list", "-m", "-json"}, requires...)...)
	if err != nil {
		return nil, err
	}
	var plugins []*pulumirpc.PluginDependency
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m struct {
			Path, Version, Dir string
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go list output: %w", err)
		}
		if p, err := pluginOf(m.Path, m.Version, m.Dir); err != nil {
			return nil, err
		} else if p != nil {
			plugins = append(plugins, p)
		}
	}
	return plugins, nil
}

// directRequires returns the folder of the program's go.mod and the modules it requires directly.
func directRequires(ctx context.Context, programDir string) (string, []string, error) {
	out, err := goCommand(ctx, programDir, "list", "-m", "-f", "{{.GoMod}}")
	if err != nil {
		return "", nil, err
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", nil, nil // not in a module: no plugins known, as the official host answers
	}
	modDir := filepath.Dir(gomod)
	out, err = goCommand(ctx, modDir, "mod", "edit", "-json")
	if err != nil {
		return "", nil, err
	}
	var mod struct {
		Require []struct {
			Path     string
			Indirect bool
		}
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", nil, fmt.Errorf("reading %s: %w", gomod, err)
	}
	var paths []string
	for _, r := range mod.Require {
		if !r.Indirect {
			paths = append(paths, r.Path)
		}
	}
	return modDir, paths, nil
}

// pluginOf is the resource plugin of one module, or nil when it is not a Pulumi provider SDK.
func pluginOf(path, version, dir string) (*pulumirpc.PluginDependency, error) {
	meta, err := pluginJSON(dir)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	if (meta == nil && !strings.HasPrefix(path, "github.com/pulumi/pulumi-")) || (meta != nil && !meta.Resource) {
		return nil, nil
	}
	name := ""
	if meta != nil {
		name = meta.Name
	}
	if name == "" { // github.com/pulumi/pulumi-aws/sdk/v6 => aws
		name = strings.SplitN(strings.Split(path, "/")[2], "-", 2)[1]
	}
	if meta != nil && meta.Version != "" {
		version = meta.Version
	}
	v, ok := releaseVersion(version)
	if !ok {
		return nil, nil // the official host skips a module without a semver version
	}
	dep := &pulumirpc.PluginDependency{Name: name, Kind: "resource", Version: v}
	if meta != nil {
		dep.Server = meta.Server
	}
	return dep, nil
}

// pluginJSON reads pulumi-plugin.json from dir, dir/go or dir/go/*; nil when there is none.
func pluginJSON(dir string) (*plugin.PulumiPluginJSON, error) {
	if dir == "" {
		return nil, nil
	}
	paths := []string{filepath.Join(dir, "pulumi-plugin.json"), filepath.Join(dir, "go", "pulumi-plugin.json")}
	more, _ := filepath.Glob(filepath.Join(dir, "go", "*", "pulumi-plugin.json"))
	for _, p := range append(paths, more...) {
		meta, err := plugin.LoadPulumiPluginJSON(p)
		if os.IsNotExist(err) {
			continue
		}
		return meta, err
	}
	return nil, nil
}

var (
	semverRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)([-+].*)?$`)
	// A Go pseudo-version ends in a 14-digit UTC time and a 12-digit commit hash.
	pseudoRE = regexp.MustCompile(`[-.]\d{14}-[0-9a-f]{12}(\+incompatible)?$`)
)

// releaseVersion keeps a release version as it is and turns a pseudo-version (commits after vX.Y.Z
// are vX.Y.(Z+1)-0.<time>-<hash>) into the release before it, as the official host does.
func releaseVersion(v string) (string, bool) {
	m := semverRE.FindStringSubmatch(v)
	if m == nil {
		return "", false
	}
	if !pseudoRE.MatchString(v) {
		return v, true
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	patch, _ := strconv.Atoi(m[3])
	if major == 0 && minor == 0 && patch == 0 {
		return "", false // no release before it
	}
	if patch > 0 {
		patch--
	}
	return fmt.Sprintf("v%d.%d.%d", major, minor, patch), true
}

func goCommand(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s in %s: %v: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

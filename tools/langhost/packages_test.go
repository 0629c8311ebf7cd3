package main

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"github.com/infralab/infralab/internal/testenv"
)

// The infralab program needs three provider plugins; the engine installs (or, offline, looks up)
// what the language host reports, at these versions.
func TestRequiredPackagesOfTheProgramAreItsProviderSDKs(t *testing.T) {
	root := testenv.RepoRoot()
	v := testenv.PinnedVersions(t)
	want := []string{
		"command " + v["COMMAND_PLUGIN_VERSION"] + " ",
		"kubernetes " + v["KUBERNETES_PLUGIN_VERSION"] + " ",
		"proxmoxve " + v["PROXMOXVE_PLUGIN_VERSION"] + " github://api.github.com/muhlba91/pulumi-proxmoxve",
	}
	h := newHost("")
	pkgs, err := h.GetRequiredPackages(context.Background(), &pulumirpc.GetRequiredPackagesRequest{
		Info: &pulumirpc.ProgramInfo{RootDirectory: root, ProgramDirectory: root, EntryPoint: "."},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pkgs.GetPackages() {
		if p.GetKind() != "resource" {
			t.Errorf("%s: kind %q, want resource", p.GetName(), p.GetKind())
		}
		got = append(got, p.GetName()+" "+strings.TrimPrefix(p.GetVersion(), "v")+" "+p.GetServer())
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("GetRequiredPackages =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	plugins, err := h.GetRequiredPlugins(context.Background(), &pulumirpc.GetRequiredPluginsRequest{Pwd: root, Program: "."})
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, p := range plugins.GetPlugins() {
		got = append(got, p.GetName()+" "+strings.TrimPrefix(p.GetVersion(), "v")+" "+p.GetServer())
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("GetRequiredPlugins =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// The policy pack's module requires no provider SDK.
func TestPolicyPackRequiresNoPlugin(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "policy")
	pkgs, err := newHost("").GetRequiredPackages(context.Background(), &pulumirpc.GetRequiredPackagesRequest{
		Info: &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: "."},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs.GetPackages()) != 0 {
		t.Errorf("policy pack: %v", pkgs.GetPackages())
	}
}

func TestReleaseVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v7.13.0":                               "v7.13.0",
		"1.1.0":                                 "1.1.0",
		"v4.0.0-20260115033456-f47bc2d6f199":    "v4.0.0",
		"v0.0.0-20260115033456-f47bc2d6f199":    "", // no release before it
		"v1.29.1-0.20200403140640-efb5e2a48a86": "v1.29.0",
		"v2.0.0-rc.1":                           "v2.0.0-rc.1",
		"latest":                                "",
	} {
		got, ok := releaseVersion(in)
		if got != want || ok != (want != "") {
			t.Errorf("releaseVersion(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// Under the real CLI the engine takes the reported plugins for the update (it tries to install
// the missing ones) and, with automatic acquisition off as everywhere in this repo, downloads
// nothing: a program that declares no proxmoxve or command resource runs without those plugins.
func TestEngineTakesTheReportedPluginsAndDownloadsNothing(t *testing.T) {
	p := newProject(t, testProgram)
	p.mustRun("config", "set", "--secret", "token", tokenValue)
	out := p.mustRun("preview", "-v=7", "--logtostderr")
	v := testenv.PinnedVersions(t)
	for _, want := range []string{"proxmoxve " + v["PROXMOXVE_PLUGIN_VERSION"], "command " + v["COMMAND_PLUGIN_VERSION"],
		"kubernetes " + v["KUBERNETES_PLUGIN_VERSION"]} {
		if !strings.Contains(out, "plugin "+want+" not installed") {
			t.Errorf("the engine did not consider plugin %s (reported by GetRequiredPackages)", want)
		}
	}
	if strings.Contains(out, "downloading from") {
		t.Error("the engine tried to download a plugin although PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION is set")
	}
}

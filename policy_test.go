package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"

	"github.com/infralab/infralab/policy/rules"
)

// The lab stack cannot be previewed under the CLI here (no proxmoxve or command plugin), so its
// declared resources go through the whole policy pack from its mock run. The local stack also
// runs through the real CLI with the pack in e2e/.
func TestShippedStacksPassThePolicyPack(t *testing.T) {
	for _, stack := range []string{"lab", "local"} {
		t.Run(stack, func(t *testing.T) {
			sc := loadStack(t, stack)
			if stack == "local" {
				kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
				if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				sc.values["kubeconfig"] = kubeconfig
			}
			rec, err := sc.run(t)
			if err != nil {
				t.Fatal(err)
			}
			report := rules.EvaluateStack(packResources(rec), stackExceptions(t, stack))
			for _, f := range report.Mandatory {
				t.Errorf("mandatory: %s %s %s: %s", f.Rule, f.Resource, f.Field, f.Problem)
			}
			for _, f := range report.Advisory {
				t.Logf("advisory: %s %s %s: %s", f.Rule, f.Resource, f.Field, f.Problem)
			}
			if len(rec.resources) < 40 {
				t.Fatalf("only %d resources checked", len(rec.resources))
			}
		})
	}
}

// A deliberately broken resource in the same run is caught, so the test above can fail.
func TestPolicyPackCatchesARootContainerInTheProgramOutput(t *testing.T) {
	rec, err := loadStack(t, "lab").run(t)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rec.resources {
		if r.TypeToken != "kubernetes:apps/v1:Deployment" {
			continue
		}
		spec := r.Inputs["spec"].ObjectValue()["template"].ObjectValue()["spec"].ObjectValue()
		c := spec["containers"].ArrayValue()[0].ObjectValue()
		c["securityContext"].ObjectValue()["runAsUser"] = resource.NewProperty(0.0)
		rec.resources[i] = r
		break
	}
	report := rules.EvaluateStack(packResources(rec), rules.Exceptions{})
	for _, f := range report.Mandatory {
		if f.Rule == "pod-run-as-user-group" {
			return
		}
	}
	t.Fatalf("a container with runAsUser 0 passed the pack: %+v", report.Mandatory)
}

// packResources turns what the mock engine recorded into what the pack sees.
func packResources(rec *recorder) []rules.Resource {
	out := make([]rules.Resource, 0, len(rec.resources))
	for _, r := range rec.resources {
		urn := resource.NewURN("test", "infralab", "", tokens.Type(r.TypeToken), r.Name)
		var deps []string
		if r.RegisterRPC != nil {
			deps = r.RegisterRPC.GetDependencies()
		}
		out = append(out, rules.Resource{
			Type: r.TypeToken, Name: r.Name, URN: string(urn),
			Props: resource.FromResourcePropertyMap(r.Inputs), DependsOn: deps,
		})
	}
	return out
}

// stackExceptions reads stacks/policy.<stack>.json, the pack config CI passes with
// --policy-pack-config, exactly as the pack's exceptions policy parses it.
func stackExceptions(t *testing.T, stack string) rules.Exceptions {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("stacks", "policy."+stack+".json"))
	if os.IsNotExist(err) {
		return rules.Exceptions{}
	}
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("stacks/policy.%s.json: %v", stack, err)
	}
	ex := rules.ParseExceptions(cfg["exceptions"], func(name string) bool { return slices.Contains(rules.RuleNames(), name) })
	if len(ex.Problems) > 0 {
		t.Fatalf("stacks/policy.%s.json: %v", stack, ex.Problems)
	}
	return ex
}

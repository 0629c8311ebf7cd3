// Package pack wires infralab's rules into a policyx policy pack.
//
// Every rule becomes one policy with its own enforcement level. The exceptions live in the
// config of the policy named "exceptions", the other settings (Pod Security level and version,
// image pinning) in the config of the policy named "settings"; policyx hands each policy only its
// own config and gives stack policies none at all, so those two policies (first in the list, and
// so run first for every resource) record what they parsed for all the others to read.
package pack

import (
	"context"
	"slices"
	"sync"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"

	"github.com/infralab/infralab/policy/rules"
)

// Name is the policy pack's name as the CLI prints it.
const Name = "infralab"

// Version is the policy pack's version.
var Version = semver.MustParse("0.1.0")

const (
	// ExceptionsPolicy is the policy whose config holds the exceptions.
	ExceptionsPolicy = "exceptions"
	// SettingsPolicy is the policy whose config holds rules.Settings.
	SettingsPolicy = "settings"
	// UnknownsPolicy lists, as advisory, the fields a preview could not check.
	UnknownsPolicy = "preview-unknown-values"
	// StackUnknownsPolicy does the same for the stack rules.
	StackUnknownsPolicy = "preview-unknown-values-stack"
	stackType           = "pulumi:pulumi:Stack"
)

// shared is the state the policies of one pack share.
type shared struct {
	mu       sync.Mutex
	ex       rules.Exceptions
	settings rules.Settings
}

func (s *shared) set(ex rules.Exceptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ex = ex
}

func (s *shared) get() rules.Exceptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ex
}

func (s *shared) setSettings(v rules.Settings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settings = v
}

func (s *shared) getSettings() rules.Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings
}

func level(l rules.Level) policyx.EnforcementLevel {
	if l == rules.Advisory {
		return policyx.EnforcementLevelAdvisory
	}
	return policyx.EnforcementLevelMandatory
}

// Resource converts what policyx hands a policy into what the rules read.
func Resource(r policyx.AnalyzerResource) rules.Resource {
	return rules.Resource{Type: r.Type, Name: r.Name, URN: r.URN, Props: r.Properties,
		DependsOn: r.Dependencies, PropDeps: r.PropertyDependencies}
}

var exceptionsSchema = &policyx.ConfigSchema{Properties: map[string]map[string]any{
	rules.ExceptionsKey: {
		"type":        "array",
		"description": "Exceptions: each lets the listed rules pass for one resource or namespace, and needs a reason.",
		"items": map[string]any{
			"type": "object",
			"properties": map[string]any{
				"rules":     map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
				"resource":  map[string]any{"type": "string"},
				"namespace": map[string]any{"type": "string"},
				"reason":    map[string]any{"type": "string"},
			},
			"additionalProperties": false,
		},
	},
}}

var settingsSchema = &policyx.ConfigSchema{Properties: map[string]map[string]any{
	rules.SettingsPodSecurityKey: {
		"type":        "object",
		"description": "The Pod Security level (baseline or restricted, default restricted) and version (v1.<minor> or latest, default " + rules.DefaultPodSecurityVersion + ") the pod rules evaluate.",
		"properties": map[string]any{
			"level":   map[string]any{"type": "string", "enum": []any{"privileged", "baseline", "restricted"}},
			"version": map[string]any{"type": "string", "pattern": "^(latest|v1\\.(0|[1-9][0-9]*))$"},
		},
		"additionalProperties": false,
	},
	rules.SettingsImagesKey: {
		"type":                 "object",
		"description":          "requireDigest: every image a node pulls (imagePullPolicy Always or IfNotPresent) is pinned by digest.",
		"properties":           map[string]any{"requireDigest": map[string]any{"type": "boolean"}},
		"additionalProperties": false,
	},
}}

// Policies builds every policy of the pack.
func Policies() []policyx.Policy {
	st := &shared{}
	known := func(name string) bool { return slices.Contains(rules.RuleNames(), name) }
	resourceRules := rules.ResourceRules()

	policies := []policyx.Policy{
		policyx.NewResourceValidationPolicy(ExceptionsPolicy, policyx.ResourceValidationPolicyArgs{
			Description:      "Exceptions in the policy pack config are well formed and each has a reason.",
			EnforcementLevel: policyx.EnforcementLevelMandatory,
			ConfigSchema:     exceptionsSchema,
			ValidateResource: func(_ context.Context, args policyx.ResourceValidationArgs) error {
				ex := rules.ParseExceptions(args.Config, known)
				st.set(ex)
				if args.Resource.Type == stackType {
					for _, p := range ex.Problems {
						args.Manager.ReportViolation(p, "")
					}
				}
				return nil
			},
		}),
		policyx.NewResourceValidationPolicy(SettingsPolicy, policyx.ResourceValidationPolicyArgs{
			Description:      "The pack settings in the policy pack config (Pod Security level and version, image pinning) are valid.",
			EnforcementLevel: policyx.EnforcementLevelMandatory,
			ConfigSchema:     settingsSchema,
			ValidateResource: func(_ context.Context, args policyx.ResourceValidationArgs) error {
				settings, problems := rules.ParseSettings(args.Config)
				st.setSettings(settings)
				if args.Resource.Type == stackType {
					for _, p := range problems {
						args.Manager.ReportViolation(p, "")
					}
				}
				return nil
			},
		}),
	}
	for _, rule := range resourceRules {
		policies = append(policies, policyx.NewResourceValidationPolicy(rule.Name, policyx.ResourceValidationPolicyArgs{
			Description:      rule.Description,
			EnforcementLevel: level(rule.Level),
			ValidateResource: func(_ context.Context, args policyx.ResourceValidationArgs) error {
				r := Resource(args.Resource)
				for _, f := range st.get().Filter(r, rule.Check(r, st.getSettings())) {
					if !f.Unknown {
						args.Manager.ReportViolation(f.Message(), "")
					}
				}
				return nil
			},
		}))
	}
	policies = append(policies, policyx.NewResourceValidationPolicy(UnknownsPolicy, policyx.ResourceValidationPolicyArgs{
		Description:      "Fields that are unknown during preview and so were not checked yet (`pulumi up` checks them).",
		EnforcementLevel: policyx.EnforcementLevelAdvisory,
		ValidateResource: func(_ context.Context, args policyx.ResourceValidationArgs) error {
			r := Resource(args.Resource)
			for _, rule := range resourceRules {
				for _, f := range st.get().Filter(r, rule.Check(r, st.getSettings())) {
					if f.Unknown {
						args.Manager.ReportViolation(f.Rule+": "+f.Message(), "")
					}
				}
			}
			return nil
		},
	}))

	stackRules := rules.StackRules()
	stackFindings := func(args policyx.StackValidationArgs, rule rules.StackRule) []rules.Finding {
		rs := make([]rules.Resource, 0, len(args.Resources))
		byURN := map[string]rules.Resource{}
		for _, ar := range args.Resources {
			r := Resource(ar)
			rs = append(rs, r)
			byURN[r.URN] = r
		}
		var out []rules.Finding
		for _, f := range rule.Check(rs) {
			if _, ok := st.get().Allows(f.Rule, byURN[f.URN]); !ok {
				out = append(out, f)
			}
		}
		return out
	}
	for _, rule := range stackRules {
		policies = append(policies, policyx.NewStackValidationPolicy(rule.Name, policyx.StackValidationPolicyArgs{
			Description:      rule.Description,
			EnforcementLevel: level(rule.Level),
			ValidateStack: func(_ context.Context, args policyx.StackValidationArgs) error {
				for _, f := range stackFindings(args, rule) {
					if !f.Unknown {
						args.Manager.ReportViolation(f.Message(), f.URN)
					}
				}
				return nil
			},
		}))
	}
	policies = append(policies, policyx.NewStackValidationPolicy(StackUnknownsPolicy, policyx.StackValidationPolicyArgs{
		Description:      "Stack-wide checks that depend on values unknown during preview (`pulumi up` checks them).",
		EnforcementLevel: policyx.EnforcementLevelAdvisory,
		ValidateStack: func(_ context.Context, args policyx.StackValidationArgs) error {
			for _, rule := range stackRules {
				for _, f := range stackFindings(args, rule) {
					if f.Unknown {
						args.Manager.ReportViolation(f.Rule+": "+f.Message(), f.URN)
					}
				}
			}
			return nil
		},
	}))
	return policies
}

// New builds the policy pack.
func New() (policyx.PolicyPack, error) {
	return policyx.NewPolicyPack(Name, Version, policyx.EnforcementLevelMandatory, Policies())
}

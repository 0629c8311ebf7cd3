package rules

// Report is what the whole pack finds in a set of resources, without the engine.
type Report struct {
	Mandatory []Finding // these fail a preview
	Advisory  []Finding // these are printed as warnings
	Unknown   []Finding // fields a preview could not check yet
}

// EvaluateStack runs every resource rule on each resource and every stack rule on the set,
// applying the exceptions, as `pulumi preview --policy-pack policy` does. It lets a program's
// mock run (pulumi.WithMocks) check what it declares against the pack: convert the recorded
// inputs with resource.FromResourcePropertyMap.
func EvaluateStack(rs []Resource, ex Exceptions) Report {
	return EvaluateStackWith(rs, ex, Settings{})
}

// EvaluateStackWith is EvaluateStack with the pack settings of a stack's pack config.
func EvaluateStackWith(rs []Resource, ex Exceptions, s Settings) Report {
	var rep Report
	add := func(level Level, fs []Finding) {
		for _, f := range fs {
			switch {
			case f.Unknown:
				rep.Unknown = append(rep.Unknown, f)
			case level == Advisory:
				rep.Advisory = append(rep.Advisory, f)
			default:
				rep.Mandatory = append(rep.Mandatory, f)
			}
		}
	}
	byURN := map[string]Resource{}
	for _, r := range rs {
		byURN[r.URN] = r
		for _, rule := range ResourceRules() {
			add(rule.Level, ex.Filter(r, rule.Check(r, s)))
		}
	}
	for _, rule := range StackRules() {
		var kept []Finding
		for _, f := range rule.Check(rs) {
			if _, ok := ex.Allows(f.Rule, byURN[f.URN]); !ok {
				kept = append(kept, f)
			}
		}
		add(rule.Level, kept)
	}
	return rep
}

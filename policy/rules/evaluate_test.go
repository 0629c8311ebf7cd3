package rules

import "testing"

func TestEvaluateStack(t *testing.T) {
	ns := namespace("apps", "apps")
	ns.Props = MapFromGo(map[string]any{"metadata": map[string]any{"name": "apps",
		"labels": map[string]any{enforceLabel: "restricted"}}})
	deny := netpol("deny", "apps", denyAll())
	spec := goodPodSpec()
	set(spec, "containers.0.resources.limits.cpu", nil)
	set(spec, "containers.0.image", Unknown())
	app := res(tDeployment, wrap(tDeployment, spec))

	rep := EvaluateStack([]Resource{ns, deny, app}, Exceptions{})
	if len(rep.Mandatory) != 0 || len(rep.Advisory) != 1 || rep.Advisory[0].Rule != "pod-cpu-limit" || len(rep.Unknown) != 1 {
		t.Fatalf("report = %+v", rep)
	}

	rep = EvaluateStack([]Resource{ns, app}, Exceptions{})
	if len(rep.Mandatory) != 1 || rep.Mandatory[0].Rule != "namespace-default-deny" {
		t.Fatalf("without the deny policy: %+v", rep.Mandatory)
	}
	ex := ParseExceptions(map[string]any{"allow": []any{map[string]any{"rules": []any{"namespace-default-deny"}, "namespace": "apps", "reason": "r"}}}, known)
	if rep = EvaluateStack([]Resource{ns, app}, ex); len(rep.Mandatory) != 0 {
		t.Fatalf("namespace exception not applied to the stack rule: %+v", rep.Mandatory)
	}
}

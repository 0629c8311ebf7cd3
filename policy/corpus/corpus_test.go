package corpus

import (
	"encoding/json"
	"testing"
)

func TestCorpusShape(t *testing.T) {
	specs := Generate()
	want := 0
	for _, sec := range sections() {
		n := len(sec.mutations)
		want += len(sec.valid) + n + n*(n-1)/2
	}
	if len(specs) != want {
		t.Fatalf("corpus has %d specs, want %d", len(specs), want)
	}
	names := map[string]bool{}
	perSection := map[string]int{}
	for _, s := range specs {
		if names[s.Name] || len(s.Name) > 63 {
			t.Errorf("bad or duplicate name %q", s.Name)
		}
		names[s.Name] = true
		perSection[s.Section]++
		if _, err := json.Marshal(s.Pod); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	for _, sec := range []string{"linux", "userns", "windows"} {
		if perSection[sec] == 0 {
			t.Errorf("no specs in section %s", sec)
		}
	}
}

// The pack's half of the agreement: every valid variation passes every mandatory rule and every
// mutation, alone or paired, is reported by a Pod Security rule. The kube-apiserver's half runs in
// the root module's e2e tests.
func TestPackOnCorpus(t *testing.T) {
	for _, s := range Generate() {
		if fs := Evaluate(s); len(s.Mutations) == 0 && len(fs) != 0 {
			t.Errorf("%s: valid spec reported: %s", s.Name, fs[0].Message())
		}
		if fs := EvaluatePodSecurity(s); len(s.Mutations) > 0 && len(fs) == 0 {
			t.Errorf("%s (%v): not reported", s.Name, s.Mutations)
		}
	}
}

func TestGenerateReturnsFreshSpecs(t *testing.T) {
	a, b := Generate(), Generate()
	a[0].Pod["hostNetwork"] = true
	if _, ok := b[0].Pod["hostNetwork"]; ok {
		t.Fatal("specs share state")
	}
}

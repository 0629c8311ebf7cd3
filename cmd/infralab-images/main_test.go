package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "infralab-images build --out DIR"},
		{[]string{"build"}, "build: --out is required"},
		{[]string{"push"}, `unknown command "push"`},
		{[]string{"build", "--out", t.TempDir(), "--repo", t.TempDir(), "mysql"}, "unknown image(s) mysql; known: pause, postgres"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestList(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"list"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(out.String()); strings.Join(got, " ") != "pause postgres postgres-exporter prometheus coredns node-exporter kube-state-metrics alertmanager healthcare-api" {
		t.Fatalf("list = %q", got)
	}
}

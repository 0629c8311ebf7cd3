package stacks

import (
	"fmt"
	"strings"
	"testing"
)

// TestPackageRepositoryFieldPaths: a bad kubernetes.packageRepository is reported per field.
func TestPackageRepositoryFieldPaths(t *testing.T) {
	c := &errs{}
	validatePackageRepository(&PackageRepository{URL: "10.77.0.1:8080", KeyFingerprint: "9dc8"}, c)
	got := fmt.Sprint(c.err())
	for _, want := range []string{"kubernetes.packageRepository.url", "kubernetes.packageRepository.keyFingerprint"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in:\n%s", want, got)
		}
	}
	ok := &errs{}
	validatePackageRepository(&PackageRepository{URL: "http://10.77.0.1:8080", KeyFingerprint: "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"}, ok)
	validatePackageRepository(nil, ok)
	if err := ok.err(); err != nil {
		t.Errorf("valid/unset refused: %v", err)
	}
}

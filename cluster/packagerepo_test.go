package cluster

import (
	"strings"
	"testing"
)

// TestPackageRepositoryEnv: unset leaves prepare-node's environment exactly as before (no new
// keys, so an existing stack sees no diff); set adds the mirror and its pinned fingerprint.
func TestPackageRepositoryEnv(t *testing.T) {
	var none *PackageRepository
	if env := none.env(map[string]string{"A": "1"}); len(env) != 1 {
		t.Errorf("unset repository changed the env: %v", env)
	}
	r := &PackageRepository{URL: "http://10.77.0.1:8080/", KeyFingerprint: strings.Repeat("AB", 20)}
	env := r.env(map[string]string{})
	if env["PACKAGE_REPOSITORY_URL"] != "http://10.77.0.1:8080" || env["PACKAGE_REPOSITORY_KEY_FINGERPRINT"] != r.KeyFingerprint {
		t.Errorf("env %v", env)
	}
	if msg := r.check(); msg != "" {
		t.Errorf("valid repository refused: %s", msg)
	}
	bad := &PackageRepository{URL: "ftp://x", KeyFingerprint: "abc"}
	if msg := bad.check(); !strings.Contains(msg, "url") || !strings.Contains(msg, "keyFingerprint") {
		t.Errorf("bad repository: %q", msg)
	}
}

// The upgrade phases switch apt to the new minor's repository: with a mirror configured they must
// use the same mirror prepare-node did, or an upgrade on a restricted network reaches for
// pkgs.k8s.io and fails.
func TestPackageRepositoryReachesTheUpgradePhases(t *testing.T) {
	a := testArgs()
	a.PackageRepository = &PackageRepository{URL: "http://10.77.0.1:8080", KeyFingerprint: strings.Repeat("AB", 20)}
	r := run(t, a, Scripts())
	names := []string{"lab-prepare-node-cp-1", "lab-upgrade-control-plane"}
	for _, w := range a.Workers {
		names = append(names, "lab-upgrade-node-"+w.Name)
	}
	for _, n := range names {
		create := r.m.get(t, n).args.Inputs["create"].StringValue()
		if !strings.Contains(create, "PACKAGE_REPOSITORY_URL="+shellQuote("http://10.77.0.1:8080")) ||
			!strings.Contains(create, "PACKAGE_REPOSITORY_KEY_FINGERPRINT=") {
			t.Errorf("%s does not get the mirror", n)
		}
	}
}

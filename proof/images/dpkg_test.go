package images

import "testing"

func TestImageTagFromDebianVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"15.18-0+deb12u1", "15.18-deb12u1"},
		{"2.42.0+ds-5+deb12u1", "2.42.0-deb12u1"},
		{"0.11.1-3+b5", "0.11.1-deb12"},
		{"1:1.35.0-4+deb12u1+b1", "1.35.0-deb12u1"},
	} {
		if got := imageTag(tc.in, "12"); got != tc.want {
			t.Errorf("imageTag(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseLdd(t *testing.T) {
	out := "\tlinux-vdso.so.1 (0x00007ffd)\n" +
		"\tlibzstd.so.1 => /lib/x86_64-linux-gnu/libzstd.so.1 (0x00007f)\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n"
	deps, err := parseLdd("x", out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/lib/x86_64-linux-gnu/libzstd.so.1", "/lib64/ld-linux-x86-64.so.2"}
	if len(deps) != 2 || deps[0] != want[0] || deps[1] != want[1] {
		t.Fatalf("deps = %q, want %q", deps, want)
	}
	if _, err := parseLdd("x", "\tlibfoo.so.1 => not found\n"); err == nil {
		t.Fatal("a missing library must be an error")
	}
}

func TestUnknownImageNamesTheKnownOnes(t *testing.T) {
	_, err := selectSpecs([]string{"pause", "mysql"})
	if err == nil || err.Error() != "unknown image(s) mysql; known: pause, postgres, postgres-exporter, prometheus, coredns, node-exporter, kube-state-metrics, alertmanager, healthcare-api, cnpg-operator, cnpg-postgres, pgbouncer, calico/node, calico/cni, calico/kube-controllers, calico/typha, tigera/operator" {
		t.Fatalf("err = %v", err)
	}
}

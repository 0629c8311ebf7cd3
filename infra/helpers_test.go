package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"sigs.k8s.io/yaml"
)

func parseCloudConfig(t *testing.T, data string) map[string]any {
	t.Helper()
	if !strings.HasPrefix(data, "#cloud-config\n") {
		t.Fatalf("user-data must start with #cloud-config, got %.40q", data)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		t.Fatalf("user-data is not YAML: %v", err)
	}
	return cfg
}

// passwordKeys finds any key cloud-init would use to set a password, at any depth.
func passwordKeys(v any) []string {
	var found []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch k {
			case "password", "passwd", "hashed_passwd", "plain_text_passwd", "chpasswd":
				found = append(found, k)
			}
			found = append(found, passwordKeys(e)...)
		}
	case []any:
		for _, e := range x {
			found = append(found, passwordKeys(e)...)
		}
	}
	return found
}

func isSecretAt(pm resource.PropertyMap, path ...string) bool {
	v := resource.NewProperty(pm)
	for _, k := range path {
		if v.IsSecret() {
			return true
		}
		if !v.IsObject() {
			return false
		}
		v = v.ObjectValue()[resource.PropertyKey(k)]
	}
	return v.IsSecret()
}

// plaintextLeaks lists the paths where a string holding one of needles sits outside any secret.
func plaintextLeaks(v resource.PropertyValue, needles []string) []string {
	var out []string
	var walk func(v resource.PropertyValue, path string)
	walk = func(v resource.PropertyValue, path string) {
		switch {
		case v.IsSecret():
			return
		case v.IsString():
			for _, n := range needles {
				if strings.Contains(v.StringValue(), n) {
					out = append(out, path)
				}
			}
		case v.IsObject():
			for k, e := range v.ObjectValue() {
				walk(e, path+"."+string(k))
			}
		case v.IsArray():
			for i, e := range v.ArrayValue() {
				walk(e, path+"["+string(rune('0'+i%10))+"]")
			}
		case v.IsOutput():
			if v.OutputValue().Secret {
				return
			}
			walk(v.OutputValue().Element, path)
		}
	}
	walk(v, "")
	return out
}

func scriptSHA256() string {
	sum := sha256.Sum256([]byte(hostNATScript))
	return hex.EncodeToString(sum[:])
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// ReadStackFile reads a Pulumi.<stack>.yaml the way the Pulumi CLI hands it to a program: keys
// without the "infralab:" namespace, objects and lists as JSON strings. Encrypted secrets
// (`secure:` values, which `pulumi config set --secret` writes into your copy of the file) are
// left out: only the CLI with the stack's passphrase can decrypt them, so tests and benchmarks
// that run the program without the CLI supply their own.
func ReadStackFile(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Config map[string]any `json:"config"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]string{}
	for k, v := range doc.Config {
		key, ok := strings.CutPrefix(k, Namespace+":")
		if !ok {
			return nil, fmt.Errorf("%s: key %q is outside the %s namespace", path, k, Namespace)
		}
		if m, isMap := v.(map[string]any); isMap && m["secure"] != nil {
			continue
		}
		if s, isString := v.(string); isString {
			out[key] = s
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, k, err)
		}
		out[key] = string(b)
	}
	return out, nil
}

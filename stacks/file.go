package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// ReadStackFile reads a Pulumi.<stack>.yaml the way the Pulumi CLI hands it to a program: keys
// without the "infralab:" namespace, objects and lists as JSON strings. It refuses a file holding
// an encrypted secret: the shipped stack files hold none, secrets live in the user's own stack.
// Tests and benchmarks use it to run the program without the CLI.
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
			return nil, fmt.Errorf("%s: %s holds an encrypted secret; keep secrets in your own stack, not in this file", path, k)
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

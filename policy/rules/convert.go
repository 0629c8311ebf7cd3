package rules

import (
	"fmt"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/property"
)

// FromGo converts plain Go values (as decoded from JSON or YAML, or written in a test) into a
// property value. A property.Value inside is kept as is, which is how tests mark secrets and
// unknowns.
func FromGo(v any) property.Value {
	switch v := v.(type) {
	case property.Value:
		return v
	case nil:
		return property.New(property.Null)
	case string:
		return property.New(v)
	case bool:
		return property.New(v)
	case int:
		return property.New(float64(v))
	case int32:
		return property.New(float64(v))
	case int64:
		return property.New(float64(v))
	case float64:
		return property.New(v)
	case []any:
		out := make([]property.Value, len(v))
		for i, e := range v {
			out[i] = FromGo(e)
		}
		return property.New(out)
	case []string:
		out := make([]property.Value, len(v))
		for i, e := range v {
			out[i] = property.New(e)
		}
		return property.New(out)
	case map[string]any:
		return property.New(MapFromGo(v))
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m := map[string]property.Value{}
		for _, k := range keys {
			m[k] = property.New(v[k])
		}
		return property.New(m)
	default:
		panic(fmt.Sprintf("FromGo: unsupported type %T", v))
	}
}

// MapFromGo converts a Go map into a property map (see FromGo).
func MapFromGo(m map[string]any) property.Map {
	out := make(map[string]property.Value, len(m))
	for k, v := range m {
		out[k] = FromGo(v)
	}
	return property.NewMap(out)
}

// Secret marks a value as a Pulumi secret.
func Secret(v any) property.Value { return FromGo(v).WithSecret(true) }

// Unknown is a value that is computed during preview.
func Unknown() property.Value { return property.New(property.Computed) }

package rules

import (
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/property"
)

// node is a value reached by a path, remembering what the path went through: a Pulumi secret
// anywhere above marks everything below it secret, and an unknown value anywhere above makes
// everything below it unknown.
type node struct {
	v       property.Value
	path    string
	secret  bool
	unknown bool
	missing bool
}

func root(m property.Map, path string) node {
	return node{v: property.New(m), path: path}
}

func (n node) join(key string) string {
	if n.path == "" {
		return key
	}
	return n.path + "." + key
}

// get steps into a map key.
func (n node) get(key string) node {
	next := node{path: n.join(key), secret: n.secret || n.v.Secret()}
	switch {
	case n.unknown || n.v.IsComputed():
		next.unknown = true
	case n.missing || !n.v.IsMap():
		next.missing = true
	default:
		v, ok := n.v.AsMap().GetOk(key)
		if !ok || v.IsNull() {
			next.missing = true
		} else {
			next.v = v
			next.unknown = v.IsComputed()
			next.secret = next.secret || v.Secret()
		}
	}
	return next
}

// at steps through several map keys.
func (n node) at(keys ...string) node {
	for _, k := range keys {
		n = n.get(k)
	}
	return n
}

// items lists an array's elements; a missing value has none. An unknown array reports ok=false.
func (n node) items() (out []node, ok bool) {
	if n.unknown {
		return nil, false
	}
	if n.missing || !n.v.IsArray() {
		return nil, true
	}
	secret := n.secret || n.v.Secret()
	for i, v := range n.v.AsArray().AsSlice() {
		out = append(out, node{v: v, path: n.path + "[" + strconv.Itoa(i) + "]",
			secret: secret || v.Secret(), unknown: v.IsComputed(), missing: v.IsNull()})
	}
	return out, true
}

// entries lists a map's keys and values, sorted by key. An unknown map reports ok=false.
func (n node) entries() (out []entry, ok bool) {
	if n.unknown {
		return nil, false
	}
	if n.missing || !n.v.IsMap() {
		return nil, true
	}
	for k := range n.v.AsMap().AllStable {
		out = append(out, entry{key: k, node: n.get(k)})
	}
	return out, true
}

type entry struct {
	key string
	node
}

// isSecret reports whether the value is protected by a Pulumi secret (itself or an ancestor).
func (n node) isSecret() bool { return n.secret || (!n.missing && n.v.Secret()) }

func (n node) present() bool { return !n.missing && !n.unknown }

func (n node) str() (string, bool) {
	if !n.present() || !n.v.IsString() {
		return "", false
	}
	return n.v.AsString(), true
}

func (n node) boolean() (b, ok bool) {
	if !n.present() || !n.v.IsBool() {
		return false, false
	}
	return n.v.AsBool(), true
}

func (n node) number() (float64, bool) {
	if !n.present() || !n.v.IsNumber() {
		return 0, false
	}
	return n.v.AsNumber(), true
}

// walkStrings calls fn for every string leaf under n, and unknownFn for every unknown value.
func walkStrings(n node, fn func(node, string), unknownFn func(node)) {
	switch {
	case n.unknown:
		unknownFn(n)
	case n.missing:
	case n.v.IsString():
		fn(n, n.v.AsString())
	case n.v.IsMap():
		es, _ := n.entries()
		for _, e := range es {
			walkStrings(e.node, fn, unknownFn)
		}
	case n.v.IsArray():
		is, _ := n.items()
		for _, it := range is {
			walkStrings(it, fn, unknownFn)
		}
	}
}

// Package rules holds infralab's policy rules as plain functions over Pulumi property maps.
//
// Nothing here talks to the engine: the policyx wiring in package pack feeds resources in and
// reports what comes out, so every rule is tested with ordinary table tests. A rule returns
// Findings; a Finding is either a violation or, when a preview leaves a value unknown
// (computed), a note that the field could not be checked yet. Unknown values never make a
// rule fail or crash: they are reported by the advisory policy preview-unknown-values and
// checked for real by `pulumi up`, whose inputs are resolved before a resource is registered.
package rules

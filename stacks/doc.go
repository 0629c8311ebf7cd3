// Package stacks holds infralab's typed stack configuration: the Pulumi.<stack>.yaml files in this
// folder and the code that loads and validates them.
//
// Load reads every key with the non-panicking config readers, decodes structured values strictly
// (an unknown key is an error, so a typo never silently falls back to a default), and Validate
// checks the whole configuration at once. Every problem is reported together, each with the field
// path the user wrote and a hint saying how to fix it, before main.go declares a single resource.
package stacks

// Package declared runs what the lab program declares, for real, on the box's machines.
//
// The command provider's plugin cannot be built here, so nothing would ever run the cluster
// layer's remote.Commands. Engine is a Pulumi mock monitor (pulumi.WithMocks) that the root
// package evaluates the lab program against: it records every resource (Plan: each command's
// connection, scripts, environment, triggers and dependencies; each VM's cloud-init user-data)
// and, given a Runner, runs each selected command's create script over real SSH (SSH) at the
// moment the program registers it, returning its real stdout as the resource's output.
//
// Why this gives the engine's order: the Go SDK sends a resource's registration only once every
// input it reads has resolved and every dependsOn resource's URN is known (sdk/v3 go/pulumi
// context.go prepareResourceInputs and rpc.go addDependency await them), and under the mock
// monitor a URN is known only when NewResource has returned (go/pulumi/mocks.go RegisterResource),
// here: when the command has finished. So a command starts exactly when the engine would let it
// (its dependsOn done, the outputs it reads known), independent ones start together, and a failed
// one never resolves, so nothing that depends on it is ever registered. An earlier command's
// stdout reaches a later one through the program's own Apply functions (unsealing, rendering the
// join config), exactly as Pulumi's outputs do.
//
// What this is not: it exercises the declared scripts, their inputs and their order for real; it
// does not run pulumi-command's lifecycle (diff, update, delete, replace). A second run runs every
// create again, which is how the box proves each script is idempotent.
package declared

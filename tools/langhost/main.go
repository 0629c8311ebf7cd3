// Command pulumi-language-go is infralab's own small Go language host for the Pulumi CLI.
//
// A normal Pulumi install never needs it: the CLI ships Pulumi's official pulumi-language-go. This
// machine cannot download that plugin (its module is refused by the Go proxy), so `make tools` builds
// this one instead and links it next to the pulumi binary. It serves pulumirpc.LanguageRuntime with
// just what `pulumi preview/up/destroy` of a `runtime: go` project and a Go policy pack need:
// Run builds the program with `go build` and runs it with the PULUMI_* variables the Go SDK reads;
// RunPlugin builds and runs a Go policy pack, streaming its output back to the engine.
//
// The CLI starts it with optional flags and the engine address as the last argument, and reads the
// gRPC port it prints on stdout. `pulumi-language-go prebuild DIR...` (prebuild.go) fills its build
// cache ahead of the CLI.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// version is reported by GetPluginInfo; the engine only logs it.
const version = "3.274.1"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "prebuild" {
		if err := prebuild(context.Background(), newBuilder(), os.Args[2:], os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "pulumi-language-go: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := serve(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-go: %v\n", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	host := newHost(engineAddress(args))
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("serving the language runtime: %w", err)
	}
	// The engine reads this line to learn where to connect.
	fmt.Println(handle.Port)
	return <-handle.Done
}

// engineAddress returns the last positional argument. The CLI may put flags such as --logtostderr,
// -v=N and --tracing ENDPOINT before it; this host does not use them.
func engineAddress(args []string) string {
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			positional = append(positional, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && (name == "tracing" || name == "root") {
			i++ // these flags take a separate value
		}
	}
	if len(positional) == 0 {
		return ""
	}
	return positional[len(positional)-1]
}

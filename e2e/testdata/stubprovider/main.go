// Command stubprovider is a STAND-IN resource provider plugin for the policy e2e test
// (e2e/policy_infra_preview_test.go). It is not the pulumi-command or proxmoxve provider: those
// plugins cannot be built or downloaded on the build machine, and the engine will not run a
// program whose resources have no provider plugin.
//
// It serves the pulumirpc ResourceProvider gRPC interface the way the SDK's provider.Main does
// (listen on a free port, print it, health-check the engine, stop on SIGINT), written out here on
// rpcutil because provider.Main's package needs go.opentelemetry.io/otel/bridge/opentracing,
// which is not in the project's go.sum. It serves just enough of the protocol for
// `pulumi preview`:
//
//   - GetPluginInfo reports the version the real SDK asks for;
//   - CheckConfig and Check return the inputs exactly as the engine sent them (the same protobuf
//     struct, so every secret marker the engine passed is still there);
//   - DiffConfig and Diff report no changes;
//   - Configure accepts secrets and resource references and does NOT support preview, so the
//     engine never calls Create during a preview (it uses the checked inputs as the state).
//
// Create, Read, Update, Delete, Invoke, Call and Construct fail with codes.Unimplemented: the stub
// can never pretend to have deployed anything. It talks to no API and opens no SSH connection.
//
// One binary serves every name: it takes its name from its file name (pulumi-resource-<name>),
// so the test installs it as pulumi-resource-command and pulumi-resource-proxmoxve in a temp
// folder that the project's Pulumi.yaml names under plugins.providers. It must never be
// installed into a PULUMI_HOME.
//
// INFRALAB_STUB_PROVIDER_STRIP_SECRETS=1 makes Check drop every secret marker from the inputs it
// returns (a negative control: the test shows the pack then reports the plaintext value, so what
// the pack judges is the secret-ness the provider's Check hands back).
//
// When INFRALAB_STUB_PROVIDER_LOG names a file, every CheckConfig and Check appends one line
// "<name> <method> <type> <urn> secret=<paths>" listing which input paths arrived marked secret
// (never any value), so the test can show what the engine handed the provider.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// versions are the plugin versions the SDKs in go.mod ask for.
var versions = map[string]string{
	"command":   "1.1.0",  // github.com/pulumi/pulumi-command/sdk v1.1.0
	"proxmoxve": "7.13.0", // github.com/muhlba91/pulumi-proxmoxve/sdk/v7 v7.13.0
}

// name is the provider name this process serves: pulumi-resource-<name> from argv[0], else
// INFRALAB_STUB_PROVIDER_NAME.
func name() string {
	base := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	if n, ok := strings.CutPrefix(base, "pulumi-resource-"); ok && n != "" {
		return n
	}
	return os.Getenv("INFRALAB_STUB_PROVIDER_NAME")
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "stubprovider:", err)
		os.Exit(1)
	}
}

// run serves the provider until the engine sends SIGINT or stops answering health checks.
func run() error {
	n := name()
	if n == "" {
		return fmt.Errorf("run it as pulumi-resource-<name> or set INFRALAB_STUB_PROVIDER_NAME")
	}
	// The engine starts a provider with its own address as the one argument (flags such as
	// --tracing may precede it).
	var engine string
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-") {
			engine = a
		}
	}
	if engine == "" {
		return fmt.Errorf("missing the engine address argument")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if err := rpcutil.Healthcheck(ctx, engine, 5*time.Minute, cancel); err != nil {
		return fmt.Errorf("health check of the engine at %s: %w", engine, err)
	}
	stop := make(chan bool)
	go func() { <-ctx.Done(); close(stop) }()
	srv := &stub{name: n, version: versions[n], log: os.Getenv("INFRALAB_STUB_PROVIDER_LOG"),
		stripSecrets: os.Getenv("INFRALAB_STUB_PROVIDER_STRIP_SECRETS") == "1"}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(s, srv)
			return nil
		},
	})
	if err != nil {
		return err
	}
	// The provider protocol: the first line on stdout is the port.
	fmt.Printf("%d\n", handle.Port)
	return <-handle.Done
}

type stub struct {
	pulumirpc.UnimplementedResourceProviderServer
	name, version string
	log           string
	stripSecrets  bool
	mu            sync.Mutex
}

func (s *stub) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: s.version}, nil
}

func (s *stub) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	s.record("CheckConfig", req)
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *stub) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *stub) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, AcceptResources: true, SupportsPreview: false}, nil
}

func (s *stub) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	s.record("Check", req)
	if !s.stripSecrets {
		return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
	}
	opts := plugin.MarshalOptions{KeepUnknowns: true, KeepResources: true}
	props, err := plugin.UnmarshalProperties(req.GetNews(), opts) // KeepSecrets false: unwraps them
	if err != nil {
		return nil, err
	}
	inputs, err := plugin.MarshalProperties(props, opts)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs}, nil
}

func (s *stub) Diff(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *stub) refuse(op string) error {
	return status.Errorf(codes.Unimplemented,
		"%s is the infralab test stand-in for the %s provider, not the real plugin: it cannot %s anything",
		"pulumi-resource-"+s.name, s.name, op)
}

func (s *stub) Create(context.Context, *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	return nil, s.refuse("create")
}

func (s *stub) Read(context.Context, *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return nil, s.refuse("read")
}

func (s *stub) Update(context.Context, *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	return nil, s.refuse("update")
}

func (s *stub) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return nil, s.refuse("delete")
}

func (s *stub) Invoke(context.Context, *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return nil, s.refuse("invoke")
}

func (s *stub) Call(context.Context, *pulumirpc.CallRequest) (*pulumirpc.CallResponse, error) {
	return nil, s.refuse("call")
}

func (s *stub) Construct(context.Context, *pulumirpc.ConstructRequest) (*pulumirpc.ConstructResponse, error) {
	return nil, s.refuse("construct")
}

// record appends the request's secret input paths to the log file, if there is one.
func (s *stub) record(method string, req *pulumirpc.CheckRequest) {
	if s.log == "" {
		return
	}
	paths, err := secretPaths(req.GetNews())
	line := fmt.Sprintf("%s %s %s %s secret=%s", s.name, method, req.GetType(), req.GetUrn(), strings.Join(paths, ","))
	if err != nil {
		line += " error=" + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stubprovider:", err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// secretPaths lists the dotted paths of the values marked secret (the outermost one of each).
func secretPaths(news *structpb.Struct) ([]string, error) {
	props, err := plugin.UnmarshalProperties(news, plugin.MarshalOptions{
		KeepUnknowns: true, KeepSecrets: true, KeepResources: true, KeepOutputValues: true,
	})
	if err != nil {
		return nil, err
	}
	var out []string
	var walk func(path string, v resource.PropertyValue)
	walk = func(path string, v resource.PropertyValue) {
		switch {
		case v.IsSecret():
			out = append(out, path)
		case v.IsOutput() && v.OutputValue().Secret:
			out = append(out, path)
		case v.IsObject():
			for k, e := range v.ObjectValue() {
				walk(join(path, string(k)), e)
			}
		case v.IsArray():
			for i, e := range v.ArrayValue() {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	for k, v := range props {
		walk(string(k), v)
	}
	sort.Strings(out)
	return out, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

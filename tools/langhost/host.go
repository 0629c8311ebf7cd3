package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// exitLoggedError is the Go SDK's exit status for "the error was already reported to the engine".
const exitLoggedError = 32

// host implements the parts of pulumirpc.LanguageRuntime the CLI calls for Go programs and
// policy packs; everything else answers Unimplemented through the embedded type.
type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	mu     sync.Mutex
	engine string // set from the command line or by Handshake
	builds *builder
}

func newHost(engine string) *host {
	return &host{engine: engine, builds: newBuilder()}
}

func (h *host) engineAddr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engine
}

func (h *host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.engine = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// GetRequiredPlugins reports the program's resource plugins from its go.mod (packages.go), as the
// official Go host does. The engine installs the missing ones before an update, best effort: with
// PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true it downloads nothing and only loads a plugin
// when a resource needs it (pkg/engine/plugins.go, ensurePluginsAreInstalled), which is how the
// local stack runs with only the kubernetes plugin installed.
func (h *host) GetRequiredPlugins(ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" {
		dir = req.GetPwd()
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: h.plugins(ctx, dir)}, nil
}

// GetRequiredPackages is what the engine asks (it falls back to GetRequiredPlugins only for a host
// that lacks it): the same plugins, none of them parameterized.
func (h *host) GetRequiredPackages(ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	var pkgs []*pulumirpc.PackageDependency
	for _, p := range h.plugins(ctx, req.GetInfo().GetProgramDirectory()) {
		pkgs = append(pkgs, &pulumirpc.PackageDependency{Name: p.Name, Kind: p.Kind, Version: p.Version, Server: p.Server})
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: pkgs}, nil
}

// plugins never fails the operation, like the official host: a program whose modules cannot be
// listed fails its build with the real error a moment later.
func (h *host) plugins(ctx context.Context, dir string) []*pulumirpc.PluginDependency {
	if dir == "" {
		return nil
	}
	plugins, err := requiredPlugins(ctx, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-go: cannot list the program's plugins: %v\n", err)
		return nil
	}
	return plugins
}

// InstallDependencies does nothing: `go build` fetches modules itself when it builds the program.
func (h *host) InstallDependencies(*pulumirpc.InstallDependenciesRequest, pulumirpc.LanguageRuntime_InstallDependenciesServer) error {
	return nil
}

// Run builds the program and runs it against the engine's resource monitor.
func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	bin, cleanup, err := h.builds.program(ctx, req.GetInfo(), req.GetPwd())
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	defer cleanup()

	env, err := h.programEnv(req)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, req.GetArgs()...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(os.Environ(), env...)
	// The engine shows a plugin's stdout and stderr to the user.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	interruptOnCancel(cmd)

	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exit) && exit.ExitCode() == exitLoggedError:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exit):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited with code %d", exit.ExitCode())}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("running program: %v", err)}, nil
	}
}

// programEnv is the contract between a Go language host and the Go SDK (sdk/v3/go/pulumi/run.go).
func (h *host) programEnv(req *pulumirpc.RunRequest) ([]string, error) {
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secrets, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("encoding config secret keys: %w", err)
	}
	return []string{
		"PULUMI_MONITOR=" + req.GetMonitorAddress(),
		"PULUMI_ENGINE=" + h.engineAddr(),
		"PULUMI_PROJECT=" + req.GetProject(),
		"PULUMI_STACK=" + req.GetStack(),
		"PULUMI_ORGANIZATION=" + req.GetOrganization(),
		"PULUMI_ROOT_DIRECTORY=" + req.GetInfo().GetRootDirectory(),
		"PULUMI_CONFIG=" + string(config),
		"PULUMI_CONFIG_SECRET_KEYS=" + string(secrets),
		"PULUMI_DRY_RUN=" + strconv.FormatBool(req.GetDryRun()),
		"PULUMI_PARALLEL=" + strconv.Itoa(int(req.GetParallel())),
	}, nil
}

// interruptOnCancel lets a cancelled program (Ctrl-C in the CLI) shut down cleanly before it is killed.
func interruptOnCancel(cmd *exec.Cmd) {
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
}

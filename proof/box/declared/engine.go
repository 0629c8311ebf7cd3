package declared

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Runner runs one declared command's create script and returns its stdout as pulumi-command
// reports it (trailing newline trimmed).
type Runner interface {
	Run(ctx context.Context, c *Command) (stdout string, err error)
}

// Engine is the mock monitor the lab program is evaluated against (see the package doc).
type Engine struct {
	// Phases are the cluster layer's phase names, to read phase and node from a command's name.
	Phases []string
	// Runner runs the selected commands; nil only captures the plan.
	Runner Runner
	// Select picks the commands Runner runs; nil selects every command whose name starts with
	// "cluster-" (the cluster layer's; infra's commands run on the Proxmox host, which the box
	// does not have).
	Select func(*Command) bool
	// StandIn is the stdout of a command that is not run (capture only, or not selected), so the
	// phases after it can be declared; nil gives "".
	StandIn func(args pulumi.MockResourceArgs) string
	// Addresses maps a VM name to the address its guest agent reports; missing ones report the
	// address the program configured (ipConfigs[0]), as a VM that booted with it does.
	Addresses map[string]string
	// InstanceIDs maps a VM name to its SMBIOS UUID (the machine's identity: a re-created machine
	// has a new one); missing ones get a random one per Engine, as bpg generates on create
	// (proxmoxtf/resource/vm/vm.go, vmGetSMBIOS: uuid.New()).
	InstanceIDs map[string]string
	// Context bounds every command; nil is context.Background().
	Context context.Context

	mu      sync.Mutex
	plan    Plan
	uuids   map[string]string
	results []Result
}

// Result is one command's run.
type Result struct {
	Command    *Command
	Start, End time.Time
	Err        error
}

// Duration of the run.
func (r Result) Duration() time.Duration { return r.End.Sub(r.Start) }

// Plan is what the program declared so far.
func (e *Engine) Plan() *Plan {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.plan
	return &p
}

// Results are the commands run so far, in the order they finished.
func (e *Engine) Results() []Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Result(nil), e.results...)
}

// NewResource implements pulumi.MockResourceMonitor.
func (e *Engine) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	outs := args.Inputs.Copy()
	switch args.TypeToken {
	case "pulumi:pulumi:StackReference":
		// A first deployment: the stack has no previous outputs.
		outs["outputs"] = resource.NewObjectProperty(resource.PropertyMap{})
	case TypeVM:
		if err := e.vm(args, outs); err != nil {
			return "", nil, err
		}
	case TypeSnippet:
		e.snippet(args)
	case TypeK8sProvider:
		e.provider(args)
	case TypeCommand:
		stdout, err := e.command(args)
		if err != nil {
			return "", nil, err
		}
		outs["stdout"] = resource.NewProperty(stdout)
		outs["stderr"] = resource.NewProperty("")
	}
	return args.Name + "-id", outs, nil
}

// Call implements pulumi.MockResourceMonitor: function calls return their arguments.
func (e *Engine) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return args.Args, nil
}

// vm plays what bpg reads back after creating the VM: the guest agent's addresses (one list
// per interface, loopback first: proxmoxtf/resource/vm/network/network.go, ReadNetworkValues)
// and the SMBIOS UUID.
func (e *Engine) vm(args pulumi.MockResourceArgs, outs resource.PropertyMap) error {
	name, _ := str(args.Inputs, "name")
	addr := e.Addresses[name]
	if addr == "" {
		init, _ := object(args.Inputs, "initialization")
		if v, ok := init["ipConfigs"]; ok && v.IsArray() && len(v.ArrayValue()) > 0 && v.ArrayValue()[0].IsObject() {
			ipv4, _ := object(v.ArrayValue()[0].ObjectValue(), "ipv4")
			a, _ := str(ipv4, "address")
			addr, _, _ = strings.Cut(a, "/")
		}
	}
	if addr == "" {
		return fmt.Errorf("VM %s: no address configured and none given to the engine", name)
	}
	smbios := resource.PropertyMap{}
	if s, ok := object(args.Inputs, "smbios"); ok {
		smbios = s.Copy()
	}
	smbios["uuid"] = resource.NewProperty(e.instanceID(name))
	outs["smbios"] = resource.NewProperty(smbios)
	outs["ipv4Addresses"] = resource.NewProperty([]resource.PropertyValue{
		resource.NewProperty([]resource.PropertyValue{resource.NewProperty("127.0.0.1")}),
		resource.NewProperty([]resource.PropertyValue{resource.NewProperty(addr)}),
	})
	return nil
}

func (e *Engine) instanceID(name string) string {
	if id := e.InstanceIDs[name]; id != "" {
		return id
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.uuids == nil {
		e.uuids = map[string]string{}
	}
	if id, ok := e.uuids[name]; ok {
		return id
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	e.uuids[name] = id
	return id
}

func (e *Engine) snippet(args pulumi.MockResourceArgs) {
	raw, ok := object(args.Inputs, "sourceRaw")
	if !ok {
		return
	}
	s := Snippet{Resource: args.Name}
	s.FileName, _ = str(raw, "fileName")
	s.Content, _ = str(raw, "data")
	e.mu.Lock()
	e.plan.Snippets = append(e.plan.Snippets, s)
	e.mu.Unlock()
}

func (e *Engine) provider(args pulumi.MockResourceArgs) {
	k, _ := str(args.Inputs, "kubeconfig")
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.plan.Providers == nil {
		e.plan.Providers = map[string]Provider{}
	}
	e.plan.Providers[args.Name] = Provider{Kubeconfig: Secret{k}}
}

func (e *Engine) command(args pulumi.MockResourceArgs) (string, error) {
	c := captureCommand(args, e.Phases)
	e.mu.Lock()
	e.plan.Commands = append(e.plan.Commands, c)
	e.mu.Unlock()
	sel := e.Select
	if sel == nil {
		sel = func(c *Command) bool { return strings.HasPrefix(c.Name, "cluster-") }
	}
	if e.Runner == nil || !sel(c) {
		if e.StandIn == nil {
			return "", nil
		}
		return e.StandIn(args), nil
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	r := Result{Command: c, Start: time.Now()}
	stdout, err := e.Runner.Run(ctx, c)
	r.End, r.Err = time.Now(), err
	e.mu.Lock()
	e.results = append(e.results, r)
	e.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.Name, err)
	}
	return stdout, nil
}

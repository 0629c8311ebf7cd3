package declared

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Resource type tokens the engine looks at.
const (
	TypeCommand     = "command:remote:Command"
	TypeVM          = "proxmoxve:VM/virtualMachine:VirtualMachine"
	TypeSnippet     = "proxmoxve:Storage/file:File"
	TypeK8sProvider = "pulumi:providers:kubernetes"
)

// Plan is everything the lab program declared that the box needs: the commands and each VM's
// user-data. Secret values are kept in memory (the executor needs them) and never serialized:
// MarshalJSON of a Secret writes a marker.
type Plan struct {
	Commands  []*Command          `json:"commands"`
	Snippets  []Snippet           `json:"snippets"`
	Providers map[string]Provider `json:"kubernetesProviders,omitempty"`
}

// Secret is a value the program marked secret.
type Secret struct{ Value string }

// MarshalJSON never writes the value.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s.Value == "" {
		return []byte(`""`), nil
	}
	return []byte(`"[secret]"`), nil
}

// Connection is remote.Command's connection input, with pulumi-command's defaults applied
// (provider/pkg/provider/remote/connection.go: user root, port 22, 10 dial errors, 15 s per dial).
type Connection struct {
	Host           string      `json:"host"`
	Port           int         `json:"port"`
	User           string      `json:"user"`
	PrivateKey     Secret      `json:"privateKey"`
	HostKey        string      `json:"hostKey,omitempty"`
	DialErrorLimit int         `json:"dialErrorLimit"`
	PerDialTimeout int         `json:"perDialTimeout"`
	Proxy          *Connection `json:"proxy,omitempty"`
}

// Command is one declared remote.Command.
type Command struct {
	Name   string `json:"name"`
	URN    string `json:"urn"`
	Parent string `json:"parent,omitempty"`
	// Phase and Node come from the name (cluster-<phase>[-<node>]); Node is empty for a
	// cluster-wide command, which then runs on the host of its connection.
	Phase       string            `json:"phase,omitempty"`
	Node        string            `json:"node,omitempty"`
	Connection  Connection        `json:"connection"`
	Create      string            `json:"create"`
	Update      string            `json:"update,omitempty"`
	Delete      string            `json:"delete,omitempty"`
	Stdin       Secret            `json:"stdin"`
	Environment map[string]string `json:"environment,omitempty"`
	// Triggers as strings; secret ones are "[secret]".
	Triggers []string `json:"triggers,omitempty"`
	Logging  string   `json:"logging,omitempty"`
	// DependsOn are the names of every resource it waits for (dependsOn and the resources whose
	// outputs its inputs read), InputsFrom those per input.
	DependsOn  []string            `json:"dependsOn,omitempty"`
	InputsFrom map[string][]string `json:"inputsFrom,omitempty"`
	// Secrets are every secret string among its inputs (keys, stdin, secret triggers), for masking.
	secrets []string
}

// Snippet is a file the infra layer uploads to the Proxmox host's snippet storage: a VM's
// cloud-init user-data.
type Snippet struct {
	Resource string `json:"resource"`
	FileName string `json:"fileName"`
	Content  string `json:"content"`
}

// Provider is a kubernetes provider the program declared; the lab's one carries the kubeconfig
// the cluster layer built from the commands' outputs.
type Provider struct {
	Kubeconfig Secret `json:"kubeconfig"`
}

// unsecret strips secret wrappers, reporting whether there were any.
func unsecret(v resource.PropertyValue) (resource.PropertyValue, bool) {
	secret := false
	for v.IsSecret() {
		v, secret = v.SecretValue().Element, true
	}
	return v, secret
}

func str(m resource.PropertyMap, key string) (string, bool) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return "", false
	}
	v, secret := unsecret(v)
	if !v.IsString() {
		return "", secret
	}
	return v.StringValue(), secret
}

func num(m resource.PropertyMap, key string, def int) int {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return def
	}
	v, _ = unsecret(v)
	if !v.IsNumber() {
		return def
	}
	return int(v.NumberValue())
}

func object(m resource.PropertyMap, key string) (resource.PropertyMap, bool) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return nil, false
	}
	v, _ = unsecret(v)
	if !v.IsObject() {
		return nil, false
	}
	return v.ObjectValue(), true
}

func connection(m resource.PropertyMap, c *Command) Connection {
	out := Connection{Port: num(m, "port", 22), DialErrorLimit: num(m, "dialErrorLimit", 10), PerDialTimeout: num(m, "perDialTimeout", 15)}
	out.Host, _ = str(m, "host")
	out.HostKey, _ = str(m, "hostKey")
	if out.User, _ = str(m, "user"); out.User == "" {
		out.User = "root"
	}
	if k, _ := str(m, "privateKey"); k != "" {
		out.PrivateKey = Secret{k}
		c.secrets = append(c.secrets, k)
	}
	if p, ok := object(m, "proxy"); ok {
		proxy := connection(p, c)
		out.Proxy = &proxy
	}
	return out
}

// captureCommand reads a remote.Command registration.
func captureCommand(args pulumi.MockResourceArgs, phases []string) *Command {
	in := args.Inputs
	c := &Command{Name: args.Name, InputsFrom: map[string][]string{}, Environment: map[string]string{}}
	if rpc := args.RegisterRPC; rpc != nil {
		c.Parent = rpc.GetParent()
		for _, urn := range rpc.GetDependencies() {
			c.DependsOn = append(c.DependsOn, nameOf(urn))
		}
		for prop, deps := range rpc.GetPropertyDependencies() {
			for _, urn := range deps.GetUrns() {
				c.InputsFrom[prop] = append(c.InputsFrom[prop], nameOf(urn))
			}
			sort.Strings(c.InputsFrom[prop])
		}
		sort.Strings(c.DependsOn)
	}
	if conn, ok := object(in, "connection"); ok {
		c.Connection = connection(conn, c)
	}
	c.Create, _ = str(in, "create")
	c.Update, _ = str(in, "update")
	c.Delete, _ = str(in, "delete")
	c.Logging, _ = str(in, "logging")
	if s, _ := str(in, "stdin"); s != "" {
		c.Stdin = Secret{s}
		c.secrets = append(c.secrets, s)
	}
	if env, ok := object(in, "environment"); ok {
		for k := range env {
			v, secret := str(env, string(k))
			c.Environment[string(k)] = v
			if secret {
				c.secrets = append(c.secrets, v)
			}
		}
	}
	if t, ok := in["triggers"]; ok {
		t, _ = unsecret(t)
		if t.IsArray() {
			for _, e := range t.ArrayValue() {
				e, secret := unsecret(e)
				switch {
				case secret:
					c.Triggers = append(c.Triggers, "[secret]")
					if e.IsString() {
						c.secrets = append(c.secrets, e.StringValue())
					}
				case e.IsString():
					c.Triggers = append(c.Triggers, e.StringValue())
				default:
					c.Triggers = append(c.Triggers, fmt.Sprint(e.Mappable()))
				}
			}
		}
	}
	c.Phase, c.Node = phaseOf(args.Name, phases)
	return c
}

// phaseOf splits "<component>-<phase>[-<node>]" by the longest phase name found after the first
// dash, so "join-token" is not read as "join" and "delete-join-token" not as "join-token".
func phaseOf(name string, phases []string) (phase, node string) {
	_, rest, ok := strings.Cut(name, "-")
	if !ok {
		return "", ""
	}
	for _, p := range phases {
		if (rest == p || strings.HasPrefix(rest, p+"-")) && len(p) > len(phase) {
			phase = p
		}
	}
	if phase == "" {
		return "", ""
	}
	return phase, strings.TrimPrefix(strings.TrimPrefix(rest, phase), "-")
}

// nameOf is the resource name at the end of a URN (urn:pulumi:stack::project::type::name).
func nameOf(urn string) string {
	if i := strings.LastIndex(urn, "::"); i >= 0 {
		return urn[i+2:]
	}
	return urn
}

// Command returns the declared command of that name, or nil.
func (p *Plan) Command(name string) *Command {
	for _, c := range p.Commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

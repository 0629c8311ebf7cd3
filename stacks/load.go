package stacks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Namespace is the config namespace of every infralab key (the Pulumi project name).
const Namespace = "infralab"

// Source is where raw config values come from: the Pulumi context in the program, a map in tests.
// Keys are given without the "infralab:" namespace.
type Source interface {
	Get(key string) (string, bool)
	IsSecret(key string) bool
}

// FromContext reads config of the running Pulumi program with the non-panicking readers.
func FromContext(ctx *pulumi.Context) Source { return ctxSource{ctx} }

type ctxSource struct{ ctx *pulumi.Context }

func (s ctxSource) Get(key string) (string, bool) {
	v, err := config.Try(s.ctx, Namespace+":"+key)
	if err != nil {
		return "", false
	}
	return v, true
}

func (s ctxSource) IsSecret(key string) bool { return s.ctx.IsConfigSecret(Namespace + ":" + key) }

// Load reads and validates the whole stack configuration. On any problem it returns Errors listing
// all of them; the caller must then declare nothing.
func Load(src Source) (*Config, error) {
	c := &errs{}
	cfg := &Config{}

	mode, _ := src.Get("mode")
	cfg.Mode = Mode(mode)
	cfg.Kubeconfig, _ = src.Get("kubeconfig")
	cfg.RenderYAMLTo, _ = src.Get("renderYamlTo")
	if v, ok := src.Get("benchCopies"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			c.add("benchCopies", fmt.Sprintf("%q is not a whole number", v), "set a number of copies from 1 to "+strconv.Itoa(MaxBenchCopies)+", or remove it")
		}
		cfg.BenchCopies = n
	}

	decode(src, "proxmox", &cfg.Proxmox, c)
	decode(src, "network", &cfg.Network, c)
	decode(src, "image", &cfg.Image, c)
	decode(src, "ssh", &cfg.SSH, c)
	decode(src, "kubernetes", &cfg.Kubernetes, c)
	decode(src, "cluster", &cfg.Cluster, c)
	decode(src, "apps", &cfg.Apps, c)

	s := &cfg.Secrets
	for key, dst := range map[string]*Secret{
		KeyProxmoxAPIToken:       &s.ProxmoxAPIToken,
		KeyProxmoxSSHPrivateKey:  &s.ProxmoxSSHPrivateKey,
		KeyProxmoxJumpPrivateKey: &s.ProxmoxJumpPrivateKey,
		KeySSHPrivateKey:         &s.SSHPrivateKey,
		KeyEncryptionKey:         &s.EncryptionKey,
		KeyPostgresPassword:      &s.PostgresPassword,
		KeyAPIDBPassword:         &s.APIDBPassword,
		KeyExporterDBPassword:    &s.ExporterDBPassword,
		KeyGrafanaAdminPassword:  &s.GrafanaAdminPassword,
	} {
		v, ok := src.Get(key)
		*dst = Secret{Key: key, Set: ok, IsSecret: ok && src.IsSecret(key), Value: v}
	}

	validate(cfg, c)
	if err := c.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decode reads one structured key strictly: unknown fields are errors, so a misspelt key is caught
// instead of silently taking a default.
func decode(src Source, key string, out any, c *errs) {
	raw, ok := src.Get(key)
	if !ok {
		return
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		path, problem := describeDecodeError(key, err)
		c.add(path, problem, "compare with stacks/Pulumi.lab.yaml and docs/config.md")
	}
}

func describeDecodeError(key string, err error) (path, problem string) {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return key + "." + typeErr.Field, fmt.Sprintf("must be a %s, not a %s", typeErr.Type, typeErr.Value)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return key, "unknown field " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	return key, "not a valid object: " + err.Error()
}

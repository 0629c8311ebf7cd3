package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Prometheus reads rules and alerts from the Prometheus HTTP API (read-only).
type Prometheus struct {
	base   *url.URL
	client *http.Client
}

// NewPrometheus checks the base URL; it never changes anything on the server.
func NewPrometheus(base string) (*Prometheus, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--prometheus-url: %q is not an http(s) URL; e.g. run `kubectl -n monitoring port-forward svc/prometheus 9090` and pass http://127.0.0.1:9090", base)
	}
	return &Prometheus{base: u, client: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Rule is an alerting rule as /api/v1/rules reports it.
type Rule struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Query    string            `json:"query"`
	Duration float64           `json:"duration"` // the rule's `for`, in seconds
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
}

// Alert is one alert as /api/v1/alerts reports it.
type Alert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"` // pending | firing
	ActiveAt time.Time         `json:"activeAt"`
}

func (p *Prometheus) get(ctx context.Context, path string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base.String()+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("prometheus %s: HTTP %d, not an API answer", path, resp.StatusCode)
	}
	if env.Status != "success" {
		return fmt.Errorf("prometheus %s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// AlertRule finds the alerting rule called name.
func (p *Prometheus) AlertRule(ctx context.Context, name string) (*Rule, error) {
	var data struct {
		Groups []struct {
			Rules []Rule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(ctx, "/api/v1/rules?type=alert", &data); err != nil {
		return nil, err
	}
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			if r.Name == name {
				return &r, nil
			}
		}
	}
	return nil, fmt.Errorf("prometheus has no alerting rule %q; is the PrometheusRule deployed (apps layer, monitoring on)?", name)
}

// Alerts returns the alerts called name, pending or firing.
func (p *Prometheus) Alerts(ctx context.Context, name string) ([]Alert, error) {
	var data struct {
		Alerts []Alert `json:"alerts"`
	}
	if err := p.get(ctx, "/api/v1/alerts", &data); err != nil {
		return nil, err
	}
	var out []Alert
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name {
			out = append(out, a)
		}
	}
	return out, nil
}

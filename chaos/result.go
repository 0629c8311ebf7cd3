package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// Result is what a run writes to measurements.json; the postmortem draft is rendered from it.
type Result struct {
	Experiment        string        `json:"experiment"`
	Hypothesis        string        `json:"hypothesis"`
	Scope             string        `json:"scope"`
	DryRun            bool          `json:"dryRun"`
	Plan              []string      `json:"plan"`
	Limits            Limits        `json:"limits"`
	Started           time.Time     `json:"started"`
	Ended             time.Time     `json:"ended"`
	Outcome           Outcome       `json:"outcome"`
	AbortReason       string        `json:"abortReason,omitempty"`
	SteadyStateBefore string        `json:"steadyStateBefore"`
	SteadyStateAfter  string        `json:"steadyStateAfter,omitempty"`
	RolledBack        bool          `json:"rolledBack"`
	RollbackError     string        `json:"rollbackError,omitempty"`
	Measurements      []Measurement `json:"measurements"`
	Timeline          []Event       `json:"timeline"`
	Requests          int           `json:"requests"`
	Mutations         int           `json:"mutations"`
	Refused           []string      `json:"refused,omitempty"`
}

//go:embed postmortem.md.tmpl
var postmortemTemplate string

var postmortem = template.Must(template.New("postmortem").Funcs(template.FuncMap{
	"utc":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"duration": func(a, b time.Time) string { return b.Sub(a).Round(time.Second).String() },
	"upper":    strings.ToUpper,
}).Parse(postmortemTemplate))

// RenderPostmortem fills the postmortem template from a result.
func RenderPostmortem(r *Result) (string, error) {
	var b bytes.Buffer
	if err := postmortem.Execute(&b, r); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Write stores measurements.json and postmortem.md under dir/<experiment>-<time> and returns that folder.
func (r *Result) Write(dir string) (string, error) {
	out := filepath.Join(dir, r.Experiment+"-"+r.Started.UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(out, 0o750); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, "measurements.json"), append(js, '\n'), 0o640); err != nil {
		return "", err
	}
	md, err := RenderPostmortem(r)
	if err != nil {
		return "", fmt.Errorf("postmortem template: %w", err)
	}
	return out, os.WriteFile(filepath.Join(out, "postmortem.md"), []byte(md), 0o640)
}

package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Env is what an experiment works with: a guarded client, its scope and where measurements go.
type Env struct {
	Client kubernetes.Interface
	// Config is the guarded REST config (exec streams go through the same guard).
	Config *rest.Config
	Scope  Scope
	Guard  *Guard
	DryRun bool
	Opts   Options
	Out    io.Writer
	Now    func() time.Time

	mu           sync.Mutex
	measurements []Measurement
	timeline     []Event
}

// Measurement is one number an experiment took.
type Measurement struct {
	Name  string    `json:"name"`
	Value float64   `json:"value"`
	Unit  string    `json:"unit"`
	At    time.Time `json:"at"`
	Note  string    `json:"note,omitempty"`
}

// Event is one line of the timeline.
type Event struct {
	At      time.Time `json:"at"`
	Phase   string    `json:"phase"`
	Message string    `json:"message"`
}

// Record stores a measurement and prints it.
func (e *Env) Record(name string, value float64, unit, note string) {
	m := Measurement{Name: name, Value: value, Unit: unit, At: e.Now(), Note: note}
	e.mu.Lock()
	e.measurements = append(e.measurements, m)
	e.mu.Unlock()
	fmt.Fprintf(e.Out, "    measured %s = %g %s %s\n", name, value, unit, note)
}

// Logf adds a timeline event and prints it: long experiments show progress.
func (e *Env) Logf(phase, format string, args ...any) {
	ev := Event{At: e.Now(), Phase: phase, Message: fmt.Sprintf(format, args...)}
	e.mu.Lock()
	e.timeline = append(e.timeline, ev)
	e.mu.Unlock()
	fmt.Fprintf(e.Out, "[%s] %-12s %s\n", ev.At.Format("15:04:05"), phase, ev.Message)
}

// Measurements returns a copy of what was recorded.
func (e *Env) Measurements() []Measurement {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Measurement(nil), e.measurements...)
}

// Measured returns the last value recorded under name.
func (e *Env) Measured(name string) (float64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.measurements) - 1; i >= 0; i-- {
		if e.measurements[i].Name == name {
			return e.measurements[i].Value, true
		}
	}
	return 0, false
}

func (e *Env) events() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.timeline...)
}

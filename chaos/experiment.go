package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Experiment is one chaos scenario. The runner calls SteadyState, Inject, then Observe until it
// reports a verdict, and always Rollback once Inject has started.
type Experiment interface {
	Name() string
	Hypothesis() string
	// Plan lists what the experiment will do with the given environment, in order, for --dry-run
	// and the report. It must not change anything.
	Plan(env *Env) []string
	// SteadyState fails when the system is not healthy enough to start (or, after rollback, to
	// call the experiment finished).
	SteadyState(ctx context.Context, env *Env) error
	Inject(ctx context.Context, env *Env) error
	// Observe is polled every Limits.Interval. An error aborts the experiment (and triggers the
	// rollback); Pending keeps polling until the deadline.
	Observe(ctx context.Context, env *Env) (Verdict, error)
	Rollback(ctx context.Context, env *Env) error
}

// Verdict is what an observation says about the hypothesis.
type Verdict int

const (
	Pending Verdict = iota
	Held
	Refuted
)

func (v Verdict) String() string {
	switch v {
	case Held:
		return "held"
	case Refuted:
		return "refuted"
	default:
		return "pending"
	}
}

// Limits bound an experiment's duration and its load on the API server.
type Limits struct {
	// Duration bounds SteadyState+Inject+Observe; the rollback gets RollbackTimeout on top.
	Duration        time.Duration
	RollbackTimeout time.Duration
	// Interval between observations (at least one second, to bound the request rate).
	Interval time.Duration
	// MaxRequests bounds API requests before the rollback; the rollback gets RollbackRequests more.
	MaxRequests      int
	RollbackRequests int
}

// Validate reports every bad limit with its flag name.
func (l Limits) Validate() error {
	var errs []error
	if l.Duration <= 0 || l.Duration > 2*time.Hour {
		errs = append(errs, fmt.Errorf("--duration: %s is outside (0, 2h]", l.Duration))
	}
	if l.RollbackTimeout <= 0 || l.RollbackTimeout > time.Hour {
		errs = append(errs, fmt.Errorf("--rollback-timeout: %s is outside (0, 1h]", l.RollbackTimeout))
	}
	if l.Interval < time.Second {
		errs = append(errs, fmt.Errorf("--interval: %s is below 1s; polls must stay gentle on the API server", l.Interval))
	}
	if l.MaxRequests < 10 || l.MaxRequests > 100000 {
		errs = append(errs, fmt.Errorf("--max-requests: %d is outside [10, 100000]", l.MaxRequests))
	}
	if l.RollbackRequests < 10 {
		errs = append(errs, fmt.Errorf("--rollback-requests: %d is below 10; the rollback needs room to work", l.RollbackRequests))
	}
	return errors.Join(errs...)
}

// ErrAbort marks an abort condition (as opposed to a failed API call).
var ErrAbort = errors.New("abort condition")

// abortf returns an error that wraps ErrAbort.
func abortf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrAbort, fmt.Sprintf(format, args...))
}

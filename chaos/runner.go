package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Outcome is how a run ended.
type Outcome string

const (
	OutcomeDryRun  Outcome = "dry-run"
	OutcomeHeld    Outcome = "hypothesis-held"
	OutcomeRefuted Outcome = "hypothesis-refuted"
	OutcomeAborted Outcome = "aborted"
	OutcomeTimeout Outcome = "timed-out"
	OutcomeNoStart Outcome = "not-started"
)

// Runner runs one experiment within its limits and always rolls back what it injected.
type Runner struct {
	Limits Limits
}

// Run executes exp in env and returns the result; the error is non-nil only when the run could not
// be judged (steady state failed, abort, timeout or a failed rollback).
func (r Runner) Run(ctx context.Context, exp Experiment, env *Env) (*Result, error) {
	res := &Result{
		Experiment: exp.Name(), Hypothesis: exp.Hypothesis(), Scope: env.Scope.String(),
		DryRun: env.DryRun, Started: env.Now(), Limits: r.Limits,
	}
	res.Plan = exp.Plan(env)
	env.Logf("plan", "%s within %s (limits: %s, %d requests)", exp.Name(), env.Scope, r.Limits.Duration, r.Limits.MaxRequests)
	for i, step := range res.Plan {
		fmt.Fprintf(env.Out, "    %d. %s\n", i+1, step)
	}
	defer func() { r.finish(res, env) }()

	if env.DryRun {
		// Read-only probes still run, so a dry run shows whether the experiment could start.
		if err := exp.SteadyState(ctx, env); err != nil {
			res.SteadyStateBefore = err.Error()
			env.Logf("dry-run", "steady state would block the run: %v", err)
		} else {
			res.SteadyStateBefore = "ok"
			env.Logf("dry-run", "steady state ok; nothing was changed")
		}
		res.Outcome = OutcomeDryRun
		return res, nil
	}

	runCtx, cancel := context.WithTimeout(ctx, r.Limits.Duration)
	defer cancel()
	if err := exp.SteadyState(runCtx, env); err != nil {
		res.SteadyStateBefore = err.Error()
		res.Outcome = OutcomeNoStart
		env.Logf("steady-state", "not healthy, not starting: %v", err)
		return res, fmt.Errorf("steady state before the experiment: %w", err)
	}
	res.SteadyStateBefore = "ok"
	env.Logf("steady-state", "ok")

	runErr := r.injectAndObserve(runCtx, exp, env, res)

	// The rollback gets its own time and request budget, and survives the caller's cancel (^C).
	env.Guard.BeginRollback()
	rbCtx, rbCancel := context.WithTimeout(context.WithoutCancel(ctx), r.Limits.RollbackTimeout)
	defer rbCancel()
	env.Logf("rollback", "starting")
	if err := exp.Rollback(rbCtx, env); err != nil {
		res.RollbackError = err.Error()
		env.Logf("rollback", "FAILED: %v; see the runbook in the postmortem draft", err)
		return res, errors.Join(runErr, fmt.Errorf("rollback: %w", err))
	}
	res.RolledBack = true
	env.Logf("rollback", "done")
	if err := exp.SteadyState(rbCtx, env); err != nil {
		res.SteadyStateAfter = err.Error()
		env.Logf("steady-state", "not restored after rollback: %v", err)
	} else {
		res.SteadyStateAfter = "ok"
		env.Logf("steady-state", "restored")
	}
	return res, runErr
}

func (r Runner) injectAndObserve(ctx context.Context, exp Experiment, env *Env, res *Result) error {
	env.Logf("inject", "starting")
	if err := exp.Inject(ctx, env); err != nil {
		return r.stop(ctx, env, res, "inject", err)
	}
	injected := env.Now()
	tick := time.NewTicker(r.Limits.Interval)
	defer tick.Stop()
	for {
		v, err := exp.Observe(ctx, env)
		if err != nil {
			return r.stop(ctx, env, res, "observe", err)
		}
		if v != Pending {
			res.Outcome = map[Verdict]Outcome{Held: OutcomeHeld, Refuted: OutcomeRefuted}[v]
			env.Logf("observe", "hypothesis %s after %s", v, env.Now().Sub(injected).Round(time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return r.stop(ctx, env, res, "observe", ctx.Err())
		case <-tick.C:
		}
	}
}

// stop records why the run ended early.
func (r Runner) stop(ctx context.Context, env *Env, res *Result, phase string, err error) error {
	switch {
	case errors.Is(err, ErrAbort):
		res.Outcome = OutcomeAborted
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		res.Outcome = OutcomeTimeout
		err = fmt.Errorf("no verdict within --duration %s: %w", r.Limits.Duration, err)
	default:
		res.Outcome = OutcomeAborted
	}
	res.AbortReason = err.Error()
	env.Logf(phase, "stopping: %v", err)
	return err
}

func (r Runner) finish(res *Result, env *Env) {
	res.Ended = env.Now()
	res.Measurements = env.Measurements()
	res.Timeline = env.events()
	res.Requests, res.Mutations, res.Refused = env.Guard.Stats()
}

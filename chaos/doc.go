// Command chaos runs the seed lab's five chaos experiments against the cluster of the current
// kubeconfig: bad-rollout, node-failure, pg-migration, oom-kill and postgres-alert.
//
// Every experiment states a hypothesis, probes steady state first, acts only inside its blast
// radius (namespaces plus a label selector, enforced on every API request by a guarding
// transport), aborts and rolls back on its abort conditions, its deadline or its request budget,
// and writes measurements.json plus a postmortem draft. --dry-run prints the plan and changes
// nothing: the guard refuses every mutating request.
package main

package declared

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// PhaseTimes is the measured time of one phase: each node's command duration and the phase's
// wall time (first start to last end over its nodes).
type PhaseTimes struct {
	Phase  string                   `json:"phase"`
	Nodes  map[string]time.Duration `json:"nodes"`
	Wall   time.Duration            `json:"wall"`
	Failed []string                 `json:"failed,omitempty"`
	start  time.Time
	end    time.Time
}

// Times groups results by phase, in the order phases first started. label names the node of a
// result (SSH.Label's node part).
func Times(results []Result, node func(*Command) string) (phases []PhaseTimes, total time.Duration) {
	byPhase := map[string]*PhaseTimes{}
	var first, last time.Time
	for _, r := range results {
		name := r.Command.Phase
		if name == "" {
			name = r.Command.Name
		}
		p := byPhase[name]
		if p == nil {
			p = &PhaseTimes{Phase: name, Nodes: map[string]time.Duration{}, start: r.Start, end: r.End}
			byPhase[name] = p
		}
		n := node(r.Command)
		p.Nodes[n] += r.Duration()
		if r.Err != nil {
			p.Failed = append(p.Failed, n)
		}
		if r.Start.Before(p.start) {
			p.start = r.Start
		}
		if r.End.After(p.end) {
			p.end = r.End
		}
		if first.IsZero() || r.Start.Before(first) {
			first = r.Start
		}
		if r.End.After(last) {
			last = r.End
		}
	}
	for _, p := range byPhase {
		p.Wall = p.end.Sub(p.start)
		phases = append(phases, *p)
	}
	sort.Slice(phases, func(i, j int) bool { return phases[i].start.Before(phases[j].start) })
	return phases, last.Sub(first)
}

// WriteTable prints the per-phase table: one row per phase, one column per node, the phase's
// wall time, and the total: the first command's start to the last one's end.
func WriteTable(w io.Writer, phases []PhaseTimes, total time.Duration) {
	nodeSet := map[string]bool{}
	for _, p := range phases {
		for n := range p.Nodes {
			nodeSet[n] = true
		}
	}
	nodes := make([]string, 0, len(nodeSet))
	for n := range nodeSet {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "phase\t%s\twall\n", strings.Join(nodes, "\t"))
	for _, p := range phases {
		row := []string{p.Phase}
		for _, n := range nodes {
			cell := "-"
			if d, ok := p.Nodes[n]; ok {
				cell = round(d)
				for _, f := range p.Failed {
					if f == n {
						cell += " FAILED"
					}
				}
			}
			row = append(row, cell)
		}
		row = append(row, round(p.Wall))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	fmt.Fprintf(tw, "total\t%s%s\n", strings.Repeat("\t", len(nodes)), round(total))
	_ = tw.Flush()
}

func round(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

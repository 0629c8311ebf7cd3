package testenv

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Parallel writers lose nothing and never interleave inside one Write (run with -race to see
// the lock matter).
func TestSyncBufferTakesParallelWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				fmt.Fprintf(&b, "w%d-%03d\n", w, i)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if len(l) != len("w0-000") || seen[l] {
			t.Fatalf("torn or repeated line %q", l)
		}
		seen[l] = true
	}
}

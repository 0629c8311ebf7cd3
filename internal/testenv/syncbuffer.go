package testenv

import (
	"strings"
	"sync"
)

// SyncBuffer is an io.Writer that several goroutines may write at once (a command's stdout and
// stderr copiers, an executor's parallel steps) while the test reads it with String.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

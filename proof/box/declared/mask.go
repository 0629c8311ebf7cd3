package declared

import (
	"sort"
	"strings"
	"sync"
)

// Masker replaces every known secret in text before it is printed. A multi-line secret (a PEM
// key, a kubeconfig) is also masked line by line, so a script that prints one line of it, or
// output split across writes at line ends, still shows none of it.
type Masker struct {
	mu      sync.Mutex
	secrets []string
}

// maskMin is the shortest value masked: shorter ones ("0", "ok") would blank ordinary output,
// and a secret that short protects nothing anyway. lineMin is the shortest line of a multi-line
// secret masked on its own: short lines there are structure ("kind: Config"), not key material.
const (
	maskMin = 6
	lineMin = 16
)

// Mask is what replaces a secret.
const Mask = "[secret]"

// Add registers secrets.
func (m *Masker) Add(values ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, s := range m.secrets {
		seen[s] = true
	}
	add := func(s string, min int) {
		if len(s) >= min && !seen[s] {
			seen[s] = true
			m.secrets = append(m.secrets, s)
		}
	}
	for _, v := range values {
		add(v, maskMin)
		add(strings.TrimSpace(v), maskMin)
		if strings.Contains(v, "\n") {
			for _, line := range strings.Split(v, "\n") {
				add(strings.TrimSpace(line), lineMin)
			}
		}
	}
	// Longest first, so a whole value is replaced before any of its lines.
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
}

// Apply masks text.
func (m *Masker) Apply(text string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.secrets {
		text = strings.ReplaceAll(text, s, Mask)
	}
	return text
}

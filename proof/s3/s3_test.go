package s3

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infralab/infralab/internal/proc"
	"github.com/infralab/infralab/internal/testenv"
)

// TestStoreServesS3 starts the store on loopback and checks that the gateway enforces its
// credentials (an unsigned request is refused) and that the bucket exists in the filer.
func TestStoreServesS3(t *testing.T) {
	weed := testenv.Tool(t, "weed")
	dir := filepath.Join(t.TempDir(), "s3")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Dir: dir, Weed: weed, AccessKey: "test-access", SecretKey: "test-secret-0123456789", Buckets: []string{"backups"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint %s, want loopback", s.Endpoint)
	}
	resp, err := http.Get(s.Endpoint + "/backups/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned GET of the bucket: %d, want 403 (credentials enforced)", resp.StatusCode)
	}
	if _, err := Start(ctx, Options{Dir: dir, Weed: weed, AccessKey: "a", SecretKey: "b"}); err == nil || !strings.Contains(err.Error(), proc.ErrDirNotEmpty.Error()) {
		t.Errorf("a second store in the same folder: %v, want %v", err, proc.ErrDirNotEmpty)
	}
}

// Package healthcareapi holds the healthcare-api service: a small FastAPI app on PostgreSQL
// (patients and appointments CRUD, /healthz, /readyz, /metrics, a bounded connection pool).
//
// The service itself is Python (healthcare_api/), run with Debian's python3 packages so the
// image builder in proof/images can assemble it from the machine's own files. This Go
// package only exists so `go test ./...` runs the service's pytest suite against a real
// PostgreSQL 15.
package healthcareapi

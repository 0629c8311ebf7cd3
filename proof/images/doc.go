// Package images builds the embedded node's container images from the Debian packages installed
// on this machine, with no registry: pause (our own cmd/pause), PostgreSQL 15, postgres_exporter,
// Prometheus and the healthcare-api.
//
// An image holds exactly the files it runs: the package's binaries and data, every shared
// library `ldd` lists for every ELF file in it, and a small base (passwd, group, mountpoints).
// Each is written with go-containerregistry as a docker-archive tar that
// `ctr -n k8s.io images import` loads. Images run as a non-root user on a read-only root
// filesystem; what they must write goes to volumes the pod mounts.
//
// The output folder doubles as the cache: a tar is named by a key over everything that goes
// into it (file list with sizes and mtimes, package versions, our sources, the image config), so
// a rebuild after no change costs only the file scan.
package images

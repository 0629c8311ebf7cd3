package cluster

import (
	"embed"
	"io/fs"
)

//go:embed scripts/*.sh
var embedded embed.FS

// Scripts are the phase scripts as shipped, rooted at scripts/.
func Scripts() fs.FS {
	sub, err := fs.Sub(embedded, "scripts")
	if err != nil {
		// fs.Sub fails only on an invalid path literal, which the build would have caught.
		panic(err)
	}
	return sub
}

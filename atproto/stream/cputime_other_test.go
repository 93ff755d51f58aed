//go:build !unix

package stream

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }

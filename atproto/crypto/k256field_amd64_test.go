//go:build amd64 && !purego

package crypto

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// fieldImpls lists the field implementations reachable on this build, for
// the differential tests: the portable Go code always, and the assembly
// (called directly, not through the dispatch) when the CPU can run it.
func fieldImpls() []fieldImpl {
	impls := []fieldImpl{
		{"generic", feAddGeneric, feSubGeneric, feMulGeneric, feSqrGeneric},
		// Add and sub need no CPU features; mul and sqr stay generic here.
		{"asm-addsub", feAddAsm, feSubAsm, feMulGeneric, feSqrGeneric},
	}
	if hasBMI2ADX() {
		impls = append(impls, fieldImpl{"asm-adx", feAddAsm, feSubAsm, feMulADX, feSqrADX})
	}
	return impls
}

// TestK256CPUFeatures checks the feature detection against the kernel's
// view of the CPU, where there is one: the differential tests cover the
// assembly only when the detection finds BMI2 and ADX.
func TestK256CPUFeatures(t *testing.T) {
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip("no /proc/cpuinfo")
	}
	var flags []string
	for line := range strings.Lines(string(info)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			flags = strings.Fields(v)
			break
		}
	}
	if flags == nil {
		t.Skip("no flags line in /proc/cpuinfo")
	}
	want := slices.Contains(flags, "bmi2") && slices.Contains(flags, "adx")
	// GODEBUG may switch the features off (cpu.bmi2=off, cpu.adx=off,
	// cpu.all=off), and the Go code is then used.
	for _, kv := range strings.Split(os.Getenv("GODEBUG"), ",") {
		switch strings.TrimSpace(kv) {
		case "cpu.bmi2=off", "cpu.adx=off", "cpu.all=off":
			want = false
		}
	}
	if got := hasBMI2ADX(); got != want {
		t.Fatalf("hasBMI2ADX() = %v, /proc/cpuinfo says %v", got, want)
	}
	if feUseADX != want {
		t.Fatalf("feUseADX = %v, want %v", feUseADX, want)
	}
}

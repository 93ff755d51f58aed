package data

// Limits a decoder enforces by default. They follow the data-validation
// guide's recommendations and are stricter than the reference decoders,
// which let some of these through.
const (
	// MaxDepth is the deepest nesting of maps and arrays accepted.
	MaxDepth = 32
	// MaxContainerLen is the most entries one map or array may hold.
	MaxContainerLen = 131072
	// MaxKeyLen is the longest map key, in bytes.
	MaxKeyLen = 8192
	// MaxSafeInt bounds integers written: the data model asks writers to
	// stay within what a float64 holds exactly (±2^53-1) so that
	// JavaScript readers see the same number.
	MaxSafeInt = 1<<53 - 1
	// MinSafeInt is the negative bound for integers written.
	MinSafeInt = -MaxSafeInt
)

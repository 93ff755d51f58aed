//go:build !amd64 || purego

package crypto

// fieldImpls lists the field implementations reachable on this build: only
// the portable Go code.
func fieldImpls() []fieldImpl {
	return []fieldImpl{{"generic", feAddGeneric, feSubGeneric, feMulGeneric, feSqrGeneric}}
}

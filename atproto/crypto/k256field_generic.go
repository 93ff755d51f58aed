//go:build !amd64 || purego

package crypto

// Without assembly the field operations are the portable Go ones.

// feUseADX is never set here; it exists for the tests.
var feUseADX = false

func feAdd(z, a, b *fe) { feAddGeneric(z, a, b) }
func feSub(z, a, b *fe) { feSubGeneric(z, a, b) }
func feMul(z, a, b *fe) { feMulGeneric(z, a, b) }
func feSqr(z, a *fe)    { feSqrGeneric(z, a) }

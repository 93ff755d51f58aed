//go:build amd64 && !purego

package crypto

// On amd64 the field operations are in assembly (k256field_amd64.s):
// addition and subtraction always, multiplication and squaring when the
// CPU has BMI2 and ADX (MULX, ADCX, ADOX), as every x86-64 CPU since about
// 2014 does. The choice depends only on the CPU, never on the data.

//go:noescape
func k256cpuid(leaf, sub uint32) (a, b, c, d uint32)

//go:noescape
func feAddAsm(z, a, b *fe)

//go:noescape
func feSubAsm(z, a, b *fe)

//go:noescape
func feMulADX(z, a, b *fe)

//go:noescape
func feSqrADX(z, a *fe)

var feUseADX = hasBMI2ADX()

func hasBMI2ADX() bool {
	if maxLeaf, _, _, _ := k256cpuid(0, 0); maxLeaf < 7 {
		return false
	}
	_, ebx, _, _ := k256cpuid(7, 0)
	const bmi2, adx = 1 << 8, 1 << 19
	return ebx&bmi2 != 0 && ebx&adx != 0
}

func feAdd(z, a, b *fe) { feAddAsm(z, a, b) }
func feSub(z, a, b *fe) { feSubAsm(z, a, b) }

func feMul(z, a, b *fe) {
	if feUseADX {
		feMulADX(z, a, b)
	} else {
		feMulGeneric(z, a, b)
	}
}

func feSqr(z, a *fe) {
	if feUseADX {
		feSqrADX(z, a)
	} else {
		feSqrGeneric(z, a)
	}
}

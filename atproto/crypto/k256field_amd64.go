//go:build amd64 && !purego

package crypto

import "golang.org/x/sys/cpu"

// On amd64 the field operations are in assembly (k256field_amd64.s):
// addition and subtraction always, multiplication and squaring when the
// CPU has BMI2 and ADX (MULX, ADCX, ADOX), as every x86-64 CPU since about
// 2014 does. The choice depends only on the CPU, never on the data.

//go:noescape
func feAddAsm(z, a, b *fe)

//go:noescape
func feSubAsm(z, a, b *fe)

//go:noescape
func feMulADX(z, a, b *fe)

//go:noescape
func feSqrADX(z, a *fe)

var feUseADX = hasBMI2ADX()

// hasBMI2ADX asks golang.org/x/sys/cpu, which honours GODEBUG's cpu.*
// switches (GODEBUG=cpu.bmi2=off selects the Go code).
func hasBMI2ADX() bool { return cpu.X86.HasBMI2 && cpu.X86.HasADX }

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

//go:build amd64 && !purego

#include "textflag.h"

// Field arithmetic modulo p = 2^256 - 0x1000003d1 for k256field.go: the
// same operations as the generic Go code, with the same reduction steps,
// but with every intermediate in a register. Nothing here branches or
// indexes memory by the data.

// func feAddAsm(z, a, b *fe)
TEXT ·feAddAsm(SB), NOSPLIT, $0-24
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), CX
	MOVQ 0(SI), R8
	MOVQ 8(SI), R9
	MOVQ 16(SI), R10
	MOVQ 24(SI), R11
	ADDQ 0(CX), R8
	ADCQ 8(CX), R9
	ADCQ 16(CX), R10
	ADCQ 24(CX), R11
	// A carry is worth 0x1000003d1; fold it in, twice (see feAdd).
	MOVQ $0x1000003d1, DX
	SBBQ AX, AX
	ANDQ DX, AX
	ADDQ AX, R8
	ADCQ $0, R9
	ADCQ $0, R10
	ADCQ $0, R11
	SBBQ AX, AX
	ANDQ DX, AX
	ADDQ AX, R8
	MOVQ z+0(FP), DI
	MOVQ R8, 0(DI)
	MOVQ R9, 8(DI)
	MOVQ R10, 16(DI)
	MOVQ R11, 24(DI)
	RET

// func feSubAsm(z, a, b *fe)
TEXT ·feSubAsm(SB), NOSPLIT, $0-24
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), CX
	MOVQ 0(SI), R8
	MOVQ 8(SI), R9
	MOVQ 16(SI), R10
	MOVQ 24(SI), R11
	SUBQ 0(CX), R8
	SBBQ 8(CX), R9
	SBBQ 16(CX), R10
	SBBQ 24(CX), R11
	// A borrow is worth -0x1000003d1; fold it in, twice (see feSub).
	MOVQ $0x1000003d1, DX
	SBBQ AX, AX
	ANDQ DX, AX
	SUBQ AX, R8
	SBBQ $0, R9
	SBBQ $0, R10
	SBBQ $0, R11
	SBBQ AX, AX
	ANDQ DX, AX
	SUBQ AX, R8
	MOVQ z+0(FP), DI
	MOVQ R8, 0(DI)
	MOVQ R9, 8(DI)
	MOVQ R10, 16(DI)
	MOVQ R11, 24(DI)
	RET

// REDUCE folds the 512-bit value in R8..R15 (low to high) modulo p into
// R8..R11 and stores it at z. It needs BMI2 and ADX. After the first
// pass R12 (below 2^34) is what is left above 2^256, folded in once more.
#define REDUCE \
	MOVQ $0x1000003d1, DX \
	XORQ AX, AX \
	MULXQ R12, AX, BX \
	ADCXQ AX, R8 \
	ADOXQ BX, R9 \
	MULXQ R13, AX, BX \
	ADCXQ AX, R9 \
	ADOXQ BX, R10 \
	MULXQ R14, AX, BX \
	ADCXQ AX, R10 \
	ADOXQ BX, R11 \
	MULXQ R15, AX, R12 \
	ADCXQ AX, R11 \
	MOVQ $0, AX \
	ADOXQ AX, R12 \
	ADCXQ AX, R12 \
	MULXQ R12, AX, BX \
	ADDQ AX, R8 \
	ADCQ BX, R9 \
	ADCQ $0, R10 \
	ADCQ $0, R11 \
	SBBQ AX, AX \
	ANDQ DX, AX \
	ADDQ AX, R8 \
	ADCQ $0, R9 \
	MOVQ z+0(FP), DI \
	MOVQ R8, 0(DI) \
	MOVQ R9, 8(DI) \
	MOVQ R10, 16(DI) \
	MOVQ R11, 24(DI)

// func feMulADX(z, a, b *fe)
TEXT ·feMulADX(SB), NOSPLIT, $0-24
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), CX

	// Row 0: a0 * b into R8..R12.
	MOVQ 0(SI), DX
	MULXQ 0(CX), R8, R9
	MULXQ 8(CX), AX, R10
	ADDQ AX, R9
	MULXQ 16(CX), AX, R11
	ADCQ AX, R10
	MULXQ 24(CX), AX, R12
	ADCQ AX, R11
	ADCQ $0, R12

	// Row 1: a1 * b, low halves on the CF chain and high halves on the
	// OF chain, into R9..R13.
	MOVQ 8(SI), DX
	XORQ R13, R13
	MULXQ 0(CX), AX, BX
	ADCXQ AX, R9
	ADOXQ BX, R10
	MULXQ 8(CX), AX, BX
	ADCXQ AX, R10
	ADOXQ BX, R11
	MULXQ 16(CX), AX, BX
	ADCXQ AX, R11
	ADOXQ BX, R12
	MULXQ 24(CX), AX, BX
	ADCXQ AX, R12
	ADOXQ BX, R13
	MOVQ $0, AX
	ADCXQ AX, R13

	// Row 2 into R10..R14.
	MOVQ 16(SI), DX
	XORQ R14, R14
	MULXQ 0(CX), AX, BX
	ADCXQ AX, R10
	ADOXQ BX, R11
	MULXQ 8(CX), AX, BX
	ADCXQ AX, R11
	ADOXQ BX, R12
	MULXQ 16(CX), AX, BX
	ADCXQ AX, R12
	ADOXQ BX, R13
	MULXQ 24(CX), AX, BX
	ADCXQ AX, R13
	ADOXQ BX, R14
	MOVQ $0, AX
	ADCXQ AX, R14

	// Row 3 into R11..R15.
	MOVQ 24(SI), DX
	XORQ R15, R15
	MULXQ 0(CX), AX, BX
	ADCXQ AX, R11
	ADOXQ BX, R12
	MULXQ 8(CX), AX, BX
	ADCXQ AX, R12
	ADOXQ BX, R13
	MULXQ 16(CX), AX, BX
	ADCXQ AX, R13
	ADOXQ BX, R14
	MULXQ 24(CX), AX, BX
	ADCXQ AX, R14
	ADOXQ BX, R15
	MOVQ $0, AX
	ADCXQ AX, R15

	REDUCE
	RET

// func feSqrADX(z, a *fe)
TEXT ·feSqrADX(SB), NOSPLIT, $0-16
	MOVQ a+8(FP), SI

	// Cross products a_i * a_j, i < j, into R9..R14.
	MOVQ 0(SI), DX
	MULXQ 8(SI), R9, R10  // a0 a1
	MULXQ 16(SI), AX, R11 // a0 a2
	ADDQ AX, R10
	MULXQ 24(SI), AX, R12 // a0 a3
	ADCQ AX, R11
	ADCQ $0, R12

	MOVQ 8(SI), DX
	XORQ R13, R13
	MULXQ 16(SI), AX, BX // a1 a2
	ADCXQ AX, R11
	ADOXQ BX, R12
	MULXQ 24(SI), AX, BX // a1 a3
	ADCXQ AX, R12
	ADOXQ BX, R13
	MOVQ $0, AX
	ADCXQ AX, R13

	MOVQ 16(SI), DX
	MULXQ 24(SI), AX, R14 // a2 a3
	ADDQ AX, R13
	ADCQ $0, R14

	// Double them into R9..R15.
	XORQ R15, R15
	ADDQ R9, R9
	ADCQ R10, R10
	ADCQ R11, R11
	ADCQ R12, R12
	ADCQ R13, R13
	ADCQ R14, R14
	ADCQ $0, R15

	// Add the squares a_i^2 at limb 2i.
	MOVQ 0(SI), DX
	MULXQ DX, R8, BX
	ADDQ BX, R9
	MOVQ 8(SI), DX
	MULXQ DX, AX, BX
	ADCQ AX, R10
	ADCQ BX, R11
	MOVQ 16(SI), DX
	MULXQ DX, AX, BX
	ADCQ AX, R12
	ADCQ BX, R13
	MOVQ 24(SI), DX
	MULXQ DX, AX, BX
	ADCQ AX, R14
	ADCQ BX, R15

	REDUCE
	RET

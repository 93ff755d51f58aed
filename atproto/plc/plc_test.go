package plc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func TestVectorsValid(t *testing.T) {
	for name, v := range map[string]vecLog{
		"legacy_dholms":          vecLegacyDholms(),
		"nullification_at_72h":   vecNullificationAt72h(),
		"nullification":          vecNullification(),
		"tombstone":              vecTombstone(),
		"empty_rotation_keys":    vecEmptyRotationKeys(),
		"duplicate_rotation_key": vecDuplicateRotationKeys(),
	} {
		t.Run(name, func(t *testing.T) {
			for i, e := range v.entries {
				c, err := e.op.CID()
				if err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
				if c.String() != e.cid {
					t.Errorf("entry %d: CID %s, want %s", i, c, e.cid)
				}
			}
			did, err := DIDForGenesis(v.entries[0].op)
			if err != nil || did != v.did {
				t.Fatalf("DIDForGenesis = %q, %v; want %s", did, err, v.did)
			}
			if err := ValidateAuditLog(v.did, v.audit(t)); err != nil {
				t.Fatalf("ValidateAuditLog: %v", err)
			}
			if _, err := ValidateOperationLog(v.did, v.active()); err != nil {
				t.Fatalf("ValidateOperationLog: %v", err)
			}
			// The same log must fail for another DID.
			if err := ValidateAuditLog("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", v.audit(t)); !errors.Is(err, ErrInvalidLog) {
				t.Fatalf("wrong DID: got %v", err)
			}
		})
	}
}

func TestLegacyCreateLog(t *testing.T) {
	v := vecLegacyDholms()
	genesis := v.entries[0].op.(*LegacyCreate)
	d, err := DataForOp(v.did, genesis)
	if err != nil {
		t.Fatal(err)
	}
	want := &DocumentData{
		DID:                 v.did,
		VerificationMethods: map[string]string{"atproto": dholmsSigning},
		RotationKeys:        []string{dholmsRecovery, dholmsSigning},
		AlsoKnownAs:         []string{"at://dan.bsky.social"},
		Services:            atprotoPDS("https://bsky.social"),
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("legacy data = %+v\nwant %+v", d, want)
	}
	// The legacy op is signed by its signing key, index 1 of [recovery, signing].
	if idx, err := VerifySigDIDKeys(genesis, []string{dholmsRecovery, dholmsSigning}); err != nil || idx != 1 {
		t.Fatalf("VerifySigDIDKeys = %d, %v", idx, err)
	}
	final, err := ValidateOperationLog(v.did, v.active())
	if err != nil {
		t.Fatal(err)
	}
	if final.VerificationMethods["atproto"] != "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF" ||
		final.AlsoKnownAs[0] != "at://dholms.xyz" {
		t.Fatalf("final data %+v", final)
	}
	// Legacy create ops are not accepted after the genesis position.
	ops := append(v.active(), genesis)
	if _, err := ValidateOperationLog(v.did, ops); !errors.Is(err, ErrMisordered) {
		t.Fatalf("legacy create in the middle: %v", err)
	}
	// Reordering breaks the prev chain.
	ops = v.active()
	ops[2], ops[3] = ops[3], ops[2]
	if _, err := ValidateOperationLog(v.did, ops); !errors.Is(err, ErrMisordered) {
		t.Fatalf("reordered: %v", err)
	}
}

func TestNullificationWindowVector(t *testing.T) {
	v := vecNullificationAt72h()
	log := v.audit(t)
	if got := log[3].CreatedAt.Sub(log[2].CreatedAt); got != RecoveryWindow {
		t.Fatalf("vector gap is %s", got)
	}
	// AssimilateOp on the history before the recovery.
	pre := log[:3]
	pre[2].Nullified = false
	res, err := AssimilateOp(v.did, pre, log[3].Operation, log[3].CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Nullified) != 1 || res.Nullified[0].String() != v.entries[2].cid || res.CID.String() != v.entries[3].cid {
		t.Fatalf("result %+v", res)
	}
	if res.Data.AlsoKnownAs[0] != "at://op3" {
		t.Fatalf("data %+v", res.Data)
	}
	// One millisecond later is too late.
	_, err = AssimilateOp(v.did, pre, log[3].Operation, log[3].CreatedAt.Add(time.Millisecond))
	if !errors.Is(err, ErrLateRecovery) {
		t.Fatalf("72h+1ms: %v", err)
	}
	late := v.audit(t)
	late[3].CreatedAt = late[3].CreatedAt.Add(time.Millisecond)
	if err := ValidateAuditLog(v.did, late); !errors.Is(err, ErrLateRecovery) {
		t.Fatalf("late audit log: %v", err)
	}
	// A wrong nullified flag is caught.
	bad := v.audit(t)
	bad[2].Nullified = false
	if err := ValidateAuditLog(v.did, bad); !errors.Is(err, ErrInvalidLog) {
		t.Fatalf("flag: %v", err)
	}
	// Updating a nullified operation is refused.
	_, err = AssimilateOp(v.did, v.audit(t), &Tombstone{Prev: v.entries[2].cid, Sig: "AAAA"}, log[3].CreatedAt.Add(time.Hour))
	if !errors.Is(err, ErrMisordered) {
		t.Fatalf("update of nullified op: %v", err)
	}
}

func TestTombstoneVector(t *testing.T) {
	v := vecTombstone()
	d, err := ValidateOperationLog(v.did, v.active())
	if err != nil || d != nil {
		t.Fatalf("tombstoned log: %v, %v", d, err)
	}
	if _, err := DataForOp(v.did, v.entries[1].op); !errors.Is(err, ErrTombstoned) {
		t.Fatalf("DataForOp(tombstone): %v", err)
	}
	// Nothing may follow the tombstone, whatever it is signed with.
	next := &Tombstone{Prev: v.entries[1].cid, Sig: v.entries[1].op.Signature()}
	_, err = AssimilateOp(v.did, v.audit(t), next, time.Now())
	if !errors.Is(err, ErrTombstoned) {
		t.Fatalf("after tombstone: %v", err)
	}
	ops := append(v.active(), next)
	if _, err := ValidateOperationLog(v.did, ops); !errors.Is(err, ErrTombstoned) {
		t.Fatalf("after tombstone (plain log): %v", err)
	}
	// A tombstone cannot be a genesis operation.
	if _, err := AssimilateOp(v.did, nil, v.entries[1].op, time.Now()); !errors.Is(err, ErrMisordered) {
		t.Fatalf("tombstone genesis: %v", err)
	}
}

func TestHighSVector(t *testing.T) {
	v := vecHighSK256()
	err := ValidateAuditLog(v.did, v.audit(t))
	if !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("high-S vector: %v", err)
	}
	if !strings.Contains(err.Error(), "high-S") {
		t.Fatalf("message does not mention high-S: %v", err)
	}
}

func TestOldLogsPredateLimits(t *testing.T) {
	for _, v := range []vecLog{vecEmptyRotationKeys(), vecDuplicateRotationKeys()} {
		last := v.entries[len(v.entries)-1].op
		if err := CheckNewOpLimits(last); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: CheckNewOpLimits = %v", v.did, err)
		}
	}
	// With no rotation keys left, nothing can update the DID any more.
	v := vecEmptyRotationKeys()
	k := fixedKey(t, 1)
	op := newOp(t, k, strp(v.entries[1].cid), []string{k.Public().DIDKey()})
	log := v.audit(t)
	if _, err := AssimilateOp(v.did, log, op, log[1].CreatedAt.Add(time.Hour)); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("update after empty keys: %v", err)
	}
}

// ---- operations built with fixed keys ----

func fixedKey(t testing.TB, seed byte) crypto.PrivateKey {
	t.Helper()
	b := make([]byte, 32)
	for i := range b {
		b[i] = seed + byte(i)
	}
	k, err := crypto.ParsePrivateBytesK256(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func fixedP256(t testing.TB, seed byte) crypto.PrivateKey {
	t.Helper()
	b := make([]byte, 32)
	for i := range b {
		b[i] = seed ^ byte(3*i+1)
	}
	k, err := crypto.ParsePrivateBytesP256(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newOp(t testing.TB, signer crypto.PrivateKey, prev *string, rot []string) *Operation {
	t.Helper()
	op := &Operation{
		RotationKeys:        rot,
		VerificationMethods: map[string]string{"atproto": signer.Public().DIDKey()},
		AlsoKnownAs:         []string{"at://alice.test"},
		Services:            atprotoPDS("https://pds.example.com"),
		Prev:                prev,
	}
	if err := op.Sign(signer); err != nil {
		t.Fatal(err)
	}
	return op
}

func cidStr(t testing.TB, op Op) string {
	t.Helper()
	c, err := op.CID()
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

func TestGenesisAndDID(t *testing.T) {
	k0, k1 := fixedKey(t, 1), fixedP256(t, 2)
	rot := []string{k0.Public().DIDKey(), k1.Public().DIDKey()}
	op := newOp(t, k1, nil, rot)

	did, err := DIDForGenesis(op)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := syntax.ParseDID(string(did)); err != nil || len(did) != 32 || !strings.HasPrefix(string(did), "did:plc:") {
		t.Fatalf("bad DID %q (%v)", did, err)
	}
	if strings.ContainsAny(did.Identifier(), "0189") {
		t.Fatalf("DID %q uses characters outside base32", did)
	}
	// Stable across re-encoding through JSON.
	js, err := op.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseOperationJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	did2, _ := DIDForGenesis(back)
	if did2 != did || cidStr(t, back) != cidStr(t, op) {
		t.Fatalf("DID changed after JSON round trip: %s vs %s", did, did2)
	}
	// Signed by index 1.
	if idx, err := op.VerifySig(ParseDIDKeys(rot)); err != nil || idx != 1 {
		t.Fatalf("VerifySig = %d, %v", idx, err)
	}
	// Re-signing gives a different signature and DID, still valid.
	op2 := *op
	if err := op2.Sign(k0); err != nil {
		t.Fatal(err)
	}
	did3, _ := DIDForGenesis(&op2)
	if did3 == did {
		t.Fatal("DID did not change with the signature")
	}
	if _, err := ValidateOperationLog(did3, []Op{&op2}); err != nil {
		t.Fatal(err)
	}
	d, err := ValidateOperationLog(did, []Op{op})
	if err != nil {
		t.Fatal(err)
	}
	if d.DID != did || !reflect.DeepEqual(d.RotationKeys, rot) {
		t.Fatalf("data %+v", d)
	}
	// Genesis rules.
	if _, err := ValidateOperationLog("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", []Op{op}); !errors.Is(err, ErrGenesisHash) {
		t.Fatalf("wrong DID: %v", err)
	}
	other := fixedKey(t, 9)
	foreign := newOp(t, other, nil, rot)
	fdid, _ := DIDForGenesis(foreign)
	if _, err := ValidateOperationLog(fdid, []Op{foreign}); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("genesis not signed by its rotation keys: %v", err)
	}
	unsigned := *op
	unsigned.Sig = ""
	if _, err := DIDForGenesis(&unsigned); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned DIDForGenesis: %v", err)
	}
	if _, err := AssimilateOp(did, nil, &unsigned, time.Now()); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned genesis: %v", err)
	}
	withPrev := newOp(t, k0, strp(cidStr(t, op)), rot)
	if _, err := DIDForGenesis(withPrev); !errors.Is(err, ErrMisordered) {
		t.Fatalf("genesis with prev: %v", err)
	}
}

func TestSignedBytesLayout(t *testing.T) {
	k := fixedKey(t, 1)
	op := newOp(t, k, nil, []string{k.Public().DIDKey()})
	u, err := op.UnsignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := op.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	// 0xa6 / 0xa7: maps of 6 and 7 entries; prev is present as null (0xf6).
	if u[0] != 0xa6 || s[0] != 0xa7 {
		t.Fatalf("map headers %#x %#x", u[0], s[0])
	}
	if !bytes.Contains(u, []byte("\x64prev\xf6")) || bytes.Contains(u, []byte("sig")) {
		t.Fatalf("unsigned bytes %x", u)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(op.Sig)
	if err := k.Public().HashAndVerify(u, sig); err != nil {
		t.Fatalf("signature is not over the unsigned bytes: %v", err)
	}
}

// chain builds genesis (keys k0, k1, k2) and returns it with the keys.
func chain(t testing.TB) (syntax.DID, []crypto.PrivateKey, []string, *Operation) {
	t.Helper()
	keys := []crypto.PrivateKey{fixedKey(t, 10), fixedP256(t, 20), fixedKey(t, 30)}
	rot := make([]string, len(keys))
	for i, k := range keys {
		rot[i] = k.Public().DIDKey()
	}
	g := newOp(t, keys[2], nil, rot)
	did, err := DIDForGenesis(g)
	if err != nil {
		t.Fatal(err)
	}
	return did, keys, rot, g
}

func TestPrevChain(t *testing.T) {
	did, keys, rot, g := chain(t)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	log := []AuditEntry{{DID: did, Operation: g, CID: cidStr(t, g), CreatedAt: t0}}

	op1 := newOp(t, keys[1], strp(cidStr(t, g)), rot)
	res, err := AssimilateOp(did, log, op1, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Nullified) != 0 || res.CID.String() != cidStr(t, op1) {
		t.Fatalf("result %+v", res)
	}
	log = append(log, AuditEntry{DID: did, Operation: op1, CID: cidStr(t, op1), CreatedAt: t0.Add(time.Minute)})

	t2 := t0.Add(2 * time.Minute)
	cases := map[string]struct {
		op   Op
		when time.Time
		want error
	}{
		"unknown prev":         {newOp(t, keys[0], strp("bafyreie7wzkpryp3abzh4avjqmby3kuznuz3dwlqqgyfui25pecveba5oe"), rot), t2, ErrMisordered},
		"null prev":            {newOp(t, keys[0], nil, rot), t2, ErrMisordered},
		"unsigned":             {&Operation{RotationKeys: rot, Prev: strp(cidStr(t, op1))}, t2, ErrUnsigned},
		"non-rotation key":     {newOp(t, fixedKey(t, 99), strp(cidStr(t, op1)), rot), t2, ErrInvalidSignature},
		"timestamp not after":  {newOp(t, keys[0], strp(cidStr(t, op1)), rot), t0.Add(time.Minute), ErrMisordered},
		"legacy create second": {signedLegacy(t, keys[0]), t2, ErrMisordered},
		"nil op":               {nil, t2, ErrMalformedOp},
	}
	for name, c := range cases {
		if _, err := AssimilateOp(did, log, c.op, c.when); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	// Plain log validation of the same rules.
	good := newOp(t, keys[0], strp(cidStr(t, op1)), rot)
	if _, err := ValidateOperationLog(did, []Op{g, op1, good}); err != nil {
		t.Fatal(err)
	}
	wrongPrev := newOp(t, keys[0], strp(cidStr(t, g)), rot)
	if _, err := ValidateOperationLog(did, []Op{g, op1, wrongPrev}); !errors.Is(err, ErrMisordered) {
		t.Fatalf("wrong prev: %v", err)
	}
	intruder := newOp(t, fixedKey(t, 99), strp(cidStr(t, op1)), rot)
	if _, err := ValidateOperationLog(did, []Op{g, op1, intruder}); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("intruder: %v", err)
	}
	// A key rotation takes effect for the next operation.
	newKey := fixedKey(t, 50)
	rotated := newOp(t, keys[0], strp(cidStr(t, op1)), []string{newKey.Public().DIDKey()})
	byOld := newOp(t, keys[0], strp(cidStr(t, rotated)), rot)
	if _, err := ValidateOperationLog(did, []Op{g, op1, rotated, byOld}); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("old key after rotation: %v", err)
	}
	byNew := newOp(t, newKey, strp(cidStr(t, rotated)), rot)
	if _, err := ValidateOperationLog(did, []Op{g, op1, rotated, byNew}); err != nil {
		t.Fatal(err)
	}
	// A tombstone ends the log.
	ts := &Tombstone{Prev: cidStr(t, op1)}
	if err := ts.Sign(keys[2]); err != nil {
		t.Fatal(err)
	}
	if d, err := ValidateOperationLog(did, []Op{g, op1, ts}); err != nil || d != nil {
		t.Fatalf("tombstone: %v %v", d, err)
	}
	after := newOp(t, keys[0], strp(cidStr(t, ts)), rot)
	if _, err := ValidateOperationLog(did, []Op{g, op1, ts, after}); !errors.Is(err, ErrTombstoned) {
		t.Fatalf("after tombstone: %v", err)
	}
	res, err = AssimilateOp(did, log, ts, t2)
	if err != nil || res.Data != nil {
		t.Fatalf("tombstone assimilate: %+v %v", res, err)
	}
}

func signedLegacy(t testing.TB, k crypto.PrivateKey) *LegacyCreate {
	t.Helper()
	lc := &LegacyCreate{
		SigningKey:  k.Public().DIDKey(),
		RecoveryKey: k.Public().DIDKey(),
		Handle:      "alice.test",
		Service:     "pds.example.com",
	}
	if err := lc.Sign(k); err != nil {
		t.Fatal(err)
	}
	return lc
}

func TestSignatureEncoding(t *testing.T) {
	k := fixedKey(t, 1)
	rot := []string{k.Public().DIDKey()}
	op := newOp(t, k, nil, rot)
	keys := ParseDIDKeys(rot)
	raw, err := base64.RawURLEncoding.DecodeString(op.Sig)
	if err != nil || len(raw) != 64 {
		t.Fatalf("sig %q: %v", op.Sig, err)
	}

	// High-S: s' = n - s verifies mathematically but must be refused.
	n, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	s := new(big.Int).SetBytes(raw[32:])
	hi := new(big.Int).Sub(n, s).FillBytes(make([]byte, 32))
	highS := append(append([]byte{}, raw[:32]...), hi...)
	msg, _ := op.UnsignedBytes()
	if err := k.Public().HashAndVerifyLenient(msg, highS); err != nil {
		t.Fatalf("constructed high-S signature is not mathematically valid: %v", err)
	}
	variants := map[string]string{
		"high-S":         base64.RawURLEncoding.EncodeToString(highS),
		"padded":         op.Sig + "==",
		"std alphabet":   base64.RawStdEncoding.EncodeToString(raw),
		"newline":        op.Sig[:40] + "\n" + op.Sig[40:],
		"truncated":      op.Sig[:len(op.Sig)-4],
		"padding bits":   op.Sig[:len(op.Sig)-1] + flipLowBits(op.Sig[len(op.Sig)-1]),
		"other key's":    newOp(t, fixedKey(t, 2), nil, rot).Sig,
		"DER-ish length": base64.RawURLEncoding.EncodeToString(append(raw, 0)),
	}
	for name, sig := range variants {
		if sig == op.Sig {
			if name == "std alphabet" {
				continue // no + or / in this particular signature
			}
			t.Fatalf("%s: variant equals original", name)
		}
		bad := *op
		bad.Sig = sig
		idx, err := bad.VerifySig(keys)
		if !errors.Is(err, ErrInvalidSignature) || idx != -1 {
			t.Errorf("%s: VerifySig = %d, %v", name, idx, err)
		}
	}
	if idx, err := op.VerifySig(keys); err != nil || idx != 0 {
		t.Fatalf("original: %d %v", idx, err)
	}
	// nil keys are skipped but keep their index.
	if idx, err := op.VerifySig([]crypto.PublicKey{nil, keys[0]}); err != nil || idx != 1 {
		t.Fatalf("with nil: %d %v", idx, err)
	}
}

func flipLowBits(c byte) string {
	// The last character of an 86-character encoding of 64 bytes carries 4
	// data bits and 2 zero bits; set the low bit.
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alpha, c)
	return string(alpha[i|1])
}

func TestRecoveryPriority(t *testing.T) {
	did, keys, rot, g := chain(t)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	gc := cidStr(t, g)
	// op1 signed by key 1 (middle priority), op2 on top by key 2.
	op1 := newOp(t, keys[1], strp(gc), rot)
	op2 := newOp(t, keys[2], strp(cidStr(t, op1)), rot)
	log := []AuditEntry{
		{DID: did, Operation: g, CID: gc, CreatedAt: t0},
		{DID: did, Operation: op1, CID: cidStr(t, op1), CreatedAt: t1},
		{DID: did, Operation: op2, CID: cidStr(t, op2), CreatedAt: t1.Add(time.Hour)},
	}
	if err := ValidateAuditLog(did, log); err != nil {
		t.Fatal(err)
	}

	recovery := newOp(t, keys[0], strp(gc), rot[:1])
	for _, c := range []struct {
		name string
		when time.Time
		want error
	}{
		{"within window", t1.Add(24 * time.Hour), nil},
		{"exactly 72h", t1.Add(72 * time.Hour), nil},
		{"72h+1ms", t1.Add(72*time.Hour + time.Millisecond), ErrLateRecovery},
		{"before head", t1.Add(30 * time.Minute), ErrMisordered},
	} {
		res, err := AssimilateOp(did, log, recovery, c.when)
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if err == nil {
			if len(res.Nullified) != 2 || res.Nullified[0].String() != log[1].CID || res.Nullified[1].String() != log[2].CID {
				t.Errorf("%s: nullified %v", c.name, res.Nullified)
			}
			// The audit log including the recovery validates with the
			// two ops marked nullified, and not otherwise.
			full := append(append([]AuditEntry{}, log...), AuditEntry{DID: did, Operation: recovery, CID: res.CID.String(), CreatedAt: c.when})
			full[1].Nullified, full[2].Nullified = true, true
			if err := ValidateAuditLog(did, full); err != nil {
				t.Errorf("%s: audit log: %v", c.name, err)
			}
			full[2].Nullified = false
			if err := ValidateAuditLog(did, full); !errors.Is(err, ErrInvalidLog) {
				t.Errorf("%s: wrong flags accepted: %v", c.name, err)
			}
		}
	}

	// Same priority (key 1) or lower (key 2) cannot nullify op1.
	for _, i := range []int{1, 2} {
		r := newOp(t, keys[i], strp(gc), rot)
		if _, err := AssimilateOp(did, log, r, t1.Add(2*time.Hour)); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("key %d nullifying key-1 op: %v", i, err)
		}
	}
	// Nullifying only op2 (signed by key 2, prev op1): key 1 may, key 2 may not.
	byK1 := newOp(t, keys[1], strp(log[1].CID), rot)
	if res, err := AssimilateOp(did, log, byK1, t1.Add(3*time.Hour)); err != nil || len(res.Nullified) != 1 {
		t.Errorf("key 1 nullifying key-2 op: %v", err)
	}
	byK2 := newOp(t, keys[2], strp(log[1].CID), rot)
	if _, err := AssimilateOp(did, log, byK2, t1.Add(3*time.Hour)); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("key 2 nullifying its own op: %v", err)
	}
	// The top key's operations cannot be nullified at all.
	top := newOp(t, keys[0], strp(gc), rot)
	log2 := []AuditEntry{log[0], {DID: did, Operation: top, CID: cidStr(t, top), CreatedAt: t1}}
	again := newOp(t, keys[0], strp(gc), rot[:2])
	if _, err := AssimilateOp(did, log2, again, t1.Add(time.Hour)); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("nullifying a key-0 op: %v", err)
	}
	// Nullified entries are ignored as prev and in the history.
	rec := newOp(t, keys[0], strp(gc), rot)
	res, err := AssimilateOp(did, log, rec, t1.Add(5*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	full := append(append([]AuditEntry{}, log...), AuditEntry{DID: did, Operation: rec, CID: res.CID.String(), CreatedAt: t1.Add(5 * time.Hour)})
	full[1].Nullified, full[2].Nullified = true, true
	onNullified := newOp(t, keys[0], strp(log[2].CID), rot)
	if _, err := AssimilateOp(did, full, onNullified, t1.Add(6*time.Hour)); !errors.Is(err, ErrMisordered) {
		t.Errorf("prev is nullified: %v", err)
	}
	next := newOp(t, keys[2], strp(res.CID.String()), rot)
	if _, err := AssimilateOp(did, full, next, t1.Add(6*time.Hour)); err != nil {
		t.Errorf("update after recovery: %v", err)
	}
}

func TestCheckNewOpLimits(t *testing.T) {
	k := fixedKey(t, 1)
	rot := []string{k.Public().DIDKey()}
	ok := newOp(t, k, nil, rot)
	if err := CheckNewOpLimits(ok); err != nil {
		t.Fatal(err)
	}
	ts := &Tombstone{Prev: cidStr(t, ok)}
	_ = ts.Sign(k)
	if err := CheckNewOpLimits(ts); err != nil {
		t.Fatal(err)
	}
	mod := func(f func(o *Operation)) Op {
		o := newOp(t, k, nil, rot)
		f(o)
		if err := o.Sign(k); err != nil {
			t.Fatal(err)
		}
		return o
	}
	var six []string
	for i := 0; i < 6; i++ {
		six = append(six, fixedKey(t, byte(40+i)).Public().DIDKey())
	}
	for name, op := range map[string]Op{
		"legacy":         signedLegacy(t, k),
		"no keys":        mod(func(o *Operation) { o.RotationKeys = nil }),
		"six keys":       mod(func(o *Operation) { o.RotationKeys = six }),
		"duplicate key":  mod(func(o *Operation) { o.RotationKeys = []string{rot[0], rot[0]} }),
		"bad rot key":    mod(func(o *Operation) { o.RotationKeys = []string{"did:key:zNope"} }),
		"bad vm key":     mod(func(o *Operation) { o.VerificationMethods["x"] = "did:key:z0OIl" }),
		"vm no prefix":   mod(func(o *Operation) { o.VerificationMethods["x"] = "zQ3sh" }),
		"long vm id":     mod(func(o *Operation) { o.VerificationMethods[strings.Repeat("a", 33)] = rot[0] }),
		"dup aka":        mod(func(o *Operation) { o.AlsoKnownAs = []string{"at://a", "at://a"} }),
		"long aka":       mod(func(o *Operation) { o.AlsoKnownAs = []string{"at://" + strings.Repeat("a", 254)} }),
		"long endpoint":  mod(func(o *Operation) { o.Services["x"] = Service{Type: "T", Endpoint: strings.Repeat("e", 513)} }),
		"too many svcs":  mod(func(o *Operation) { o.Services = manyServices(11) }),
		"eleven methods": mod(func(o *Operation) { o.VerificationMethods = manyMethods(11, rot[0]) }),
	} {
		if err := CheckNewOpLimits(op); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: %v", name, err)
		}
	}
	unsigned := &Operation{RotationKeys: rot}
	if err := CheckNewOpLimits(unsigned); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	// Exactly at the limits is fine (5 keys, 10 methods, 258-char aka).
	edge := mod(func(o *Operation) {
		o.RotationKeys = six[:5]
		o.VerificationMethods = manyMethods(10, rot[0])
		o.AlsoKnownAs = []string{"at://" + strings.Repeat("a", 253)}
	})
	if err := CheckNewOpLimits(edge); err != nil {
		t.Errorf("edge: %v", err)
	}
}

func manyServices(n int) map[string]Service {
	m := map[string]Service{}
	for i := 0; i < n; i++ {
		m[string(rune('a'+i))] = Service{Type: "T", Endpoint: "https://x"}
	}
	return m
}

func manyMethods(n int, key string) map[string]string {
	m := map[string]string{}
	for i := 0; i < n; i++ {
		m[string(rune('a'+i))] = key
	}
	return m
}

func TestSizeLimitExact(t *testing.T) {
	k := fixedKey(t, 1)
	rot := []string{k.Public().DIDKey()}
	// Grow one alsoKnownAs entry set until the op crosses 7500 bytes.
	o := newOp(t, k, nil, rot)
	o.AlsoKnownAs = nil
	for i := 0; i < 40; i++ {
		o.AlsoKnownAs = append(o.AlsoKnownAs, "at://"+strings.Repeat(string(rune('a'+i%26)), 200+i))
	}
	_ = o.Sign(k)
	b, _ := o.SignedBytes()
	if len(b) <= MaxOpBytes {
		t.Fatalf("test op only %d bytes", len(b))
	}
	err := CheckNewOpLimits(o)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("oversize: %v", err)
	}
}

// ---- JSON ----

func TestParseOperationJSON(t *testing.T) {
	k := fixedKey(t, 1)
	op := newOp(t, k, nil, []string{k.Public().DIDKey()})
	js, err := op.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := `{"type":"plc_operation","verificationMethods":{"atproto":"` + k.Public().DIDKey() + `"},"rotationKeys":["`
	if !strings.HasPrefix(string(js), wantPrefix) || !strings.HasSuffix(string(js), `"prev":null,"sig":"`+op.Sig+`"}`) {
		t.Fatalf("JSON form: %s", js)
	}
	back, err := ParseOperationJSON(js)
	if err != nil || !reflect.DeepEqual(back, op) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, op)
	}

	good := `{"type":"plc_tombstone","prev":"bafyreifafe44xylxagcom47xb3lrya5pysu3b7zfjmmmitiuimhmgmerze","sig":"abc"}`
	if _, err := ParseOperationJSON([]byte(good)); err != nil {
		t.Fatal(err)
	}
	legacy := `{"type":"create","signingKey":"a","recoveryKey":"b","handle":"h","service":"s","prev":null}`
	if lc, err := ParseOperationJSON([]byte(legacy)); err != nil || lc.Signature() != "" {
		t.Fatalf("unsigned legacy: %v", err)
	}
	opBase := `"rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null`
	for name, in := range map[string]string{
		"not json":            `{`,
		"array":               `[]`,
		"no type":             `{"prev":null}`,
		"unknown type":        `{"type":"plc_nope","prev":null,"sig":"x"}`,
		"numeric type":        `{"type":1}`,
		"extra field":         `{"type":"plc_tombstone","prev":"bafyreifafe44xylxagcom47xb3lrya5pysu3b7zfjmmmitiuimhmgmerze","sig":"x","did":"x"}`,
		"tombstone null prev": `{"type":"plc_tombstone","prev":null,"sig":"x"}`,
		"tombstone no prev":   `{"type":"plc_tombstone","sig":"x"}`,
		"bad prev cid":        `{"type":"plc_tombstone","prev":"notacid","sig":"x"}`,
		"empty sig":           `{"type":"plc_tombstone","prev":"bafyreifafe44xylxagcom47xb3lrya5pysu3b7zfjmmmitiuimhmgmerze","sig":""}`,
		"numeric sig":         `{"type":"plc_tombstone","prev":"bafyreifafe44xylxagcom47xb3lrya5pysu3b7zfjmmmitiuimhmgmerze","sig":5}`,
		"missing services":    `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"prev":null}`,
		"keys not array":      `{"type":"plc_operation","rotationKeys":"k","verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null}`,
		"key not string":      `{"type":"plc_operation","rotationKeys":[1],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null}`,
		"vm not string":       `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{"a":true},"alsoKnownAs":[],"services":{},"prev":null}`,
		"service extra":       `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{"a":{"type":"t","endpoint":"e","x":1}},"prev":null}`,
		"service no endpoint": `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{"a":{"type":"t"}},"prev":null}`,
		"legacy with prev":    `{"type":"create","signingKey":"a","recoveryKey":"b","handle":"h","service":"s","prev":"bafyreifafe44xylxagcom47xb3lrya5pysu3b7zfjmmmitiuimhmgmerze"}`,
		"legacy missing":      `{"type":"create","signingKey":"a","handle":"h","service":"s","prev":null}`,
		"duplicate key":       `{"type":"plc_operation",` + opBase + `,"prev":null}`,
		"link in map":         `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{"a":{"$link":"bafyreifafe44xylxagcom47xb3lrya5pysu3b7zfjmmmitiuimhmgmerze"}},"alsoKnownAs":[],"services":{},"prev":null}`,
		"float":               `{"type":"plc_operation","rotationKeys":[1.5],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null}`,
	} {
		op, err := ParseOperationJSON([]byte(in))
		if !errors.Is(err, ErrMalformedOp) || op != nil {
			t.Errorf("%s: got %v, %v", name, op, err)
		}
	}
}

func TestAuditEntryJSON(t *testing.T) {
	v := vecNullificationAt72h()
	log := v.audit(t)
	js, err := json.Marshal(log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"createdAt":"2025-07-30T00:00:00.000Z"`) || !strings.Contains(string(js), `"nullified":true`) {
		t.Fatalf("audit JSON %s", js)
	}
	var back []AuditEntry
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, log) {
		t.Fatalf("round trip differs")
	}
	if err := ValidateAuditLog(v.did, back); err != nil {
		t.Fatal(err)
	}
	var e AuditEntry
	for name, in := range map[string]string{
		"bad op":   `{"did":"did:plc:huyin2bxfj3bpg3gjq64nazd","operation":{"type":"x"},"cid":"x","nullified":false,"createdAt":"2025-07-30T00:00:00.000Z"}`,
		"no op":    `{"did":"did:plc:huyin2bxfj3bpg3gjq64nazd","cid":"x","nullified":false,"createdAt":"2025-07-30T00:00:00.000Z"}`,
		"bad date": `{"did":"did:plc:huyin2bxfj3bpg3gjq64nazd","operation":{"type":"plc_tombstone","prev":"bafyreifafe44xylxagcom47xb3lrya5pysu3b7zfjmmmitiuimhmgmerze","sig":"x"},"cid":"x","createdAt":"yesterday"}`,
		"bad did":  `{"did":"nope","operation":{"type":"plc_tombstone","prev":"bafyreifafe44xylxagcom47xb3lrya5pysu3b7zfjmmmitiuimhmgmerze","sig":"x"},"cid":"x","createdAt":"2025-07-30T00:00:00.000Z"}`,
	} {
		if err := json.Unmarshal([]byte(in), &e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// ---- documents ----

func TestDocument(t *testing.T) {
	// The example of the did:plc specification.
	d := &DocumentData{
		DID:                 "did:plc:7iza6de2dwap2sbkpav7c6c6",
		VerificationMethods: map[string]string{"atproto": "did:key:zDnaeh9v2RmcMo13Du2d6pjUf5bZwtauYxj3n9dYjw4EZUAR7"},
		RotationKeys: []string{
			"did:key:zDnaedvvAsDE6H3BDdBejpx9ve2Tz95cymyCAKF66JbyMh1Lt",
			"did:key:zDnaeh9v2RmcMo13Du2d6pjUf5bZwtauYxj3n9dYjw4EZUAR7",
		},
		AlsoKnownAs: []string{"at://alice.test"},
		Services:    atprotoPDS("https://example.test"),
	}
	js, err := json.Marshal(d.Document())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"@context":["https://www.w3.org/ns/did/v1","https://w3id.org/security/multikey/v1","https://w3id.org/security/suites/ecdsa-2019/v1"],` +
		`"id":"did:plc:7iza6de2dwap2sbkpav7c6c6","alsoKnownAs":["at://alice.test"],` +
		`"verificationMethod":[{"id":"did:plc:7iza6de2dwap2sbkpav7c6c6#atproto","type":"Multikey","controller":"did:plc:7iza6de2dwap2sbkpav7c6c6","publicKeyMultibase":"zDnaeh9v2RmcMo13Du2d6pjUf5bZwtauYxj3n9dYjw4EZUAR7"}],` +
		`"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://example.test"}]}`
	if string(js) != want {
		t.Fatalf("document\n got %s\nwant %s", js, want)
	}

	// Mixed key types: methods ordered by name (shorter first), contexts in
	// order of first use, unknown key types add none.
	d.VerificationMethods = map[string]string{
		"atproto": dholmsSigning,
		"other":   "did:key:zDnaeh9v2RmcMo13Du2d6pjUf5bZwtauYxj3n9dYjw4EZUAR7",
		"ed":      "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
	}
	doc := d.Document()
	wantCtx := []string{ContextDID, ContextMultikey, ContextP256, ContextSecp256k1}
	if !reflect.DeepEqual(doc.Context, wantCtx) {
		t.Fatalf("contexts %v", doc.Context)
	}
	if len(doc.VerificationMethod) != 3 || doc.VerificationMethod[0].ID != string(d.DID)+"#ed" ||
		doc.VerificationMethod[0].PublicKeyMultibase != "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK" {
		t.Fatalf("methods %+v", doc.VerificationMethod)
	}
	// Empty data renders empty arrays, not nulls.
	empty, _ := json.Marshal((&DocumentData{DID: "did:plc:x"}).Document())
	if !strings.Contains(string(empty), `"alsoKnownAs":[],"verificationMethod":[],"service":[]`) {
		t.Fatalf("empty document %s", empty)
	}
}

func TestLegacyNormalizePrefixes(t *testing.T) {
	for in, want := range map[string]string{
		"alice.test":         "at://alice.test",
		"at://alice.test":    "at://alice.test",
		"https://alice.test": "at://alice.test",
		"http://alice.test":  "at://alice.test",
	} {
		if got := ensureATPrefix(in); got != want {
			t.Errorf("ensureATPrefix(%q) = %q", in, got)
		}
	}
	lc := &LegacyCreate{SigningKey: "s", RecoveryKey: "r", Handle: "h.test", Service: "pds.test"}
	n := lc.Normalize()
	if n.Services["atproto_pds"].Endpoint != "https://pds.test" || !reflect.DeepEqual(n.RotationKeys, []string{"r", "s"}) || n.Prev != nil {
		t.Fatalf("normalized %+v", n)
	}
}

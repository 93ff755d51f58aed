package identity

import (
	"context"
	"testing"
)

func BenchmarkCachedLookup(b *testing.B) {
	ctx := context.Background()
	up := newFakeUpstream()
	up.setDoc(b, testDID1, "alice.test")
	up.handles["alice.test"] = testDID1
	c := NewCachingResolver(up, CacheOptions{})
	if _, err := c.Lookup(ctx, testDID1.AtIdentifier()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ident, err := c.Lookup(ctx, testDID1.AtIdentifier())
		if err != nil || ident.Handle != "alice.test" {
			b.Fatal(err)
		}
	}
}

func BenchmarkCachedResolveDIDParallel(b *testing.B) {
	ctx := context.Background()
	up := newFakeUpstream()
	up.setDoc(b, testDID1, "alice.test")
	c := NewCachingResolver(up, CacheOptions{})
	if _, err := c.ResolveDID(ctx, testDID1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.ResolveDID(ctx, testDID1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkParseDIDDocument(b *testing.B) {
	doc := docJSON(b, testDID1, "alice.test", newK256(b), "https://pds.example.com")
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := ParseDIDDocument(doc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := NewIdentity(d); err != nil {
			b.Fatal(err)
		}
	}
}

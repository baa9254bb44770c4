package tokenvault

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"testing"
)

// latestTestOps returns n log entries under keys of 32 random bytes and a
// token, each key in up to three entries, in a random order of their
// sequence numbers.
func latestTestOps(n int) []logOp {
	var keys [][]byte
	for len(keys) < n {
		fingerprint := make([]byte, fingerprintSize)
		rand.Read(fingerprint)

		// Some keys share the first eight bytes, so that the comparison of
		// whole keys runs too.
		if len(keys) > 0 && len(keys)%7 == 0 {
			copy(fingerprint, keys[len(keys)-1][:8])
		}
		key := append(fingerprint, fmt.Sprintf("tok_%036d", len(keys))...)
		for range 1 + len(keys)%3 {
			keys = append(keys, key)
		}
	}

	ops := make([]logOp, 0, n)
	for i, seq := range mathrand.Perm(n) {
		op := logAdd
		if i%5 == 0 {
			op = logRemove
		}
		ops = append(ops, logOp{seq: uint64(seq), op: op, key: keys[i]})
	}
	return ops
}

func TestLatestOpsKeepsNewestPerKey(t *testing.T) {
	ops := latestTestOps(5000)

	newest := make(map[string]logOp)
	for _, op := range ops {
		if old, ok := newest[string(op.key)]; !ok || op.seq > old.seq {
			newest[string(op.key)] = op
		}
	}

	latest := latestOps(slices.Clone(ops))
	if len(latest) != len(newest) {
		t.Fatalf("latestOps kept %d entries, want one for each of %d keys", len(latest), len(newest))
	}
	for i, op := range latest {
		if i > 0 && bytes.Compare(latest[i-1].key, op.key) >= 0 {
			t.Fatalf("entries %d and %d are not in ascending key order", i-1, i)
		}
		if want := newest[string(op.key)]; op.seq != want.seq || op.op != want.op {
			t.Fatalf("entry %d has sequence %d and operation %d, want the newest: %d and %d", i, op.seq, op.op, want.seq, want.op)
		}
	}
}

// BenchmarkLatestOps sorts a pass of a merge of the fingerprint log.
func BenchmarkLatestOps(b *testing.B) {
	ops := latestTestOps(mergePass)
	work := make([]logOp, len(ops))
	b.ReportAllocs()
	for b.Loop() {
		copy(work, ops)
		latestOps(work)
	}
}

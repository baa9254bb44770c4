package tokenvault

import (
	"bytes"
	"cmp"
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

// referenceLatestOps is latestOps written plainly: a stable sort by key and
// then sequence number, keeping the last entry of each key.
func referenceLatestOps(ops []logOp) []logOp {
	sorted := slices.Clone(ops)
	slices.SortStableFunc(sorted, func(a, b logOp) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})

	var latest []logOp
	for i, op := range sorted {
		if i+1 < len(sorted) && bytes.Equal(sorted[i+1].key, op.key) {
			continue
		}
		latest = append(latest, op)
	}
	return latest
}

// checkLatestOps compares latestOps(ops) with referenceLatestOps. When
// several entries of a key share the newest sequence number, latestOps may
// keep any of them, so the check only requires the kept entry to be one.
func checkLatestOps(t *testing.T, ops []logOp) {
	t.Helper()
	got := latestOps(slices.Clone(ops))
	want := referenceLatestOps(ops)
	if len(got) != len(want) {
		t.Fatalf("latestOps kept %d of %d entries, want %d", len(got), len(ops), len(want))
	}

	for i := range got {
		if !bytes.Equal(got[i].key, want[i].key) {
			t.Fatalf("entry %d has key %x, want %x", i, got[i].key, want[i].key)
		}
		if got[i].seq != want[i].seq {
			t.Fatalf("entry %d, key %x, has sequence %d, want %d", i, got[i].key, got[i].seq, want[i].seq)
		}
		inInput := slices.ContainsFunc(ops, func(op logOp) bool {
			return bytes.Equal(op.key, got[i].key) && op.seq == got[i].seq && op.op == got[i].op && op.token == got[i].token
		})
		if !inInput {
			t.Fatalf("entry %d, key %x sequence %d, has operation %d and token %q, which no input entry has", i, got[i].key, got[i].seq, got[i].op, got[i].token)
		}
	}
}

// randomLatestKey returns a key of one of the shapes that keyPrefix must
// order right: empty, shorter than eight bytes, eight zero bytes and more,
// a long prefix shared with other keys, or random bytes.
func randomLatestKey(r *mathrand.Rand) []byte {
	switch r.IntN(5) {
	case 0:
		return []byte{}
	case 1:
		key := make([]byte, r.IntN(8))
		for i := range key {
			key[i] = byte(r.IntN(3))
		}
		return key
	case 2:
		return make([]byte, 8+r.IntN(3))
	case 3:
		return append(bytes.Repeat([]byte{0xab}, 40), byte(r.IntN(3)))
	default:
		key := make([]byte, r.IntN(20))
		for i := range key {
			key[i] = byte(r.IntN(256))
		}
		return key
	}
}

func TestLatestOpsMatchesReference(t *testing.T) {
	checkLatestOps(t, nil)
	checkLatestOps(t, []logOp{{key: nil}, {key: []byte{}, seq: 1}, {key: []byte{0}}})

	r := mathrand.New(mathrand.NewPCG(1, 2))
	for range 5000 {
		keys := make([][]byte, 1+r.IntN(40))
		for i := range keys {
			keys[i] = randomLatestKey(r)
		}

		// Sequence numbers below 20 repeat, within a key too.
		ops := make([]logOp, r.IntN(200))
		for i := range ops {
			key := slices.Clone(keys[r.IntN(len(keys))])
			ops[i] = logOp{seq: uint64(r.IntN(20)), op: byte(1 + r.IntN(2)), key: key, token: fmt.Sprint(i)}
		}
		checkLatestOps(t, ops)
	}
}

// FuzzLatestOps reads entries from data as a key length, a sequence number
// and an operation, one byte each, followed by the key.
func FuzzLatestOps(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 0, 0, 1, 0, 2, 1, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var ops []logOp
		for len(data) >= 3 {
			n := min(int(data[0])%12, len(data)-3)
			op := logOp{seq: uint64(data[1] % 8), op: data[2]%2 + 1, key: slices.Clone(data[3 : 3+n])}
			ops = append(ops, op)
			data = data[3+n:]
		}
		checkLatestOps(t, ops)
	})
}

package tokenvault

import (
	"strings"

	bolt "go.etcd.io/bbolt"
)

// appendFill is the page fill for buckets whose new keys sort after all
// others. bbolt's default of half a page would leave such pages half empty,
// because no later key lands behind the right edge.
const appendFill = 1.0

// expectAppends sets full pages for the token bucket at the start of a commit
// loop transaction, because most new records are opaque tokens, which sort
// by creation time after every card-shaped token. putToken lowers the fill.
func expectAppends(tx *bolt.Tx) {
	tx.Bucket(bucketTokens).FillPercent = appendFill
}

// putToken writes value under the token key. appends reports whether it sorts
// after the tokens stored before tx. When it does not, the token bucket
// returns to bbolt's default fill for the rest of tx, because nothing in tx
// raises it again.
func putToken(tx *bolt.Tx, key, value []byte, appends bool) error {
	tokens := tx.Bucket(bucketTokens)
	if !appends {
		tokens.FillPercent = bolt.DefaultFillPercent
	}
	return tokens.Put(key, value)
}

// newRecordAppends reports whether a new record goes to the right edge of
// the keys of its kind in the token bucket: true for a record with a locator,
// which the vault numbers in order, and for a FormatOpaque token. Opaque
// tokens sort before locators, so they append in the middle of the bucket,
// which full pages suit as well. One created in the same millisecond as a
// stored one may sort before it, which costs space only.
//
// NOTE: under a fixed clock (WithClock in tests), every opaque token has the
// same time, so each commit splits full pages and they end about half full,
// a third more pages than at bbolt's default fill.
func newRecordAppends(rec *Record) bool {
	return rec.Locator != "" || strings.HasPrefix(rec.Token, opaquePrefix)
}

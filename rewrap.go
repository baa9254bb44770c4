package tokenvault

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokenvault/tokenvault/internal/fernetspec"
)

// DefaultRewrapBatch is the number of records Rewrap re-encrypts per store
// transaction when RewrapOptions.BatchSize is zero.
const DefaultRewrapBatch = 500

// rewrapCursor is the metadata entry that lets an interrupted Rewrap resume:
// the primary key id, a newline, and the last token of the last committed
// batch.
const rewrapCursor = "rewrap/cursor"

// RewrapOptions configures Rewrap.
type RewrapOptions struct {
	// BatchSize is the number of records read and re-encrypted per store
	// transaction; zero means DefaultRewrapBatch.
	BatchSize int

	// AfterBatch, if set, is called after each committed batch with the
	// report so far. It runs on Rewrap's goroutine while Rewrap holds the
	// vault, so it must not call the Vault: a call can deadlock with Close.
	AfterBatch func(*RewrapReport)

	// RetireKeys removes, once the run finishes, the key check entry of
	// every key that no live record uses any more, so that the next Open
	// accepts a key ring without it. Set it only when every process that
	// writes to the store already uses the new primary key: a process still
	// encrypting under an old key would otherwise create records that a
	// ring without that key cannot read. A bbolt file is open in one
	// process only, so the condition holds for Open's vaults.
	RetireKeys bool
}

// RewrapReport is the outcome of Rewrap.
type RewrapReport struct {
	// Rewrapped is the number of records this run re-encrypted.
	Rewrapped int
	// Failed lists records that could not be decrypted. They stay under
	// their old key and count in Remaining.
	Failed []RewrapFailure
	// Remaining is the number of live records under each key once the run
	// ended, the primary included. It is nil if the run did not finish.
	Remaining map[KeyID]int
}

// RewrapFailure is a record that Rewrap could not re-encrypt.
type RewrapFailure struct {
	Token string
	KeyID KeyID
	Err   error
}

// Rewrap re-encrypts every live record that is not under the primary key,
// keeping the original Fernet timestamp and the token's expiry, in batches of
// one transaction each. If it is interrupted (ctx canceled, process killed),
// the next call resumes after the last committed batch. Records it cannot
// decrypt are reported in RewrapReport.Failed, never skipped silently.
//
// With RewrapOptions.RetireKeys, a key with no records left is then removed
// from the vault's key check, so that the next Open accepts a key ring
// without it.
func (v *Vault) Rewrap(ctx context.Context, opts *RewrapOptions) (*RewrapReport, error) {
	done, err := v.enter()
	if err != nil {
		return nil, err
	}
	defer done()

	var o RewrapOptions
	if opts != nil {
		o = *opts
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultRewrapBatch
	}

	after, err := v.loadRewrapCursor(ctx)
	if err != nil {
		return nil, err
	}
	report := &RewrapReport{}
	for {
		recs, err := v.store.Scan(ctx, after, o.BatchSize)
		if err != nil {
			return report, fmt.Errorf("tokenvault: rewrap: %w", err)
		}
		if err := v.rewrapBatch(ctx, recs, report); err != nil {
			return report, err
		}
		if len(recs) > 0 {
			after = recs[len(recs)-1].Key()
			if err := v.store.SetMetadata(ctx, rewrapCursor, []byte(string(v.keys.ids[0])+"\n"+after)); err != nil {
				return report, fmt.Errorf("tokenvault: rewrap: save progress: %w", err)
			}
		}
		if o.AfterBatch != nil {
			o.AfterBatch(report)
		}
		if len(recs) < o.BatchSize {
			break
		}
	}

	if err := v.store.SetMetadata(ctx, rewrapCursor, nil); err != nil {
		return report, fmt.Errorf("tokenvault: rewrap: clear progress: %w", err)
	}
	report.Remaining, err = v.keyUsage(ctx)
	if err != nil || !o.RetireKeys {
		return report, err
	}
	return report, v.retireKeyChecks(ctx, report.Remaining)
}

// rewrapBatch re-encrypts the records of one batch in one transaction.
func (v *Vault) rewrapBatch(ctx context.Context, recs []*Record, report *RewrapReport) error {
	primary := v.keys.ids[0]
	var swaps []CiphertextSwap
	for _, rec := range recs {
		if rec.State == StateClosed || rec.KeyID == primary {
			continue
		}
		payload, err := v.keys.decrypt(rec.KeyID, rec.Ciphertext)
		if err == nil {
			_, err = unseal(rec.Token, payload)
		}
		if err != nil {
			report.Failed = append(report.Failed, RewrapFailure{Token: rec.Token, KeyID: rec.KeyID, Err: err})
			continue
		}

		issued, _ := fernetspec.Timestamp(rec.Ciphertext)
		keyID, ciphertext, err := v.keys.encrypt(payload, issued)
		if err != nil {
			return err
		}
		swaps = append(swaps, CiphertextSwap{Key: rec.Key(), OldCiphertext: rec.Ciphertext, NewKeyID: keyID, NewCiphertext: ciphertext})
	}
	if len(swaps) == 0 {
		return nil
	}

	n, err := v.store.ReplaceCiphertexts(ctx, swaps)
	if err != nil {
		return fmt.Errorf("tokenvault: rewrap: %w", err)
	}
	report.Rewrapped += n
	return nil
}

// loadRewrapCursor returns the token to resume after, or "" to start over
// when no run was interrupted or the primary key changed since.
func (v *Vault) loadRewrapCursor(ctx context.Context) (string, error) {
	entries, err := v.store.Metadata(ctx, rewrapCursor)
	if err != nil {
		return "", fmt.Errorf("tokenvault: rewrap: load progress: %w", err)
	}
	primary, after, ok := strings.Cut(string(entries[rewrapCursor]), "\n")
	if !ok || KeyID(primary) != v.keys.ids[0] {
		return "", nil
	}
	return after, nil
}

// KeyUsage returns the number of live records under each Fernet key. It reads
// every record, so it takes time in proportion to the size of the vault.
func (v *Vault) KeyUsage(ctx context.Context) (map[KeyID]int, error) {
	done, err := v.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return v.keyUsage(ctx)
}

func (v *Vault) keyUsage(ctx context.Context) (map[KeyID]int, error) {
	usage := make(map[KeyID]int)
	after := ""
	for {
		recs, err := v.store.Scan(ctx, after, DefaultRewrapBatch)
		if err != nil {
			return nil, fmt.Errorf("tokenvault: count records per key: %w", err)
		}
		for _, rec := range recs {
			if rec.State != StateClosed {
				usage[rec.KeyID]++
			}
		}
		if len(recs) < DefaultRewrapBatch {
			return usage, nil
		}
		after = recs[len(recs)-1].Key()
	}
}

// retireKeyChecks removes the key check entry of every key other than the
// primary that no live record uses any more.
func (v *Vault) retireKeyChecks(ctx context.Context, usage map[KeyID]int) error {
	entries, err := v.store.Metadata(ctx, keyCheckFernetPrefix)
	if err != nil {
		return fmt.Errorf("tokenvault: rewrap: read key check: %w", err)
	}
	for name := range entries {
		id := KeyID(strings.TrimPrefix(name, keyCheckFernetPrefix))
		if id == v.keys.ids[0] || usage[id] > 0 {
			continue
		}
		if err := v.store.SetMetadata(ctx, name, nil); err != nil {
			return fmt.Errorf("tokenvault: rewrap: retire key %s: %w", id, err)
		}
	}
	return nil
}

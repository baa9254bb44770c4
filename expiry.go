package tokenvault

import (
	"context"
	"errors"
	"time"
)

// expiryScanPage is the number of records RecordExpirations reads at a time.
const expiryScanPage = 256

// expiryActor is the Change.Actor of the entries that RecordExpirations
// writes.
const expiryActor = "tokenvault"

// RecordExpirations writes an EventExpired for every live token whose expiry
// has passed and whose Record.ExpiryRecorded is false, and sets it, in one
// store Update per token. It returns the number of tokens it recorded. The
// history entry has Type EventExpired and the token's state as both From and
// To, because expiry changes no state: Detokenize returns ErrExpired from the
// expiry time on, whether or not it was recorded.
//
// Run it periodically, for example once a minute, so that subscribers learn
// of expiries. It checks each token again inside its Update, so concurrent
// calls, in this process or another, record each expiry once.
func (v *Vault) RecordExpirations(ctx context.Context) (int, error) {
	count := 0
	after := ""
	for {
		recs, err := v.scanPage(ctx, after)
		if err != nil {
			return count, err
		}

		now := v.now()
		for _, rec := range recs {
			if !expiryUnrecorded(rec, now) {
				continue
			}
			recorded, err := v.recordExpiration(ctx, rec.Key())
			if err != nil {
				return count, err
			}
			if recorded {
				count++
			}
		}

		if len(recs) < expiryScanPage {
			return count, nil
		}
		after = recs[len(recs)-1].Key()
	}
}

// expiryUnrecorded reports whether rec is live, expired at now, and has no
// EventExpired yet.
func expiryUnrecorded(rec *Record, now time.Time) bool {
	return rec.State != StateClosed && !rec.ExpiryRecorded && rec.Expired(now)
}

// scanPage reads one page of records as one vault operation, so that a long
// run does not hold off Close between pages.
func (v *Vault) scanPage(ctx context.Context, after string) ([]*Record, error) {
	done, err := v.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return v.store.Scan(ctx, after, expiryScanPage)
}

// recordExpiration writes the EventExpired of the record under key, unless
// another call recorded it, or the token was closed, since the caller read
// it.
func (v *Vault) recordExpiration(ctx context.Context, key string) (bool, error) {
	done, err := v.enter()
	if err != nil {
		return false, err
	}
	defer done()

	recorded := false
	_, err = v.store.Update(ctx, key, func(rec *Record) (*Change, error) {
		// A store may call fn more than once; the last call decides.
		now := v.now()
		recorded = expiryUnrecorded(rec, now)
		if !recorded {
			return nil, nil
		}
		rec.ExpiryRecorded = true
		rec.Updated = now
		return &Change{Type: EventExpired, From: rec.State, To: rec.State, Actor: expiryActor, Time: now}, nil
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}

	if recorded {
		v.notifyWritten()
	}
	return recorded, nil
}

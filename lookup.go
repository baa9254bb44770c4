package tokenvault

import (
	"context"
	"errors"
	"fmt"
)

// errOtherToken is the error of an Update function that finds the record of
// another token under a token's locator.
var errOtherToken = errors.New("tokenvault: the record under the locator has another token")

// checkLocated returns ErrIntegrity unless rec, read under locator, has that
// locator. The store sets Locator from the key of a record with one, so a
// record without it under a locator, such as one of record encoding version
// 1 written there, is damaged. Lookups would otherwise report such a record
// as not found.
func checkLocated(rec *Record, locator string) error {
	if rec.Locator != locator {
		return fmt.Errorf("record %s: has locator %q instead of its key: %w", locator, rec.Locator, ErrIntegrity)
	}
	return nil
}

// lookup calls read with the key of token's record and returns its result.
// A token that may have a locator is read under it first. A random token of
// an older version can look like one, so when the locator holds no record of
// this token, lookup reads the token itself.
func (v *Vault) lookup(token string, read func(key string) (*Record, error)) (*Record, error) {
	if locator, ok := v.locators.locatorOfToken(token); ok {
		rec, err := read(locator)
		if err == nil {
			err = checkLocated(rec, locator)
		}
		if err == nil && rec.Token == token {
			return rec, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errOtherToken) {
			return nil, err
		}
	}
	return read(token)
}

// get is Store.Get by token.
func (v *Vault) get(ctx context.Context, token string) (*Record, error) {
	return v.lookup(token, func(key string) (*Record, error) { return v.store.Get(ctx, key) })
}

// history is Store.History by token.
func (v *Vault) history(ctx context.Context, token string) (*Record, []Change, error) {
	var changes []Change
	rec, err := v.lookup(token, func(key string) (*Record, error) {
		rec, history, err := v.store.History(ctx, key)
		changes = history
		return rec, err
	})
	if err != nil {
		return nil, nil, err
	}
	return rec, changes, nil
}

// update is Store.Update by token. Under a locator, the record is checked
// inside the store's transaction, before fn is called.
func (v *Vault) update(ctx context.Context, token string, fn func(rec *Record) (*Change, error)) (*Record, error) {
	return v.lookup(token, func(key string) (*Record, error) {
		return v.store.Update(ctx, key, func(rec *Record) (*Change, error) {
			if key != token {
				if err := checkLocated(rec, key); err != nil {
					return nil, err
				}
				if rec.Token != token {
					return nil, errOtherToken
				}
			}
			return fn(rec)
		})
	})
}

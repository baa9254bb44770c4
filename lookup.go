package tokenvault

import (
	"context"
	"errors"
	"fmt"
)

// errOtherToken is what an Update function returns when the record under a
// token's locator has another token.
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

// get returns the record of token. A token that may have a locator is looked
// up under it first. A random token of an older version can look like one,
// so when the locator holds no record of this token, get tries the token
// itself.
func (v *Vault) get(ctx context.Context, token string) (*Record, error) {
	if locator, ok := v.locators.locatorOfToken(token); ok {
		rec, err := v.store.Get(ctx, locator)
		if err == nil {
			err = checkLocated(rec, locator)
		}
		if err == nil && rec.Token == token {
			return rec, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return v.store.Get(ctx, token)
}

// history is Store.History by token, looked up as get does.
func (v *Vault) history(ctx context.Context, token string) (*Record, []Change, error) {
	if locator, ok := v.locators.locatorOfToken(token); ok {
		rec, changes, err := v.store.History(ctx, locator)
		if err == nil {
			err = checkLocated(rec, locator)
		}
		if err == nil && rec.Token == token {
			return rec, changes, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, nil, err
		}
	}
	return v.store.History(ctx, token)
}

// update is Store.Update by token, looked up as get does.
func (v *Vault) update(ctx context.Context, token string, fn func(rec *Record) (*Change, error)) (*Record, error) {
	if locator, ok := v.locators.locatorOfToken(token); ok {
		rec, err := v.store.Update(ctx, locator, func(rec *Record) (*Change, error) {
			if err := checkLocated(rec, locator); err != nil {
				return nil, err
			}
			if rec.Token != token {
				return nil, errOtherToken
			}
			return fn(rec)
		})
		if !errors.Is(err, ErrNotFound) && !errors.Is(err, errOtherToken) {
			return rec, err
		}
	}
	return v.store.Update(ctx, token, fn)
}

package tokenvault

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// Metadata entries of the key check. Each Fernet key that has encrypted
// records has an entry holding a Fernet token of keyCheckPlaintext under that
// key; the index key has one entry holding its id.
const (
	keyCheckFernetPrefix = "keycheck/fernet/"
	keyCheckIndex        = "keycheck/index"
	keyCheckPlaintext    = "tokenvault key check"
)

// checkKeys fails with ErrKeyMismatch unless the key ring can decrypt every
// record the store may hold and computes the fingerprints already stored,
// then records the primary key as one that encrypts from now on.
//
// Recording the primary before any record is encrypted under it keeps the
// invariant that every key id found in a record has an entry.
func (v *Vault) checkKeys(ctx context.Context) error {
	entries, err := v.store.Metadata(ctx, "keycheck/")
	if err != nil {
		return fmt.Errorf("tokenvault: read key check: %w", err)
	}

	if id, ok := entries[keyCheckIndex]; ok && KeyID(id) != v.keys.indexID {
		return fmt.Errorf("%w: the index key (id %s) differs from the one this vault's fingerprints were made with (id %s)",
			ErrKeyMismatch, v.keys.indexID, id)
	}
	for name, check := range entries {
		id, ok := strings.CutPrefix(name, keyCheckFernetPrefix)
		if !ok {
			continue
		}
		if err := v.verifyKeyCheck(KeyID(id), check); err != nil {
			return err
		}
	}

	if _, ok := entries[keyCheckIndex]; !ok {
		if err := v.store.SetMetadata(ctx, keyCheckIndex, []byte(v.keys.indexID)); err != nil {
			return fmt.Errorf("tokenvault: write key check: %w", err)
		}
	}
	if _, ok := entries[keyCheckFernetPrefix+string(v.keys.ids[0])]; !ok {
		_, check, err := v.keys.encrypt([]byte(keyCheckPlaintext), v.now())
		if err != nil {
			return err
		}
		if err := v.store.SetMetadata(ctx, keyCheckFernetPrefix+string(v.keys.ids[0]), check); err != nil {
			return fmt.Errorf("tokenvault: write key check: %w", err)
		}
	}
	return nil
}

func (v *Vault) verifyKeyCheck(id KeyID, check []byte) error {
	if _, ok := v.keys.byID[id]; !ok {
		return fmt.Errorf("%w: records are encrypted under key id %s, which is not in the key ring; "+
			"add that key after the primary, or keep it until a rewrap leaves no records under it", ErrKeyMismatch, id)
	}
	msg, err := v.keys.decrypt(id, check)
	if err != nil || !bytes.Equal(msg, []byte(keyCheckPlaintext)) {
		return fmt.Errorf("%w: the key with id %s fails to decrypt its key check entry", ErrKeyMismatch, id)
	}
	return nil
}

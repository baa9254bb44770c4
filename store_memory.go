package tokenvault

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
)

// MemoryStore is a Store that keeps everything in memory, for tests and
// short-lived tools. Its contents are lost when the process ends.
type MemoryStore struct {
	mu            sync.RWMutex
	closed        bool
	records       map[string]*Record             // key -> record
	history       map[string][]Change            // key -> changes
	fingerprints  map[string]map[string]struct{} // fingerprint -> tokens
	deterministic map[string]string              // deterministic key -> key
	metadata      map[string][]byte
	events        []Event // the outbox; events[i].Seq == i+1
	locators      uint64  // numbers handed out by ReserveLocators
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		records:       make(map[string]*Record),
		history:       make(map[string][]Change),
		fingerprints:  make(map[string]map[string]struct{}),
		deterministic: make(map[string]string),
		metadata:      make(map[string][]byte),
	}
}

// read locks the store for reading after checking ctx and Close; the caller
// must call the returned function.
func (s *MemoryStore) read(ctx context.Context) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrStoreClosed
	}
	return s.mu.RUnlock, nil
}

func (s *MemoryStore) write(ctx context.Context) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrStoreClosed
	}
	return s.mu.Unlock, nil
}

func (s *MemoryStore) Create(ctx context.Context, rec *Record) error {
	unlock, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	return s.create(rec)
}

var _ BatchCreator = (*MemoryStore)(nil)

func (s *MemoryStore) CreateBatch(ctx context.Context, recs []*Record) ([]error, error) {
	unlock, err := s.write(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	errs := make([]error, len(recs))
	for i, rec := range recs {
		errs[i] = s.create(rec)
	}
	return errs, nil
}

// create inserts a copy of rec; the caller holds the write lock.
func (s *MemoryStore) create(rec *Record) error {
	if err := checkKeySizes(rec); err != nil {
		return err
	}
	if _, ok := s.records[rec.Key()]; ok {
		return ErrTokenExists
	}
	if _, ok := s.records[rec.Token]; ok {
		return ErrTokenExists
	}
	if len(rec.DeterministicKey) > 0 {
		if _, ok := s.deterministic[string(rec.DeterministicKey)]; ok {
			return ErrDeterministicKeyExists
		}
	}

	rec = rec.Clone()
	s.records[rec.Key()] = rec
	s.addIndexes(rec)
	s.appendEvent(CreatedEvent(rec))
	return nil
}

func (s *MemoryStore) addIndexes(rec *Record) {
	if len(rec.Fingerprint) > 0 {
		set := s.fingerprints[string(rec.Fingerprint)]
		if set == nil {
			set = make(map[string]struct{})
			s.fingerprints[string(rec.Fingerprint)] = set
		}
		set[rec.Token] = struct{}{}
	}
	if len(rec.DeterministicKey) > 0 {
		s.deterministic[string(rec.DeterministicKey)] = rec.Key()
	}
}

func (s *MemoryStore) removeIndexes(rec *Record) {
	if set := s.fingerprints[string(rec.Fingerprint)]; set != nil {
		delete(set, rec.Token)
		if len(set) == 0 {
			delete(s.fingerprints, string(rec.Fingerprint))
		}
	}
	if len(rec.DeterministicKey) > 0 {
		delete(s.deterministic, string(rec.DeterministicKey))
	}
}

func (s *MemoryStore) Get(ctx context.Context, key string) (*Record, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	rec, ok := s.records[key]
	if !ok {
		return nil, ErrNotFound
	}
	return rec.Clone(), nil
}

func (s *MemoryStore) Update(ctx context.Context, key string, fn func(rec *Record) (*Change, error)) (*Record, error) {
	unlock, err := s.write(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	old, ok := s.records[key]
	if !ok {
		return nil, ErrNotFound
	}
	rec := old.Clone()
	change, err := fn(rec)
	if err != nil {
		return nil, err
	}
	if change == nil {
		return old.Clone(), nil
	}

	// fn may keep the *Record it was given, so store a copy of it.
	rec = rec.Clone()
	rec.Token, rec.Locator = old.Token, old.Locator
	rec.Revision = old.Revision + 1
	if len(rec.DeterministicKey) > 0 && !bytes.Equal(rec.DeterministicKey, old.DeterministicKey) {
		if _, taken := s.deterministic[string(rec.DeterministicKey)]; taken {
			return nil, ErrDeterministicKeyExists
		}
	}
	entry := *change
	entry.Revision = rec.Revision
	change.Revision = rec.Revision

	s.removeIndexes(old)
	s.records[key] = rec
	s.addIndexes(rec)
	s.history[key] = append(s.history[key], entry)
	s.appendEvent(ChangeEvent(rec.Token, &entry))
	return rec.Clone(), nil
}

func (s *MemoryStore) appendEvent(ev Event) {
	ev.Seq = uint64(len(s.events)) + 1
	s.events = append(s.events, ev)
}

func (s *MemoryStore) Events(ctx context.Context, after uint64, limit int) ([]Event, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if after >= uint64(len(s.events)) || limit <= 0 {
		return []Event{}, nil
	}
	end := min(uint64(len(s.events)), after+uint64(limit))
	return append([]Event{}, s.events[after:end]...), nil
}

func (s *MemoryStore) History(ctx context.Context, key string) (*Record, []Change, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()

	rec, ok := s.records[key]
	if !ok {
		return nil, nil, ErrNotFound
	}
	return rec.Clone(), append([]Change{}, s.history[key]...), nil
}

func (s *MemoryStore) FindByDeterministicKey(ctx context.Context, key []byte) (*Record, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	recKey, ok := s.deterministic[string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return s.records[recKey].Clone(), nil
}

func (s *MemoryStore) FindByFingerprint(ctx context.Context, fingerprint []byte) ([]string, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	tokens := []string{}
	for token := range s.fingerprints[string(fingerprint)] {
		tokens = append(tokens, token)
	}
	slices.Sort(tokens)
	return tokens, nil
}

// Scan sorts the keys on every call, which is fine at the sizes this store
// is meant for.
func (s *MemoryStore) Scan(ctx context.Context, after string, limit int) ([]*Record, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	keys := make([]string, 0, len(s.records))
	for key := range s.records {
		if key > after {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	if len(keys) > limit {
		keys = keys[:max(limit, 0)]
	}

	recs := make([]*Record, len(keys))
	for i, key := range keys {
		recs[i] = s.records[key].Clone()
	}
	return recs, nil
}

func (s *MemoryStore) ReplaceCiphertexts(ctx context.Context, swaps []CiphertextSwap) (int, error) {
	unlock, err := s.write(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()

	applied := 0
	for _, swap := range swaps {
		rec, ok := s.records[swap.Key]
		if !ok || rec.State == StateClosed || !bytes.Equal(rec.Ciphertext, swap.OldCiphertext) {
			continue
		}
		rec.KeyID = swap.NewKeyID
		rec.Ciphertext = bytes.Clone(swap.NewCiphertext)
		applied++
	}
	return applied, nil
}

func (s *MemoryStore) Metadata(ctx context.Context, prefix string) (map[string][]byte, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	entries := make(map[string][]byte)
	for name, value := range s.metadata {
		if strings.HasPrefix(name, prefix) {
			entries[name] = bytes.Clone(value)
		}
	}
	return entries, nil
}

func (s *MemoryStore) SetMetadata(ctx context.Context, name string, value []byte) error {
	unlock, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	if name == "" {
		return errors.New("tokenvault: metadata name is empty")
	}
	if value == nil {
		delete(s.metadata, name)
		return nil
	}
	s.metadata[name] = bytes.Clone(value)
	return nil
}

var _ LocatorReserver = (*MemoryStore)(nil)

func (s *MemoryStore) ReserveLocators(ctx context.Context, n uint64) (uint64, error) {
	unlock, err := s.write(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()

	first := s.locators
	if n > math.MaxUint64-first {
		return 0, errLocatorsExhausted
	}
	s.locators += n
	return first, nil
}

// Close empties the store. Later calls return nil.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.records, s.history, s.fingerprints, s.deterministic, s.metadata, s.events = nil, nil, nil, nil, nil, nil
	return nil
}

package tokenvault

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DefaultLockTimeout is how long OpenBoltStore waits for the file lock.
const DefaultLockTimeout = time.Second

// boltSchemaVersion is the layout of buckets and values that this version
// writes. OpenBoltStore upgrades files of versions 1 to 5 and rejects files
// of any other version. Version 1 had no fingerprint log, version 2 no runs
// of the fingerprint index, version 3 no records under locators, version 4
// kept one entry per key in the runs, and version 5 one entry per key in the
// log and the outbox.
const boltSchemaVersion = 6

// Buckets of a tokenvault bbolt file.
var (
	bucketSchema         = []byte("tokenvault")      // "version" -> uint32
	bucketTokens         = []byte("tokens")          // key (locator or token) -> record
	bucketFingerprints   = []byte("fingerprints")    // fingerprint || token -> empty
	bucketFingerprintLog = []byte("fingerprint-log") // sequenced blocks (store_bolt_seqblocks.go) of fingerprint || add or remove || token
	bucketDeterministic  = []byte("deterministic")   // deterministic key -> record key
	bucketHistory        = []byte("history")         // len(key) || key || revision -> change
	bucketMetadata       = []byte("metadata")        // name -> value
	bucketEvents         = []byte("events")          // sequenced blocks (store_bolt_seqblocks.go) of events

	keySchemaVersion = []byte("version")
	keyLocators      = []byte("locators") // in bucketSchema: numbers reserved for locators, uint64
)

var allBuckets = [][]byte{bucketSchema, bucketTokens, bucketFingerprints, bucketFingerprintLog, bucketFingerprintRuns, bucketDeterministic, bucketHistory, bucketMetadata, bucketEvents}

// BoltOptions configures OpenBoltStore. A nil *BoltOptions means defaults.
type BoltOptions struct {
	// LockTimeout is how long to wait for another process to release the
	// file; zero means DefaultLockTimeout.
	LockTimeout time.Duration

	// FingerprintMergeAfter is how many new fingerprint entries the store
	// appends to its log before it merges them into a sorted run: zero
	// for DefaultFingerprintMergeAfter (2^18), or up to 2^24. The store keeps
	// about 24 bytes of memory per unmerged entry, 6 MiB at the default. A larger
	// value makes fewer and larger runs, so each entry is rewritten fewer
	// times and a lookup reads fewer runs, and a smaller one saves memory. When writes outpace the merge and the log
	// reaches twice this many entries, each write waits for the running
	// merge to end, so that memory stays bounded.
	FingerprintMergeAfter int

	// Logger receives an error record for each failed background merge of
	// the fingerprint log, and an info record when the open upgrades the
	// file's schema. Each record has the file's path, and errors name no
	// value or token. Nil discards them.
	Logger *slog.Logger
}

// maxFingerprintMergeAfter bounds BoltOptions.FingerprintMergeAfter. At the
// bound, the recent index's buckets take 64 MiB and a merge lists up to 2^25
// sequence numbers, 256 MiB.
const maxFingerprintMergeAfter = 1 << 24

// BoltStore is the Store kept in one bbolt file. Creates and Updates from
// concurrent goroutines share commits through a commit queue, and every write
// is on disk (fsync) before the method returns. New fingerprint index entries
// are appended to a log, which a background goroutine writes to a new sorted
// run every BoltOptions.FingerprintMergeAfter entries. It also merges the
// four newest runs, when they have one size, into one run four times as
// large.
//
// NOTE: a commit runs the write functions of every write in it, Update's fn
// among them, on the goroutine of one of their callers. An fn that calls
// runtime.Goexit (t.FailNow in a test) therefore ends that caller's
// goroutine, which may be another caller's. Its own Update and the ended
// caller's write fail, and the other writes of the commit are retried.
type BoltStore struct {
	db      *bolt.DB
	path    string
	timeout time.Duration
	lock    *fileLock // held from open to Close, across reopens and Compact

	guard   *damageGuard
	commits *committer

	// mu is held shared by every method and exclusively by Close, Compact
	// and reopen, so that they replace or close the file only after the
	// calls in flight.
	mu       sync.RWMutex
	closed   bool
	closeErr error
	runlock  func() // mu.RUnlock, bound once so that enter does not allocate

	reopenAfter int // page allocations after which writes reopen the file
	reopens     int // times the file was reopened, for tests

	recent     *recentIndex
	mergeAfter int
	merge      mergeState
	logger     *slog.Logger // never nil
}

var _ Store = (*BoltStore)(nil)

// OpenBoltStore opens or creates the bbolt file at path with mode 0600 and
// checks its schema version, upgrading a file of an older schema version (1
// to 5) to the current one, 6, in place.
// It returns ErrLocked if the file stays locked for the lock timeout, and
// ErrSchemaVersion if it has a schema version other than 1 to 6. It returns
// ErrNotVault if the file is a bbolt file of some other program, or if bbolt
// rejects its header as invalid, of another bbolt version or damaged. In the header case the error also wraps bbolt's
// ErrInvalid, ErrVersionMismatch or ErrChecksum.
func OpenBoltStore(path string, opts *BoltOptions) (*BoltStore, error) {
	timeout := DefaultLockTimeout
	mergeAfter := DefaultFingerprintMergeAfter
	logger := slog.New(slog.DiscardHandler)
	if opts != nil {
		if opts.Logger != nil {
			logger = opts.Logger
		}
		if opts.LockTimeout > 0 {
			timeout = opts.LockTimeout
		}
		if opts.FingerprintMergeAfter < 0 || opts.FingerprintMergeAfter > maxFingerprintMergeAfter {
			return nil, fmt.Errorf("tokenvault: BoltOptions.FingerprintMergeAfter is %d, want 0 (the default) to %d", opts.FingerprintMergeAfter, maxFingerprintMergeAfter)
		}
		if opts.FingerprintMergeAfter > 0 {
			mergeAfter = opts.FingerprintMergeAfter
		}
	}

	path = resolveLinks(path)
	lock, err := lockDatabase(path, timeout, logger)
	if err != nil {
		return nil, err
	}
	db, from, err := openBolt(path, timeout)
	if err != nil {
		lock.release()
		return nil, err
	}
	if from != 0 {
		logger.Info(fmt.Sprintf("upgraded the file from schema version %d to %d, which builds that read version %d cannot open", from, boltSchemaVersion, from), "path", path)
	}
	guard := &damageGuard{}
	var recent *recentIndex
	err = guard.run(func() error {
		// No merge runs yet, so a pending run is one that a merge was
		// writing when the file was last closed. The log still has its
		// entries. Reopen and Compact must not do this, because their
		// store's merge may be writing that run.
		// A damaged list is left as it is: lookups report it.
		if err := dropLeftoverRun(db); err != nil && !errors.Is(err, ErrIntegrity) {
			return err
		}
		var err error
		recent, err = loadRecentIndex(db, mergeAfter)
		return err
	})
	if err != nil {
		if !errors.Is(err, errDamaged) {
			db.Close()
			lock.release()
		}
		return nil, fmt.Errorf("tokenvault: open %s: %w", path, err)
	}
	removeCompactLeftovers(path, logger)
	s := &BoltStore{
		db: db, path: path, timeout: timeout, lock: lock, guard: guard, commits: newCommitter(db, guard), reopenAfter: reopenPages,
		recent: recent, mergeAfter: mergeAfter, merge: mergeState{passSize: mergePass, fanout: runFanout}, logger: logger,
	}
	s.runlock = s.mu.RUnlock
	return s, nil
}

// resolveLinks returns the file that path names through symbolic links, so
// that the lock file and Compact's new file go beside the database itself,
// and Compact replaces the database rather than a link to it. A link to a
// file that does not exist yet is followed one step.
func resolveLinks(path string) string {
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		return resolved
	}
	target, err := os.Readlink(path)
	if err != nil {
		return path
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(path), target)
	}
	return target
}

// boltLockRetry is the pause between bbolt's attempts to lock the file
// (flockRetryTimeout in bbolt v1.5.0). bbolt gives up when less than one
// pause is left of its timeout, so openBolt adds one, and a caller's lock
// timeout is the least time it waits.
const boltLockRetry = 50 * time.Millisecond

// openBolt opens the bbolt file at path and checks or creates its schema.
// from is the schema version it upgraded the file from, or 0.
func openBolt(path string, timeout time.Duration) (db *bolt.DB, from uint32, err error) {
	guard := &damageGuard{}
	err = guard.run(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout + boltLockRetry, FreelistType: bolt.FreelistMapType})
		return err
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, 0, lockedError(path, timeout)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
		// Both meta pages failed bbolt's validation: the file is not bbolt,
		// was written by another bbolt file format version, or is damaged.
		return nil, 0, fmt.Errorf("%w: %s has no valid bbolt header: %w", ErrNotVault, path, err)
	case err != nil:
		return nil, 0, fmt.Errorf("tokenvault: open %s: %w", path, err)
	}
	initialize := func(tx *bolt.Tx) error { return initSchema(tx, &from) }
	if err := guard.run(func() error { return db.Update(initialize) }); err != nil {
		db.Close()
		return nil, 0, fmt.Errorf("tokenvault: open %s: %w", path, err)
	}
	return db, from, nil
}

// initSchema creates the buckets of a new file, or checks the schema version
// of an existing one. It upgrades version 1 to 5, setting *from to it.
func initSchema(tx *bolt.Tx, from *uint32) error {
	if b := tx.Bucket(bucketSchema); b != nil {
		v := b.Get(keySchemaVersion)
		if len(v) != 4 {
			return fmt.Errorf("%w: schema version entry is missing", ErrNotVault)
		}
		got := binary.BigEndian.Uint32(v)
		if got >= 1 && got < boltSchemaVersion {
			if err := upgradeSchema(tx); err != nil {
				return err
			}
			got, *from = boltSchemaVersion, got
		}
		if got != boltSchemaVersion {
			return fmt.Errorf("%w: the file has schema version %d, this build reads version %d", ErrSchemaVersion, got, boltSchemaVersion)
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: bucket %q is missing", ErrNotVault, name)
			}
		}
		return nil
	}

	empty := true
	tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
	if !empty {
		return fmt.Errorf("%w: it has buckets but no tokenvault schema", ErrNotVault)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketSchema).Put(keySchemaVersion, binary.BigEndian.AppendUint32(nil, boltSchemaVersion))
}

// upgradeSchema adds the fingerprint log and the bucket of fingerprint runs
// to a file of schema version 1 or 2, whichever it lacks. Its sorted
// fingerprint index needs no change, and versions 3 to 5 need none at all:
// their runs, log and outbox read as one-entry blocks. Builds that read an
// older version then reject the file, because they would not read the new
// buckets, the records under locators or the blocks of the runs, the log or
// the outbox.
func upgradeSchema(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketFingerprintLog, bucketFingerprintRuns} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketSchema).Put(keySchemaVersion, binary.BigEndian.AppendUint32(nil, boltSchemaVersion))
}

// Path returns the file the store was opened from.
func (s *BoltStore) Path() string { return s.path }

// Close waits for the writes in flight, then closes the bbolt file. A merge
// of the fingerprint log stops at its next transaction; the log keeps what it
// did not merge. Later calls return the first call's result.
func (s *BoltStore) Close() error {
	err := s.closeFile()
	s.merge.wait()
	return err
}

func (s *BoltStore) closeFile() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if !s.guard.damaged.Load() {
			s.lock.release() // after a failed reopen or Compact
		}
		return s.closeErr
	}
	s.closed = true
	if s.guard.damaged.Load() {
		// NOTE: bbolt may still hold the locks of the call that panicked,
		// so closing it could block forever. The file and its lock stay
		// open until the process ends.
		s.closeErr = errDamaged
		return s.closeErr
	}
	s.closeErr = s.db.Close()
	s.lock.release()
	return s.closeErr
}

// view runs fn in a read transaction after checking ctx. fn must not start a
// write transaction: bbolt can deadlock when a write needs to grow the file
// while a read transaction of the same goroutine holds the mmap.
func (s *BoltStore) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	unlock, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return storeError(s.guard.run(func() error { return s.db.View(fn) }))
}

func (s *BoltStore) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	grown, err := s.updateEntered(ctx, fn)
	if grown {
		s.reopen()
	}
	return err
}

func (s *BoltStore) updateEntered(ctx context.Context, fn func(tx *bolt.Tx) error) (grown bool, err error) {
	unlock, err := s.enter(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	err = storeError(s.guard.run(func() error { return s.db.Update(fn) }))
	return s.grown(), err
}

// enter checks ctx and Close, and holds mu shared until unlock is called.
func (s *BoltStore) enter(ctx context.Context) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrStoreClosed
	}
	return s.runlock, nil
}

// storeError maps bbolt's error for a closed database to ErrStoreClosed.
func storeError(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrStoreClosed
	}
	return err
}

// Create commits through the store's commit queue, so that concurrent calls
// share a commit.
func (s *BoltStore) Create(ctx context.Context, rec *Record) error {
	unlock, err := s.enter(ctx)
	if err != nil {
		return err
	}
	unlock()
	if err := checkRecordSizes(rec); err != nil {
		return err
	}

	key, value := []byte(rec.Key()), encodeRecord(rec)
	return s.write(ctx, 1, func(tx *bolt.Tx) error {
		if err := createConflict(tx, rec, key); err != nil {
			return noWrite(err)
		}
		return s.putRecord(tx, rec, key, value)
	})
}

// createConflict returns ErrTokenExists or ErrDeterministicKeyExists if tx
// contains a record under rec's key, given as key, or under its token, or
// another record with its deterministic key.
func createConflict(tx *bolt.Tx, rec *Record, key []byte) error {
	tokens := tx.Bucket(bucketTokens)
	if tokens.Get(key) != nil || rec.Locator != "" && tokens.Get([]byte(rec.Token)) != nil {
		return ErrTokenExists
	}
	if len(rec.DeterministicKey) > 0 && tx.Bucket(bucketDeterministic).Get(rec.DeterministicKey) != nil {
		return ErrDeterministicKeyExists
	}
	return nil
}

// putRecord writes a new record, encoded as value under key, with its index
// entries and its event. The caller has checked createConflict.
func (s *BoltStore) putRecord(tx *bolt.Tx, rec *Record, key, value []byte) error {
	if err := putToken(tx, key, value, newRecordAppends(rec)); err != nil {
		return err
	}
	if err := s.putIndexes(tx, rec); err != nil {
		return err
	}
	event := CreatedEvent(rec)
	return s.appendEvent(tx, &event)
}

// appendEvent adds ev to the outbox block that the commit loop writes before
// tx commits. Its number is the outbox's next sequence number, which bbolt
// keeps in the transaction, so numbers follow commit order and a rolled-back
// transaction leaves no gap.
func (s *BoltStore) appendEvent(tx *bolt.Tx, ev *Event) error {
	_, err := s.commits.events.add(tx, encodeEvent(ev))
	return err
}

func (s *BoltStore) Events(ctx context.Context, after uint64, limit int) ([]Event, error) {
	events := []Event{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if after == math.MaxUint64 {
			return nil // after+1 would wrap around to the first event
		}
		if limit <= 0 {
			return nil
		}
		err := walkSeq(tx.Bucket(bucketEvents), after+1, math.MaxUint64, func(seq uint64, entry []byte) error {
			ev, err := decodeEvent(seq, entry)
			if err != nil {
				return err
			}
			events = append(events, ev)
			if len(events) == limit {
				return errStopEntries
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// write runs fn, which puts the given number of records or index entries,
// through the commit queue, or returns ErrStoreClosed. It then
// reopens the file or starts a merge of the fingerprint log if either is due,
// and waits for the merge, or until ctx ends, if the log is too long. The
// wait does not change the result: fn's write is committed by then.
func (s *BoltStore) write(ctx context.Context, records int, fn func(tx *bolt.Tx) error) error {
	err := s.commit(records, fn)
	s.maybeMerge()
	s.waitForBacklog(ctx)
	return err
}

// commit runs fn through the commit queue, or returns ErrStoreClosed, and
// reopens the file if that is due. The merge writes through it, so that its
// writes share commits and syncs with callers' writes.
func (s *BoltStore) commit(records int, fn func(tx *bolt.Tx) error) error {
	grown, err := s.submit(records, fn)
	if grown {
		s.reopen()
	}
	return err
}

// submit runs fn through the commit queue and reports whether the file should
// be reopened. A panic of the caller's function passes through it, after
// mu is released.
func (s *BoltStore) submit(records int, fn func(tx *bolt.Tx) error) (grown bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false, ErrStoreClosed
	}
	err = storeError(s.commits.submit(fn, records))
	return s.commits.pages.Load() >= int64(s.reopenAfter), err
}

func (s *BoltStore) Get(ctx context.Context, key string) (*Record, error) {
	var rec *Record
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		rec, err = getRecord(tx, key)
		return err
	})
	return rec, err
}

func getRecord(tx *bolt.Tx, key string) (*Record, error) {
	v := tx.Bucket(bucketTokens).Get([]byte(key))
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeRecord(key, v)
}

func (s *BoltStore) Update(ctx context.Context, key string, fn func(rec *Record) (*Change, error)) (*Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var result *Record
	err := s.write(ctx, 1, func(tx *bolt.Tx) error {
		old, err := getRecord(tx, key)
		if err != nil {
			return noWrite(err)
		}
		rec := old.Clone()
		change, err := callerFunc(fn, rec)
		var p *panicError
		if errors.As(err, &p) {
			return err
		}
		if err != nil {
			return noWrite(err)
		}
		if change == nil {
			result = old
			return noWrite(nil)
		}

		if err := checkFingerprintSize(rec.Fingerprint); err != nil {
			return noWrite(err)
		}
		rec.Token, rec.Locator = old.Token, old.Locator
		rec.Revision = old.Revision + 1
		change.Revision = rec.Revision
		if deterministicKeyTaken(tx, old, rec) {
			return noWrite(ErrDeterministicKeyExists)
		}
		if err := s.replaceIndexes(tx, old, rec); err != nil {
			return err
		}
		if err := putToken(tx, []byte(key), encodeRecord(rec), false); err != nil {
			return err
		}
		if err := tx.Bucket(bucketHistory).Put(historyKey(key, rec.Revision), encodeChange(change)); err != nil {
			return err
		}
		event := ChangeEvent(rec.Token, change)
		if err := s.appendEvent(tx, &event); err != nil {
			return err
		}
		result = rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// deterministicKeyTaken reports whether rec takes a deterministic key that a
// record other than old holds.
func deterministicKeyTaken(tx *bolt.Tx, old, rec *Record) bool {
	if len(rec.DeterministicKey) == 0 || bytes.Equal(old.DeterministicKey, rec.DeterministicKey) {
		return false
	}
	return tx.Bucket(bucketDeterministic).Get(rec.DeterministicKey) != nil
}

// putIndexes adds the index entries of a new record: its fingerprint to the
// log. The caller has checked that its deterministic key is free.
func (s *BoltStore) putIndexes(tx *bolt.Tx, rec *Record) error {
	if len(rec.Fingerprint) > 0 {
		if err := s.logFingerprint(tx, rec.Fingerprint, logAdd, rec.Token); err != nil {
			return err
		}
	}
	if len(rec.DeterministicKey) > 0 {
		return tx.Bucket(bucketDeterministic).Put(rec.DeterministicKey, []byte(rec.Key()))
	}
	return nil
}

// replaceIndexes moves the index entries of old to those of rec, where they
// differ. The caller has checked that rec's deterministic key is free.
func (s *BoltStore) replaceIndexes(tx *bolt.Tx, old, rec *Record) error {
	if !bytes.Equal(old.Fingerprint, rec.Fingerprint) {
		if len(old.Fingerprint) > 0 {
			if err := s.logFingerprint(tx, old.Fingerprint, logRemove, old.Token); err != nil {
				return err
			}
		}
		if len(rec.Fingerprint) > 0 {
			if err := s.logFingerprint(tx, rec.Fingerprint, logAdd, rec.Token); err != nil {
				return err
			}
		}
	}

	if !bytes.Equal(old.DeterministicKey, rec.DeterministicKey) {
		deterministic := tx.Bucket(bucketDeterministic)
		if len(old.DeterministicKey) > 0 {
			if err := deterministic.Delete(old.DeterministicKey); err != nil {
				return err
			}
		}
		if len(rec.DeterministicKey) > 0 {
			return deterministic.Put(rec.DeterministicKey, []byte(rec.Key()))
		}
	}
	return nil
}

func (s *BoltStore) History(ctx context.Context, key string) (*Record, []Change, error) {
	var rec *Record
	history := []Change{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		rec, err = getRecord(tx, key)
		if err != nil {
			return err
		}
		token := rec.Token
		prefix := historyPrefix(key)
		c := tx.Bucket(bucketHistory).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+8 {
				return fmt.Errorf("token %s: history key has length %d: %w", token, len(k), ErrIntegrity)
			}
			change, err := decodeChange(binary.BigEndian.Uint64(k[len(prefix):]), v)
			if err != nil {
				return fmt.Errorf("token %s: %w", token, err)
			}
			history = append(history, change)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return rec, history, nil
}

func (s *BoltStore) FindByDeterministicKey(ctx context.Context, key []byte) (*Record, error) {
	var rec *Record
	err := s.view(ctx, func(tx *bolt.Tx) error {
		recKey := tx.Bucket(bucketDeterministic).Get(key)
		if recKey == nil {
			return ErrNotFound
		}
		var err error
		rec, err = getRecord(tx, string(recKey))
		return err
	})
	return rec, err
}

func (s *BoltStore) Scan(ctx context.Context, after string, limit int) ([]*Record, error) {
	var recs []*Record
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTokens).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && len(recs) < limit; k, v = c.Next() {
			rec, err := decodeRecord(string(k), v)
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		return nil
	})
	return recs, err
}

func (s *BoltStore) ReplaceCiphertexts(ctx context.Context, swaps []CiphertextSwap) (int, error) {
	applied := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		applied = 0
		for _, swap := range swaps {
			rec, err := getRecord(tx, swap.Key)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if rec.State == StateClosed || !bytes.Equal(rec.Ciphertext, swap.OldCiphertext) {
				continue
			}
			rec.KeyID = swap.NewKeyID
			rec.Ciphertext = swap.NewCiphertext
			if err := putToken(tx, []byte(swap.Key), encodeRecord(rec), false); err != nil {
				return err
			}
			applied++
		}
		return nil
	})
	return applied, err
}

func (s *BoltStore) Metadata(ctx context.Context, prefix string) (map[string][]byte, error) {
	entries := make(map[string][]byte)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMetadata).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			entries[string(k)] = bytes.Clone(v)
		}
		return nil
	})
	return entries, err
}

func (s *BoltStore) SetMetadata(ctx context.Context, name string, value []byte) error {
	unlock, err := s.enter(ctx)
	if err != nil {
		return err
	}
	unlock()
	if name == "" {
		return errors.New("tokenvault: metadata name is empty")
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMetadata)
		if value == nil {
			return b.Delete([]byte(name))
		}
		return b.Put([]byte(name), value)
	})
}

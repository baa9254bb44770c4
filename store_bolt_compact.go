package tokenvault

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Compacter is implemented by stores that keep copies of replaced and deleted
// data in free space until it is reused, as bbolt does with its pages.
// Vault.Compact calls it.
type Compacter interface {
	// Compact rewrites the store so that it keeps only current data. It
	// blocks other calls until it is done.
	Compact(ctx context.Context) error
}

var _ Compacter = (*BoltStore)(nil)

// compactTxSize bounds one transaction of the copy, so that compacting a
// large file does not hold all of it in memory at once.
const compactTxSize = 64 << 20

// Compact copies the live records into a new file and replaces the old file
// with it. bbolt writes every change to new pages and keeps the old pages,
// with the ciphertexts of closed tokens and of rewrapped records, in its free
// space until later writes reuse them; Compact leaves none of them in the
// file.
//
// NOTE: the file system may keep the old file's blocks on disk until it reuses
// them. Protect the disk itself (full-disk encryption) against an attacker
// who can read raw blocks.
func (s *BoltStore) Compact(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	if s.guard.damaged.Load() {
		return errDamaged
	}

	tmp, err := s.copyTo()
	if err != nil {
		return fmt.Errorf("tokenvault: compact %s: %w", s.path, err)
	}
	defer os.Remove(tmp)

	if err := s.db.Close(); err != nil {
		s.closed, s.closeErr = true, err
		return fmt.Errorf("tokenvault: compact %s: close: %w", s.path, err)
	}
	renameErr := os.Rename(tmp, s.path)
	if renameErr == nil {
		renameErr = syncDir(filepath.Dir(s.path))
	}

	// Reopen the file, the new one or, if the rename failed, the old one.
	db, _, err := openBolt(s.path, s.timeout)
	if err != nil {
		s.closed, s.closeErr = true, err
		return fmt.Errorf("tokenvault: compact %s: reopen: %w", s.path, err)
	}
	s.db, s.commits = db, newCommitter(db, s.guard)
	if renameErr != nil {
		return fmt.Errorf("tokenvault: compact %s: replace the file: %w", s.path, renameErr)
	}
	return nil
}

// copyTo copies the database into a new file beside it and returns the new
// file's path.
func (s *BoltStore) copyTo() (string, error) {
	f, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+compactSuffix+"*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	f.Close()

	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: s.timeout, FreelistType: bolt.FreelistMapType})
	if err == nil {
		err = bolt.Compact(dst, s.db, compactTxSize)
		if closeErr := dst.Close(); err == nil {
			err = closeErr
		}
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// compactSuffix follows the database's file name in the names of Compact's
// new files.
const compactSuffix = ".compact-"

// removeCompactLeftovers removes the new files of Compacts that did not
// finish, because their process ended, beside the database at path. Each
// holds a copy of the data. The caller has opened the database and holds its
// lock, so no Compact runs.
func removeCompactLeftovers(path string, logger *slog.Logger) {
	dir, prefix := filepath.Dir(path), filepath.Base(path)+compactSuffix
	entries, err := os.ReadDir(dir)
	if err != nil {
		logger.Warn("listing the database's folder for leftover compact files failed", "path", path, "error", err)
		return
	}
	for _, e := range entries {
		if !isCompactFile(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		name := filepath.Join(dir, e.Name())
		if err := os.Remove(name); err != nil {
			logger.Warn("removing a leftover compact file failed", "file", name, "error", err)
			continue
		}
		logger.Info("removed the file of a compact that did not finish", "file", name)
	}
}

// isCompactFile reports whether name is prefix followed by the digits that
// os.CreateTemp puts in place of the pattern's "*", as Compact's new files
// are named. Another file whose name only starts with prefix, such as a
// database named vault.db.compact-archive, is not one.
func isCompactFile(name, prefix string) bool {
	suffix, ok := strings.CutPrefix(name, prefix)
	if !ok || suffix == "" {
		return false
	}
	for i := 0; i < len(suffix); i++ {
		if suffix[i] < '0' || suffix[i] > '9' {
			return false
		}
	}
	return true
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Compact rewrites the store without the free space in which it may keep old
// copies of data: the ciphertexts of closed tokens and the old ciphertexts of
// rewrapped records. Run it after closing tokens whose values must be gone
// from the file, and after Rewrap before destroying a retired key. It blocks
// every other call while it runs, and does nothing for a store that does not
// implement Compacter, such as MemoryStore.
func (v *Vault) Compact(ctx context.Context) error {
	done, err := v.enter()
	if err != nil {
		return err
	}
	defer done()

	c, ok := v.store.(Compacter)
	if !ok {
		return nil
	}
	return c.Compact(ctx)
}

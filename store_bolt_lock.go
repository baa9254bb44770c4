package tokenvault

import (
	"fmt"
	"log/slog"
	"os"
	"time"
)

// A BoltStore holds an exclusive lock on a file beside the database, named
// the database's path followed by ".lock", for as long as it is open. bbolt
// locks the database file itself, but only while it has the file open, and
// the store closes it twice while in use: Compact renames a new file over
// it, and writes reopen it after reopenPages page allocations. In either gap
// another process waiting for bbolt's lock would get it. After a Compact it
// would then write to the replaced file, which no path names any more, so
// its acknowledged writes would be lost. The lock file is never replaced or
// removed, so a second opener waits for it until the first store is closed.

// lockSuffix follows a database's path in the name of its lock file.
const lockSuffix = ".lock"

// lockRetry is the pause between attempts to take the lock.
const lockRetry = 50 * time.Millisecond

// fileLock is a lock file held open and locked.
type fileLock struct {
	f *os.File
}

// lockDatabase takes the lock of the database at path, waiting up to
// timeout for another holder to release it. The returned error wraps
// ErrLocked when the lock stays taken.
//
// A lock needs no write access, so the lock file is created readable by all
// and opened for reading when it belongs to another user. A command run
// once by another user, such as root, then cannot lock out the service's own
// user. When the lock file cannot be created at all, as in a folder that the
// process cannot write, the store runs on bbolt's lock alone and logs a
// warning.
func lockDatabase(path string, timeout time.Duration, logger *slog.Logger) (*fileLock, error) {
	name := path + lockSuffix
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		f.Chmod(0o644) // the umask may have taken read access from others
	} else {
		f, err = os.Open(name)
	}
	if err != nil {
		logger.Warn("the lock file cannot be opened or created, so only bbolt's lock protects the database, which Compact and reopens release for a moment",
			"path", name, "error", err)
		return &fileLock{}, nil
	}

	deadline := time.Now().Add(timeout)
	for {
		locked, err := tryLock(f)
		switch {
		case err != nil:
			f.Close()
			return nil, fmt.Errorf("tokenvault: lock %s: %w", name, err)
		case locked:
			return &fileLock{f: f}, nil
		case time.Now().After(deadline):
			f.Close()
			return nil, lockedError(path, timeout)
		}
		time.Sleep(lockRetry)
	}
}

// lockedError returns the error of an open that waited timeout for the lock
// of the database at path.
func lockedError(path string, timeout time.Duration) error {
	return fmt.Errorf("%w: %s is locked by another process or another open vault (waited %s)", ErrLocked, path, timeout)
}

// release unlocks and closes the lock file.
func (l *fileLock) release() {
	if l != nil && l.f != nil {
		unlock(l.f)
		l.f.Close()
		l.f = nil
	}
}

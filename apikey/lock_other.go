//go:build !unix

package apikey

import "sync"

// lockMu serializes the writers of this process.
var lockMu sync.Mutex

// lockFile serializes the writers of this process only.
//
// BUG(apikey): Outside Unix, writers in different processes are not
// serialized, so two processes that create or revoke keys at the same moment
// can lose one of the changes.
func lockFile(path string) (unlock func(), err error) {
	lockMu.Lock()
	return lockMu.Unlock, nil
}

// syncDir does nothing: outside Unix, a directory cannot be opened for
// syncing.
func syncDir(dir string) error { return nil }

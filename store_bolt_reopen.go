package tokenvault

// reopenPages is how many pages bbolt may allocate while the file is open
// before the store closes and reopens it. bbolt v1.5.0 records, in a map,
// the transaction that allocated each page until that page is freed, and
// reopening empties the map. Pages that stay in use, such as the pages of
// new records, stay in it: an import of ten million card numbers held about
// 60 MiB there. The map costs an estimated 40 bytes per page, so this bound
// keeps it near 10 MiB; a reopen costs a few milliseconds.
const reopenPages = 1 << 18

// grown reports whether bbolt has allocated reopenAfter pages since the file
// was opened. The caller holds mu.
func (s *BoltStore) grown() bool {
	if s.closed {
		return false
	}
	stats := s.db.Stats()
	return stats.TxStats.GetPageCount() >= int64(s.reopenAfter)
}

// reopen closes and reopens the file, after the calls in flight, unless
// another caller did so first. If the file cannot be opened again, the store
// is closed: later calls return ErrStoreClosed and Close returns the error.
func (s *BoltStore) reopen() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.grown() || s.guard.damaged.Load() {
		return
	}

	if err := s.db.Close(); err != nil {
		s.closed, s.closeErr = true, err
		return
	}
	db, _, err := openBolt(s.path, s.timeout)
	if err != nil {
		s.closed, s.closeErr = true, err
		return
	}
	s.db, s.commits = db, newCommitter(db, s.guard)
	s.reopens++
}

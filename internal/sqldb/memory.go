package sqldb

import (
	"context"
	"fmt"
)

// ReleaseMemory hands back the memory SQLite keeps only for speed, for a
// server that has gone quiet: the writer connection's page cache (PRAGMA
// shrink_memory) and the reader connections that sit idle, which close and
// are opened again when next needed. Connections in use are left alone.
// On PostgreSQL it does nothing.
//
// SQLite's allocator (modernc's, outside the Go heap) returns a region to
// the system only once every allocation in it is freed, and the page
// caches of long-lived connections, filled a page at a time while other
// databases opened and closed around them, end up spread over many
// regions: emptying them is what lets those regions go.
func (db *DB) ReleaseMemory(ctx context.Context) error {
	if db.dialect != SQLite {
		return nil
	}
	// Lowering the idle limit closes the idle connections at once.
	db.reader.SetMaxIdleConns(0)
	db.reader.SetMaxIdleConns(db.readers)
	if _, err := db.writer.ExecContext(ctx, "PRAGMA shrink_memory"); err != nil {
		return fmt.Errorf("sqldb: release memory of %s: %w", db.path, err)
	}
	return nil
}

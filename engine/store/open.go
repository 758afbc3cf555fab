package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the embedded default: pure Go, no cgo
)

// OpenSQLite opens (creating) DATA_DIR/sous.db in WAL mode. It returns two
// handles on the same file: one connection for writes, which the
// group-commit writer serialises, and a pool for reads, which WAL lets
// run beside the writer.
func OpenSQLite(ctx context.Context, dataDir string) (write, read *sql.DB, err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dataDir, "sous.db")
	// synchronous(FULL): a commit is on disk before a webhook is answered;
	// group commit keeps that affordable.
	// cache_size: SQLite's page cache lives outside the Go heap, per
	// connection; negative values are KiB
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(on)&_pragma=cache_size(-8192)&_txlock=immediate"
	write, err = sql.Open("sqlite", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	read, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=cache_size(-2048)&mode=ro")
	if err != nil {
		write.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	// kept open (database/sql keeps 2 idle by default): a connection
	// closed after a burst of reads costs a file open and the statements
	// prepared again on the next, which doubled the CPU per event of a
	// backlog draining
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	return write, read, nil
}

// Package storetest is test support for code that needs a real
// PostgreSQL: each test gets a database of its own, dropped at cleanup.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/sous-run/sous/engine/store"
)

// DefaultPostgres is the database the tests create their own databases
// from; SOUS_TEST_POSTGRES overrides it (a URL).
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Postgres creates a database of its own for the test, dropped at
// cleanup, and returns its DSN. It fails when PostgreSQL is unreachable
// (CI starts it) and skips with -short.
func Postgres(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("PostgreSQL test skipped with -short")
	}
	base := os.Getenv("SOUS_TEST_POSTGRES")
	if base == "" {
		base = DefaultPostgres
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("SOUS_TEST_POSTGRES must be a postgres:// URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin, err := store.OpenPostgres(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable at %s (set SOUS_TEST_POSTGRES, or run with -short to skip): %v", base, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sous_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

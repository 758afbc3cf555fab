package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/service"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// envNewMasterKey gives rekey the new master key.
const envNewMasterKey = "SOUS_NEW_MASTER_KEY"

// openTokenStore opens the store that keeps the tokens: the PostgreSQL
// database of the postgres broker, else the embedded store of the data
// dir (the sqlite, memory and nats brokers).
func openTokenStore(ctx context.Context, cfg *recipes.Config, settings service.Settings) (*store.Store, func(), error) {
	set := settings.Broker
	if set.Type == "postgres" {
		if set.URL == "" {
			return nil, nil, &exitError{code: 1, err: errors.New("broker postgres: set broker.url to the database's DSN")}
		}
		db, err := store.OpenPostgres(ctx, set.URL)
		if err != nil {
			return nil, nil, &exitError{code: 1, err: err}
		}
		st := &store.Store{DB: db, Dialect: store.Postgres, Prefix: set.Prefix}
		if err := st.Migrate(ctx); err != nil {
			db.Close()
			return nil, nil, &exitError{code: 1, err: err}
		}
		return st, func() { db.Close() }, nil
	}
	write, read, err := store.OpenSQLite(ctx, cfg.DataDir)
	if err != nil {
		return nil, nil, &exitError{code: 1, err: err}
	}
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite, Prefix: set.Prefix}
	if err := st.Migrate(ctx); err != nil {
		read.Close()
		write.Close()
		return nil, nil, &exitError{code: 1, err: err}
	}
	return st, func() { read.Close(); write.Close() }, nil
}

func newConnectionsRekey() *cobra.Command {
	f := &serveFlags{}
	var (
		newKeyFile string
		generate   bool
	)
	cmd := &cobra.Command{
		Use:   "rekey",
		Short: "Re-encrypt every stored token under a new master key",
		Long: `Re-encrypt every stored OAuth token under a new master key, in one
transaction: the tokens are all under the old key or all under the new one.

The current key is read as 'sous serve' reads it: SOUS_MASTER_KEY, else
DATA_DIR/master.key. The new key comes from one of:

  --generate            a new random key
  --new-key-file PATH   a file holding the key (mode 0600)
  SOUS_NEW_MASTER_KEY   the key itself (32 bytes as base64, or 64 hex digits)

When the current key is DATA_DIR/master.key, the new key takes its place
(written to master.key.new before any token is re-encrypted, moved in
after) and the old one is kept as master.key.old. When it is
SOUS_MASTER_KEY, no file is written: set SOUS_MASTER_KEY to the new key
(--generate is refused, since it would print or write a key the variable
overrides).

Stop every 'sous serve' using these tokens first, and start them with the
new key after: a process still on the old key cannot read the tokens, and a
token it saves meanwhile stays under the old key (running rekey again with
both keys re-encrypts it).`,
		Example: `  sous connections rekey --generate
  SOUS_NEW_MASTER_KEY="$(openssl rand -base64 32)" sous connections rekey   # then set SOUS_MASTER_KEY
  sous connections rekey --config sous.yaml --new-key-file /run/secrets/sous-next.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			envKey := os.Getenv(envNewMasterKey)
			sources := 0
			for _, set := range []bool{newKeyFile != "", envKey != "", generate} {
				if set {
					sources++
				}
			}
			if sources != 1 {
				return usageError("give the new key in one way: --generate, --new-key-file PATH or %s", envNewMasterKey)
			}
			cfg, settings, err := f.resolve(cmd)
			if err != nil {
				return err
			}
			return rekey(cmd.Context(), cmd.OutOrStdout(), cfg, settings, rekeyInput{newKeyFile: newKeyFile, envKey: envKey, generate: generate})
		},
	}
	cmd.Flags().BoolVar(&generate, "generate", false, "generate a new random key into DATA_DIR/master.key")
	cmd.Flags().StringVar(&newKeyFile, "new-key-file", "", "read the new key from this file")
	f.bind(cmd, false)
	return cmd
}

type rekeyInput struct {
	newKeyFile, envKey string
	generate           bool
}

func rekey(ctx context.Context, out io.Writer, cfg *recipes.Config, settings service.Settings, in rekeyInput) error {
	fail := func(err error) error { return &exitError{code: 1, err: err} }
	dataDir := cfg.DataDir
	cur, curSrc, err := oauth.FindKey(dataDir, os.Getenv)
	noKey := errors.Is(err, oauth.ErrNoKey)
	if err != nil && !noKey {
		return fail(fmt.Errorf("the current master key: %w", err))
	}
	// the key is in the data dir's file, or nowhere yet: the new one goes there
	inFile := curSrc != oauth.EnvMasterKey
	if in.generate && !inFile {
		return usageError("--generate writes DATA_DIR/master.key, which %s overrides: make a key "+
			"(openssl rand -base64 32), give it in %s, then set %s to it", oauth.EnvMasterKey, envNewMasterKey, oauth.EnvMasterKey)
	}
	var next oauth.Key
	switch {
	case in.newKeyFile != "":
		if next, err = oauth.ReadKeyFile(in.newKeyFile); err != nil {
			return fail(fmt.Errorf("the new master key: %w", err))
		}
	case in.envKey != "":
		if next, err = oauth.ParseKey(in.envKey); err != nil {
			return fail(fmt.Errorf("%s is not a master key: %w", envNewMasterKey, err))
		}
	default:
		// a key staged by a change that stopped is used again: the tokens
		// may be under it already
		next, err = oauth.StagedKey(dataDir)
		if errors.Is(err, fs.ErrNotExist) {
			next, err = oauth.GenerateKey()
		}
		if err != nil {
			return fail(err)
		}
	}
	if !noKey && next.Equal(cur) {
		return fail(fmt.Errorf("the new master key is the current one (%s)", curSrc))
	}
	staged := false
	if inFile {
		if staged, err = oauth.StageKeyFile(dataDir, next); err != nil {
			return fail(err)
		}
	}
	n, err := reencrypt(ctx, cfg, settings, cur, noKey, next)
	if err != nil {
		if staged {
			os.Remove(filepath.Join(dataDir, oauth.NewKeyFile))
		}
		return err
	}
	fmt.Fprintf(out, "re-encrypted %d token(s) under master key %s\n", n, next.ID())
	if !inFile {
		fmt.Fprintf(out, "Set %s to the new key for every sous serve using these tokens, and restart them.\n", oauth.EnvMasterKey)
		return nil
	}
	if err := oauth.InstallKeyFile(dataDir); err != nil {
		return fail(fmt.Errorf("the tokens are under the new key, which is in %s: %w; run this command again with --generate to finish",
			filepath.Join(dataDir, oauth.NewKeyFile), err))
	}
	keyPath := filepath.Join(dataDir, oauth.KeyFile)
	if noKey {
		fmt.Fprintf(out, "The key is in %s.\n", keyPath)
	} else {
		fmt.Fprintf(out, "The new key is in %s; the old one is kept in %s: delete it once nothing needs it.\n",
			keyPath, filepath.Join(dataDir, oauth.OldKeyFile))
	}
	if settings.Broker.Type == "postgres" {
		fmt.Fprintf(out, "Every sous serve on this database needs the new key: copy %s to their data directories "+
			"(or set %s on each), and restart them.\n", keyPath, oauth.EnvMasterKey)
	}
	return nil
}

// reencrypt re-encrypts the stored tokens from cur to next and says how
// many it did. With no current key there may be no token.
func reencrypt(ctx context.Context, cfg *recipes.Config, settings service.Settings, cur oauth.Key, noKey bool, next oauth.Key) (int, error) {
	st, closeFn, err := openTokenStore(ctx, cfg, settings)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	if noKey {
		ids, err := st.TokenKeyIDs(ctx)
		if err != nil {
			return 0, &exitError{code: 1, err: err}
		}
		if len(ids) > 0 {
			return 0, &exitError{code: 1, err: fmt.Errorf("%w, yet tokens are stored: set %s to the key they were stored with", oauth.ErrNoKey, oauth.EnvMasterKey)}
		}
		return 0, nil
	}
	v, err := oauth.NewVault(st, cur)
	if err != nil {
		return 0, &exitError{code: 1, err: err}
	}
	n, err := v.Rekey(ctx, next)
	if err != nil {
		return 0, &exitError{code: 1, err: err}
	}
	_ = st.AddAudit(ctx, store.AuditEntry{Actor: cliActor(), Action: "keys.rekeyed", Target: "master key",
		Detail: fmt.Sprintf("%d token(s) from %s to %s", n, cur.ID(), next.ID())})
	return n, nil
}

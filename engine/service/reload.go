package service

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/recipes"
)

// reloader loads the recipes folder, keeping the last good version of a
// recipe whose file stopped validating.
type reloader struct {
	dir     string
	loader  *recipes.Loader
	secrets map[string]string
	log     *slog.Logger
	last    map[string]*recipes.Recipe // by file
	print   string
	// watchHook, set by tests, replaces the watcher's channels.
	watchHook func() (<-chan fsnotify.Event, <-chan error)
}

// fingerprint summarises the folder: a hash of its recipe files' names,
// sizes and modification times.
func (r *reloader) fingerprint() string {
	files, err := recipes.Files([]string{r.dir})
	if err != nil {
		return "error: " + err.Error()
	}
	sort.Strings(files)
	h := fnv.New64a()
	var buf [16]byte
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			continue
		}
		h.Write([]byte(f))
		binary.LittleEndian.PutUint64(buf[:8], uint64(info.Size()))
		binary.LittleEndian.PutUint64(buf[8:], uint64(info.ModTime().UnixNano()))
		h.Write(buf[:])
	}
	return fmt.Sprintf("%d:%x", len(files), h.Sum64())
}

func (r *reloader) load() *pipeline.Index {
	// loading a large folder leaves much more garbage than it keeps (YAML
	// trees, compiler scratch): hand it back to the OS rather than let it
	// count as the service's memory until the scavenger gets to it
	defer debug.FreeOSMemory()
	r.print = r.fingerprint()
	set, diags := r.loader.LoadPaths([]string{r.dir})
	bad := map[string]bool{}
	for _, d := range diags {
		switch {
		case d.Severity != recipes.SevError:
		case recipes.IsTestFile(d.File):
			// a recipe's tests are for sous test: they change nothing
			// that is served
			r.log.Warn("recipe test file not valid (sous test reports it; nothing served changes)", "diagnostic", d.String())
		default:
			bad[d.File] = true
			r.log.Error("recipe not loaded", "diagnostic", d.String())
		}
	}
	next := map[string]*recipes.Recipe{}
	for _, rec := range set.Recipes {
		next[rec.File] = rec
	}
	kept := map[string]string{} // recipe name -> file, of the versions kept
	for file := range bad {
		if prev, ok := r.last[file]; ok && next[file] == nil && exists(file) {
			r.log.Warn("keeping the last good version of a recipe", "recipe", prev.Name, "file", file)
			next[file] = prev
			kept[prev.Name] = file
		}
	}
	// the new recipes were checked against a set without the kept
	// versions: one may take the name of a kept version, which is still
	// serving. The kept version keeps its name; the newcomer's file falls
	// back to its own last good version, if it has one with a free name.
	if len(kept) > 0 {
		names := map[string]bool{}
		for _, rec := range next {
			names[rec.Name] = true
		}
		files := make([]string, 0, len(next))
		for file := range next {
			files = append(files, file)
		}
		sort.Strings(files)
		for _, file := range files {
			rec := next[file]
			owner, taken := kept[rec.Name]
			if !taken || owner == file {
				continue
			}
			r.log.Error("recipe not loaded", "file", file,
				"error", fmt.Sprintf("recipe name %q is used by the last good version of %s, which still serves", rec.Name, owner))
			delete(next, file)
			if prev, ok := r.last[file]; ok && !names[prev.Name] {
				r.log.Warn("keeping the last good version of a recipe", "recipe", prev.Name, "file", file)
				next[file] = prev
				names[prev.Name] = true
			}
		}
	}
	r.last = next
	list := make([]*recipes.Recipe, 0, len(next))
	for _, rec := range next {
		list = append(list, rec)
	}
	ix, errs := pipeline.BuildIndex(list, r.secrets)
	for _, err := range errs {
		r.log.Error("recipe not registered", "error", err)
	}
	return ix
}

// reloadLoop reloads the recipes when their folder changes. It watches
// the folder (inotify and the like, through fsnotify) and polls it as a
// safety net for file systems that do not report changes, every
// reload_interval when it cannot watch and every 30 of them when it can:
// a poll stats every recipe file, which costs tens of milliseconds with
// ten thousand of them.
func (s *Service) reloadLoop(ctx context.Context) {
	if s.opts.RecipesDir == "" {
		return
	}
	interval := s.opts.Settings.Pipeline.ReloadInterval
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	w, err := watchTree(s.opts.RecipesDir)
	if err != nil {
		s.log.Warn("cannot watch the recipes folder: polling it", "interval", interval, "error", err)
	} else {
		defer w.Close()
		events, watchErrs = w.Events, w.Errors
		interval = min(interval, math.MaxInt64/30) * 30 // a reload_interval of years must not overflow
	}
	if s.reload.watchHook != nil {
		events, watchErrs = s.reload.watchHook()
	}
	poll := time.NewTicker(interval)
	defer poll.Stop()
	// changes come in bursts (an editor's save, a git checkout): look once
	// they settle
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() && !recipes.SkippedDir(filepath.Base(ev.Name)) {
					if err := addTree(w, ev.Name); err != nil {
						s.log.Warn("cannot watch a new folder of recipes", "dir", ev.Name, "error", err)
					}
				}
			}
			settle.Reset(reloadSettle)
			continue
		case err, ok := <-watchErrs:
			if !ok {
				watchErrs = nil
				continue
			}
			// changes may have gone unreported (the kernel's event queue
			// overflowed, say): look at the folder rather than wait for
			// the next poll
			s.log.Warn("watching the recipes folder: looking at it again", "error", err)
			settle.Reset(reloadSettle)
			continue
		case <-settle.C:
		case <-poll.C:
		}
		if s.reload.fingerprint() == s.reload.print {
			continue
		}
		ix := s.reload.load()
		s.Engine.SetIndex(ix)
		s.log.Info("recipes reloaded", "recipes", len(ix.Recipes()))
	}
}

// reloadSettle is how long the folder must be quiet before a reload.
const reloadSettle = 100 * time.Millisecond

// watchTree watches dir and the folders below it that hold recipes.
func watchTree(dir string) (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	if err := addTree(w, dir); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// addTree adds root and the folders below it that Files walks to w.
func addTree(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != root && recipes.SkippedDir(d.Name()) {
			return filepath.SkipDir
		}
		if err := w.Add(path); err != nil {
			return fmt.Errorf("watch %s: %w", path, err)
		}
		return nil
	})
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

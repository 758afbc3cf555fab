package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

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
}

// fingerprint summarises the folder: names, sizes and modification times.
func (r *reloader) fingerprint() string {
	files, err := recipes.Files([]string{r.dir})
	if err != nil {
		return "error: " + err.Error()
	}
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", f, info.Size(), info.ModTime().UnixNano())
	}
	return b.String()
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
		if d.Severity == recipes.SevError {
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

func (s *Service) reloadLoop(ctx context.Context) {
	if s.opts.RecipesDir == "" {
		return
	}
	t := time.NewTicker(s.opts.Settings.Pipeline.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.reload.fingerprint() == s.reload.print {
			continue
		}
		ix := s.reload.load()
		s.Engine.SetIndex(ix)
		s.log.Info("recipes reloaded", "recipes", len(ix.Recipes()))
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

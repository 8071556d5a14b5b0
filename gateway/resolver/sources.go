package resolver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// ListConfig is one list source: a local file or an HTTP(S) URL.
type ListConfig struct {
	Name     string `yaml:"name"`
	Category string `yaml:"category"` // phishing, malware, ads, ...
	Format   string `yaml:"format"`   // hosts, domains, adblock
	Path     string `yaml:"path"`
	URL      string `yaml:"url"`
	// Allow makes the list an allowlist: its rules always win.
	Allow bool `yaml:"allow"`
}

// maxListBytes bounds a downloaded list (the biggest public lists are tens
// of MB).
const maxListBytes = 512 << 20

var listNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

func (lc ListConfig) validate() error {
	if !listNameRE.MatchString(lc.Name) {
		return fmt.Errorf("list name %q: use letters, digits, '.', '_' and '-' (up to 64)", lc.Name)
	}
	if (lc.Path == "") == (lc.URL == "") {
		return fmt.Errorf("list %s: give exactly one of path and url", lc.Name)
	}
	if _, err := ParseFormat(lc.Format); err != nil {
		return fmt.Errorf("list %s: %w", lc.Name, err)
	}
	if lc.Category == "" && !lc.Allow {
		return fmt.Errorf("list %s: a block list needs a category", lc.Name)
	}
	return nil
}

// fetcher downloads URL lists into a cache directory. The file on disk is
// the last good copy: a failed or empty download never replaces it.
type fetcher struct {
	dir    string
	client *http.Client
}

func (f *fetcher) path(lc ListConfig) string { return filepath.Join(f.dir, lc.Name+".list") }

// fetch refreshes lc's cached copy. It returns an error when the download
// failed; the previous copy, if any, is still there to use.
func (f *fetcher) fetch(ctx context.Context, lc ListConfig) error {
	if err := os.MkdirAll(f.dir, 0o750); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, lc.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "tether-gateway")
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", lc.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s: %s", lc.URL, resp.Status)
	}
	tmp, err := os.CreateTemp(f.dir, "."+lc.Name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, maxListBytes+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return fmt.Errorf("downloading %s: %w", lc.URL, err)
	case n > maxListBytes:
		return fmt.Errorf("downloading %s: larger than %d MB", lc.URL, maxListBytes>>20)
	case n == 0:
		return fmt.Errorf("downloading %s: empty", lc.URL)
	}
	return os.Rename(tmp.Name(), f.path(lc))
}

// specs turns list configs into compile specs, refreshing URL lists
// first. Download errors come back per list; the lists still compile from
// their last good copy.
func (f *fetcher) specs(ctx context.Context, lists []ListConfig) ([]ListSpec, map[string]error) {
	errs := map[string]error{}
	var specs []ListSpec
	for _, lc := range lists {
		format, _ := ParseFormat(lc.Format)
		path, source := lc.Path, lc.Path
		if lc.URL != "" {
			source, path = lc.URL, f.path(lc)
			if err := f.fetch(ctx, lc); err != nil {
				if _, serr := os.Stat(path); serr == nil {
					err = fmt.Errorf("%w (serving the last good copy)", err)
				}
				errs[lc.Name] = err
			}
		}
		p := path
		specs = append(specs, ListSpec{Name: lc.Name, Category: lc.Category, Format: format, Allow: lc.Allow, Source: source,
			Open: func() (io.ReadCloser, error) {
				fh, err := os.Open(p)
				if errors.Is(err, os.ErrNotExist) && lc.URL != "" {
					return nil, errors.New("never downloaded successfully")
				}
				return fh, err
			}})
	}
	return specs, errs
}

package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The state directory's files.
const (
	fileEnrollment = "enrollment.json" // the enrollment answer and where it came from
	fileKey        = "device.key"      // the WireGuard private key (0600)
	fileCredential = "device.credential"
	fileSettings   = "settings.json"
	fileDecisions  = "decisions.json"
	dirReports     = "reports"
)

// maxDecisions is how many decisions the state directory keeps.
const maxDecisions = 20

// store is the daemon's state directory (0700): everything a restart
// resumes from. Every file is written whole (a temporary file, then a
// rename) with mode 0600. A file that does not parse is renamed aside
// (name.corrupt-TIME) and reported, never silently dropped.
type store struct {
	dir string
	now func() time.Time
}

// openStore creates dir (0700) if needed and refuses one others can
// read or write.
func openStore(dir string, now func() time.Time) (*store, error) {
	if err := os.MkdirAll(filepath.Join(dir, dirReports), 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, dirReports)} {
		st, err := os.Stat(d)
		if err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("state directory %s has mode %04o; it holds the device's keys and must be 0700", d, st.Mode().Perm())
		}
	}
	return &store{dir: dir, now: now}, nil
}

func (s *store) path(name string) string { return filepath.Join(s.dir, name) }

// CorruptError says a state file did not parse and was set aside.
type CorruptError struct {
	File, MovedTo string
	Err           error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s is corrupt (%v); it was kept as %s and the daemon goes on without it", e.File, e.Err, e.MovedTo)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// load reads name into v. A missing file is (false, nil); one that does
// not parse is moved aside and reported as a *CorruptError.
func (s *store) load(name string, v any) (bool, error) {
	b, err := os.ReadFile(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state file %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, s.setAside(name, err)
	}
	return true, nil
}

func (s *store) setAside(name string, cause error) error {
	moved := fmt.Sprintf("%s.corrupt-%s", name, s.now().UTC().Format("20060102T150405.000000000"))
	if err := os.Rename(s.path(name), s.path(moved)); err != nil {
		return fmt.Errorf("state file %s is corrupt (%v), and setting it aside failed: %w", name, cause, err)
	}
	return &CorruptError{File: s.path(name), MovedTo: s.path(moved), Err: cause}
}

// save writes v to name, whole and 0600.
func (s *store) save(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("state file %s: %w", name, err)
	}
	return s.write(name, append(b, '\n'))
}

func (s *store) write(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(s.path(name)), ".tmp-*")
	if err != nil {
		return fmt.Errorf("state file %s: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path(name))
	}
	if err != nil {
		return fmt.Errorf("state file %s: %w", name, err)
	}
	return nil
}

// remove deletes name; a missing file is fine.
func (s *store) remove(name string) error {
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state file %s: %w", name, err)
	}
	return nil
}

// reportName is a report's file, named by when it ran so names sort by
// time.
func reportName(at time.Time) string {
	return filepath.Join(dirReports, fmt.Sprintf("%020d.json", at.UnixNano()))
}

// addReport saves v as the report of time at and keeps the newest keep.
func (s *store) addReport(at time.Time, v any, keep int) error {
	if err := s.save(reportName(at), v); err != nil {
		return err
	}
	names, err := s.reportNames()
	if err != nil {
		return err
	}
	for len(names) > keep {
		if err := s.remove(filepath.Join(dirReports, names[0])); err != nil {
			return err
		}
		names = names[1:]
	}
	return nil
}

// reportNames lists the kept reports, oldest first.
func (s *store) reportNames() ([]string, error) {
	ents, err := os.ReadDir(s.path(dirReports))
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// loadReports reads the kept reports, newest first. Corrupt ones are set aside and
// their errors returned beside the rest.
func loadReports[T any](s *store) ([]T, []error) {
	names, err := s.reportNames()
	if err != nil {
		return nil, []error{err}
	}
	var out []T
	var errs []error
	for i := len(names) - 1; i >= 0; i-- {
		var v T
		ok, err := s.load(filepath.Join(dirReports, names[i]), &v)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, errs
}

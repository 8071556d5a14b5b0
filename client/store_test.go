package client

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStoreRoundTripModesAndCorruptFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	s, err := openStore(dir, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	type doc struct{ A string }
	if ok, err := s.load("x.json", &doc{}); ok || err != nil {
		t.Fatalf("a missing file: %v %v", ok, err)
	}
	if err := s.save("x.json", doc{A: "hello"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "x.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved with %v, %v", st.Mode(), err)
	}
	var got doc
	if ok, err := s.load("x.json", &got); !ok || err != nil || got.A != "hello" {
		t.Fatalf("round trip: %v %v %+v", ok, err, got)
	}
	// A corrupt file is set aside, reported, and its bytes kept.
	if err := os.WriteFile(filepath.Join(dir, "x.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok, err := s.load("x.json", &got)
	var ce *CorruptError
	if ok || !errors.As(err, &ce) {
		t.Fatalf("a corrupt file: %v %v", ok, err)
	}
	if b, err := os.ReadFile(ce.MovedTo); err != nil || string(b) != "{not json" {
		t.Fatalf("the corrupt bytes were not kept at %s: %q %v", ce.MovedTo, b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.json")); !os.IsNotExist(err) {
		t.Fatal("the corrupt file is still in place")
	}
	// Reports: the newest 3 kept, newest first; a corrupt one reported.
	for i := range 5 {
		if err := s.addReport(now.Add(time.Duration(i)*time.Minute), doc{A: string(rune('a' + i))}, 3); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := s.reportNames()
	if len(names) != 3 {
		t.Fatalf("%d reports kept", len(names))
	}
	if err := os.WriteFile(filepath.Join(dir, dirReports, names[1]), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	reps, errs := loadReports[doc](s)
	if len(reps) != 2 || reps[0].A != "e" || reps[1].A != "c" || len(errs) != 1 {
		t.Fatalf("reports %+v, errors %v", reps, errs)
	}
	// A state directory others can read is refused.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(dir, time.Now); err == nil {
		t.Fatal("a 0755 state directory was accepted")
	}
}

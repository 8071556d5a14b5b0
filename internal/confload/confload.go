// Package confload decodes Tether's YAML configuration files strictly: an
// unknown key, a second document, a wrong type or an empty file is an error
// that names the file and line, never a silently ignored setting.
package confload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// MaxSize bounds a configuration file; a real one is a few kilobytes, so
// anything larger is a mistake (a log or a binary passed by accident).
const MaxSize = 1 << 20

// File reads and strictly decodes the YAML file at path into v, which must
// be a pointer to a struct with yaml tags. v keeps the defaults it held for
// keys the file leaves out.
func File(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return Decode(f, path, v)
}

// Decode strictly decodes one YAML document from r; name labels errors.
func Decode(r io.Reader, name string, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return fmt.Errorf("config %s: %w", name, err)
	}
	if len(data) > MaxSize {
		return fmt.Errorf("config %s: larger than %d bytes", name, MaxSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("config %s: file is empty", name)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("config %s: no YAML document (only comments?)", name)
		}
		return fmt.Errorf("config %s: %w", name, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: more than one YAML document; keep one per file", name)
	}
	return nil
}

package gateway

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadConfig: any file either loads into a valid config or fails
// with an error; a config that loads writes back and loads again.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("name: hq\napi: {listen: 127.0.0.1:8443}\n"))
	f.Add([]byte("name: hq\nwireguard: {address: 10.99.0.1/24, key_file: /k, endpoint: vpn.example.com:51820, store: /s}\n"))
	f.Add([]byte("name: hq\ndns:\n  listen: 127.0.0.1:53\n  cache: {max_ttl: 1h}\n  lists: [{name: a, category: ads, format: domains, path: /x}]\n"))
	f.Add([]byte("name: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "gateway.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("LoadConfig accepted a config Validate rejects: %v", err)
		}
		out := filepath.Join(dir, "again.yaml")
		if err := WriteConfig(out, cfg); err != nil {
			t.Fatalf("a loaded config does not write back: %v", err)
		}
		if _, err := LoadConfig(out); err != nil {
			t.Fatalf("a written config does not load: %v", err)
		}
	})
}

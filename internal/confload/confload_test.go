package confload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type sample struct {
	Name     string        `yaml:"name"`
	Interval time.Duration `yaml:"interval"`
	Nested   struct {
		Port int `yaml:"port"`
	} `yaml:"nested"`
}

func TestDecodeKeepsDefaultsAndReadsDurations(t *testing.T) {
	v := sample{Name: "default"}
	require.NoError(t, Decode(strings.NewReader("interval: 5s\nnested:\n  port: 9\n"), "t.yaml", &v))
	assert.Equal(t, "default", v.Name)
	assert.Equal(t, 5*time.Second, v.Interval)
	assert.Equal(t, 9, v.Nested.Port)
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "  \n", "empty"},
		{"comments only", "# nothing\n", "no YAML document"},
		{"unknown key names its line", "name: x\nnmae: y\n", "line 2: field nmae not found"},
		{"wrong type", "nested:\n  port: eighty\n", "line 2"},
		{"bad duration", "interval: soon\n", "line 1: cannot unmarshal"},
		{"two documents", "name: a\n---\nname: b\n", "more than one"},
		{"not a mapping", "- a\n- b\n", "t.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := sample{Name: "keep"}
			err := Decode(strings.NewReader(tc.in), "t.yaml", &v)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "t.yaml", "errors name the file")
		})
	}
}

func TestDecodeRejectsHugeFiles(t *testing.T) {
	err := Decode(strings.NewReader("name: "+strings.Repeat("x", MaxSize)), "big.yaml", &sample{})
	assert.ErrorContains(t, err, "larger than")
}

func TestFileMissing(t *testing.T) {
	err := File(filepath.Join(t.TempDir(), "nope.yaml"), &sample{})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzDecode(f *testing.F) {
	f.Add("name: a\ninterval: 1s\nnested: {port: 1}\n")
	f.Add("a: [\n")
	f.Add("---\n---\n")
	f.Add("interval: 9999999999999999999h\n")
	f.Fuzz(func(t *testing.T, in string) {
		var v sample
		_ = Decode(strings.NewReader(in), "fuzz.yaml", &v) // must not panic
	})
}

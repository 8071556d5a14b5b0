package tunnel

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrivateKeyNeverPrints(t *testing.T) {
	k, err := GeneratePrivateKey()
	require.NoError(t, err)
	secret := k.secretBase64()
	type wrapper struct{ K PrivateKey }
	for _, s := range []string{
		k.String(), fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %x %q", k, k, k, k, k, k),
		fmt.Sprintf("%v", wrapper{k}), fmt.Sprintf("%+v", &wrapper{k}),
	} {
		assert.NotContains(t, s, secret)
		assert.NotContains(t, s, k.uapiHex()[:16])
	}
	j, err := json.Marshal(wrapper{k})
	require.NoError(t, err)
	assert.NotContains(t, string(j), secret[:8])

	psk, err := GeneratePresharedKey()
	require.NoError(t, err)
	assert.NotContains(t, fmt.Sprintf("%v %x %#v", psk, psk, psk), psk.secretBase64())
}

func TestKeyDerivationMatchesWG(t *testing.T) {
	// From wg(8)'s own example: wg pubkey of this private key.
	k, err := ParsePrivateKey("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=")
	require.NoError(t, err)
	assert.Equal(t, "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=", k.Public().String())
}

func TestParseKeyErrorsHideTheInput(t *testing.T) {
	for _, in := range []string{"", "short", strings.Repeat("A", 43) + "!", strings.Repeat("A", 60)} {
		_, err := ParsePrivateKey(in)
		require.Error(t, err)
		if len(in) > 4 {
			assert.NotContains(t, err.Error(), in)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "private.key")
	k, err := GeneratePrivateKey()
	require.NoError(t, err)
	require.NoError(t, WriteKeyFile(path, k))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	got, err := ReadKeyFile(path)
	require.NoError(t, err)
	assert.True(t, got.Equal(k))

	// Overwrite atomically: no temporary file is left behind.
	k2, err := GeneratePrivateKey()
	require.NoError(t, err)
	require.NoError(t, WriteKeyFile(path, k2))
	ents, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, ents, 1)

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = ReadKeyFile(path)
	require.ErrorContains(t, err, "must be 0600")
	assert.NotContains(t, err.Error(), k2.secretBase64())

	assert.Error(t, WriteKeyFile(filepath.Join(dir, "zero"), PrivateKey{}))
}

// TestLowOrderPublicKeys: the gateway spent a token use and an address on
// a low-order key, and answered 500 for all zeros. Every encoding of a
// small-order point, with and without the ignored top bit, is refused.
func TestLowOrderPublicKeys(t *testing.T) {
	hexes := []string{
		"0000000000000000000000000000000000000000000000000000000000000000", // 0
		"0100000000000000000000000000000000000000000000000000000000000000", // 1
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1
		"0000000000000000000000000000000000000000000000000000000000000080", // 0, top bit set
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880", // order 8, top bit set
	}
	for _, h := range hexes {
		var k PublicKey
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		copy(k[:], b)
		if err := CheckPublicKey(k); !errors.Is(err, ErrLowOrderKey) {
			t.Errorf("%s: CheckPublicKey = %v, want ErrLowOrderKey", h, err)
		}
		if _, err := ParsePublicKey(k.String()); !errors.Is(err, ErrLowOrderKey) {
			t.Errorf("%s: ParsePublicKey = %v, want ErrLowOrderKey", h, err)
		}
	}
	for range 100 {
		k, err := GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckPublicKey(k.Public()); err != nil {
			t.Fatalf("a real key refused: %v", err)
		}
	}
}

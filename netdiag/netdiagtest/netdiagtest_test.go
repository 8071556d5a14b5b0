package netdiagtest_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/netdiag/measureserver"
	"github.com/tetherwfh/tether/netdiag/netdiagtest"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// TestServerServesAndStops: the measurement server answers its config
// document on the trusted pool and /healthz, the reflector reflects, and
// both are gone once the test that started them ends.
func TestServerServesAndStops(t *testing.T) {
	var srv *netdiagtest.Server
	t.Run("running", func(t *testing.T) {
		srv = netdiagtest.New(t, netdiagtest.Options{})
		assert.Equal(t, "http://"+srv.Addr.String(), srv.URL)
		assert.True(t, srv.Addr.Addr().IsLoopback())
		assert.True(t, srv.STAMP.Addr().IsLoopback())

		code, body := get(t, srv.URL+measureserver.PathConfig)
		require.Equal(t, http.StatusOK, code)
		var doc struct {
			Cap float64 `json:"tether_rate_cap_mbps"`
		}
		require.NoError(t, json.Unmarshal(body, &doc))
		assert.Zero(t, doc.Cap, "the trusted pool has no bandwidth guard by default")
		code, _ = get(t, srv.URL+netdiagtest.PathHealth)
		assert.Equal(t, http.StatusOK, code)

		conn, err := net.Dial("udp", srv.STAMP.String())
		require.NoError(t, err)
		defer conn.Close()
		res, err := stamp.Probe(context.Background(), conn, stamp.ProbeConfig{Count: 3, Interval: 10 * time.Millisecond, Wait: time.Second})
		require.NoError(t, err)
		assert.Len(t, res.RTTs, 3)
		assert.Equal(t, uint64(3), srv.Reflector.Stats().Reflected)
	})
	_, err := net.DialTimeout("tcp", srv.Addr.String(), time.Second)
	assert.Error(t, err, "the measurement server closed with its test")
	pc, err := net.ListenPacket("udp", srv.STAMP.String())
	require.NoError(t, err, "the reflector's port is free again")
	pc.Close()
}

// TestServerWithPublicLimits: a test that needs the public pool's guard
// passes its own measurement config.
func TestServerWithPublicLimits(t *testing.T) {
	srv := netdiagtest.New(t, netdiagtest.Options{Measure: &measureserver.Config{}})
	_, body := get(t, srv.URL+measureserver.PathConfig)
	var doc struct {
		Cap float64 `json:"tether_rate_cap_mbps"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	assert.Equal(t, measureserver.DefaultPublicLimits.MaxMbps, doc.Cap)
}

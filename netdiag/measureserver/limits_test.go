package measureserver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testStall is the stall timeout the tests inject: short, so a stalled
// transfer ends within the test, long enough for a loaded race-detector
// run to keep live transfers moving.
const testStall = 300 * time.Millisecond

// deviceHeader marks a request as an enrolled device's in these tests;
// the real credential arrives with the daemon.
const deviceHeader = "X-Test-Device"

func deviceAuth(r *http.Request) bool { return r.Header.Get(deviceHeader) == "enrolled" }

// clientFrom returns an HTTP/1.1 client whose connections leave from ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// h2cClientFrom returns an h2c client whose connection leaves from ip.
func h2cClientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext, Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, url string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// stalledGet sends a raw HTTP/1.1 request for path from ip and never
// reads the answer: a client that stopped reading.
func stalledGet(t *testing.T, base, ip, path string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: gw\r\n\r\n", path)
	require.NoError(t, err)
	return c
}

// TestStalledReadersEndAndOthersAreServed: clients that open /large and
// stop reading held their slots for ever, so a few addresses locked every
// other client out (429). They end within StallTimeout, over HTTP/1.1 and
// HTTP/2 alike; an enrolled device is served all along from its own pool.
func TestStalledReadersEndAndOthersAreServed(t *testing.T) {
	s, base := start(t, Config{StallTimeout: testStall, Authenticate: deviceAuth,
		Public: Limits{MaxConcurrentPerClient: 4, MaxConcurrent: 8, MaxMbps: NoLimit}})
	for range 4 {
		stalledGet(t, base, "127.0.0.1", PathLarge)
	}
	h2 := h2cClientFrom("127.0.0.2")
	for range 4 {
		resp := get(t, h2, base+PathLarge) // its body is never read
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, 2, resp.ProtoMajor)
	}
	require.Eventually(t, func() bool { return s.Stats().ActivePublic == 8 }, 5*time.Second, time.Millisecond)
	full := time.Now()

	other := clientFrom("127.0.0.3")
	assert.Equal(t, http.StatusTooManyRequests, get(t, other, base+PathLarge).StatusCode, "the public pool is full")
	dev := get(t, clientFrom("127.0.0.4"), base+PathDown+"?bytes=1000000", deviceHeader, "enrolled")
	require.Equal(t, http.StatusOK, dev.StatusCode, "an enrolled device is served meanwhile")
	n, err := io.Copy(io.Discard, dev.Body)
	require.NoError(t, err)
	assert.EqualValues(t, 1000000, n)

	require.Eventually(t, func() bool { return s.Stats().ActivePublic == 0 }, 20*testStall, time.Millisecond,
		"the stalled transfers end: %+v", s.Stats())
	t.Logf("8 stalled transfers ended %v after the pool filled (StallTimeout %v)", time.Since(full).Round(time.Millisecond), testStall)
	assert.EqualValues(t, 8, s.Stats().Stalled)
	resp := get(t, other, base+PathDown+"?bytes=1000")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the other client is served once they ended")
}

// TestStalledUploadEnds: an upload that stops sending ends with 408.
func TestStalledUploadEnds(t *testing.T) {
	s, base := start(t, Config{StallTimeout: testStall})
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000000\r\n\r\n%s", PathUpload, strings.Repeat("x", 1000))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*testStall)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "an answer, not a connection held open")
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	assert.EqualValues(t, 1, s.Stats().Stalled)
	assert.Eventually(t, func() bool { return s.Stats().ActivePublic == 0 }, time.Second, time.Millisecond)
}

// TestSlowTransfersAreNotStalls: transfers that keep moving, however
// slowly, run for many StallTimeouts: a download paced by the guard (its
// waits are not stalls) and an upload its client trickles.
func TestSlowTransfersAreNotStalls(t *testing.T) {
	const mbps, size = 4, 1_000_000 // 2 s, or 6 stall timeouts
	s, base := start(t, Config{StallTimeout: testStall, Public: Limits{MaxMbps: mbps}})
	resp := get(t, clientFrom("127.0.0.1"), fmt.Sprintf("%s%s?bytes=%d", base, PathDown, size))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	n, err := io.Copy(io.Discard, resp.Body)
	require.NoError(t, err, "the download was not cut: %+v", s.Stats())
	assert.EqualValues(t, size, n)

	pr, pw := io.Pipe()
	go func() {
		for range 12 { // 12 x 16 KiB, 75 ms apart: 0.9 s, or 3 stall timeouts
			if _, err := pw.Write(make([]byte, 16<<10)); err != nil {
				return
			}
			time.Sleep(testStall / 4)
		}
		pw.Close()
	}()
	up, err := clientFrom("127.0.0.1").Post(base+PathUpload, "application/octet-stream", pr)
	require.NoError(t, err)
	defer up.Body.Close()
	require.Equal(t, http.StatusOK, up.StatusCode)
	var res upResult
	require.NoError(t, json.NewDecoder(up.Body).Decode(&res))
	assert.EqualValues(t, 12*16<<10, res.Bytes)
	assert.Zero(t, s.Stats().Stalled)
}

// TestGuardWaitsLongerThanStallTimeoutAreNotStalls: under HTTP/2 a
// stream's deadline fires even while the handler waits on the guard, so
// a guard shared by many streams (here: one slow enough that each chunk
// waits 0.5 s) would reset healthy streams.
func TestGuardWaitsLongerThanStallTimeoutAreNotStalls(t *testing.T) {
	const size = 3 * writeChunk
	s, base := start(t, Config{StallTimeout: testStall, Public: Limits{MaxMbps: 0.5}})
	resp := get(t, h2cClientFrom("127.0.0.1"), fmt.Sprintf("%s%s?bytes=%d", base, PathDown, size))
	require.Equal(t, 2, resp.ProtoMajor)
	n, err := io.Copy(io.Discard, resp.Body)
	require.NoError(t, err, "the download was not cut: %+v", s.Stats())
	assert.EqualValues(t, size, n)
}

// TestTrustedPoolIsUntouchedByAPublicFlood: outsiders who fill the public
// pool's slots and spend their byte budget change nothing for enrolled
// devices, who also see their own (absent) bandwidth cap.
func TestTrustedPoolIsUntouchedByAPublicFlood(t *testing.T) {
	s, base := start(t, Config{Authenticate: deviceAuth,
		Public:  Limits{MaxConcurrentPerClient: 2, MaxConcurrent: 2, MaxMbps: 40, ClientBytes: 1 << 20, ClientBytesPeriod: time.Hour},
		Trusted: Limits{MaxConcurrentPerClient: 2, MaxConcurrent: 2}})
	outsider := clientFrom("127.0.0.1")
	// The budget: 1 MiB (and 291 bytes a second), then 429.
	b, err := io.ReadAll(get(t, outsider, base+PathDown+"?bytes=900000").Body)
	require.NoError(t, err)
	require.Len(t, b, 900000)
	spent := get(t, outsider, base+PathDown+"?bytes=900000")
	n, _ := io.Copy(io.Discard, spent.Body)
	assert.Less(t, n, int64(900000), "a download past the budget is cut short")
	refused := get(t, outsider, base+PathDown+"?bytes=100000") // its first chunk is more than the 17 KB left
	assert.Equal(t, http.StatusTooManyRequests, refused.StatusCode)
	assert.Equal(t, "3600", refused.Header.Get("Retry-After"))
	// The slots: two transfers from two outsiders fill the public pool.
	get(t, clientFrom("127.0.0.2"), base+PathLarge)
	get(t, clientFrom("127.0.0.3"), base+PathLarge)
	require.Eventually(t, func() bool { return s.Stats().ActivePublic == 2 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, http.StatusTooManyRequests, get(t, clientFrom("127.0.0.4"), base+PathLarge).StatusCode)

	dev := clientFrom("127.0.0.1") // the outsider's address, authenticated
	for range 2 {
		resp := get(t, dev, base+PathDown+"?bytes=2000000", deviceHeader, "enrolled")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		n, err := io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		assert.EqualValues(t, 2000000, n, "no public budget applies")
	}
	assert.Equal(t, 40.0, capOf(t, outsider, base), "outsiders see the public guard")
	assert.Zero(t, capOf(t, dev, base, deviceHeader, "enrolled"), "devices see none")
	assert.EqualValues(t, 1, s.Stats().BudgetCut)
}

func capOf(t *testing.T, c *http.Client, base string, header ...string) float64 {
	t.Helper()
	var doc configDoc
	require.NoError(t, json.NewDecoder(get(t, c, base+PathConfig, header...).Body).Decode(&doc))
	return doc.RateCapMbps
}

// TestTrustAllServesEveryoneFromTheTrustedPool: the in-tunnel service.
func TestTrustAllServesEveryoneFromTheTrustedPool(t *testing.T) {
	s, base := start(t, Config{TrustAll: true, Public: Limits{MaxConcurrent: 1}})
	c := clientFrom("127.0.0.1")
	for range 3 {
		require.Equal(t, http.StatusOK, get(t, c, base+PathLarge).StatusCode)
	}
	require.Eventually(t, func() bool { return s.Stats().ActiveTrusted == 3 }, 5*time.Second, time.Millisecond)
	assert.Zero(t, s.Stats().ActivePublic)
	assert.Zero(t, capOf(t, c, base))

	_, err := New(Config{TrustAll: true, Authenticate: deviceAuth})
	assert.ErrorContains(t, err, "not both")
}

// TestLargeHonoursThePerRequestCap: /large served 8 GiB whatever
// MaxDownBytes said.
func TestLargeHonoursThePerRequestCap(t *testing.T) {
	const cap = 123_457
	_, base := start(t, Config{MaxDownBytes: cap})
	resp := get(t, clientFrom("127.0.0.1"), base+PathLarge)
	assert.EqualValues(t, cap, resp.ContentLength)
	n, err := io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	assert.EqualValues(t, cap, n)
}

// TestConfigDocumentIgnoresAForgedHost: the URLs come from the address
// the client connected to (or the configured base), never from Host.
func TestConfigDocumentIgnoresAForgedHost(t *testing.T) {
	urlsOf := func(t *testing.T, c *http.Client, url string) configDoc {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url+PathConfig, nil)
		require.NoError(t, err)
		req.Host = "evil.example:666"
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var doc configDoc
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
		return doc
	}
	_, base := start(t, Config{})
	doc := urlsOf(t, http.DefaultClient, base)
	assert.Equal(t, base+PathLarge, doc.URLs.Large)
	assert.Equal(t, base+PathUpload, doc.URLs.UploadOld)

	s, err := New(Config{})
	require.NoError(t, err)
	tlsSrv := httptest.NewTLSServer(s.Handler())
	defer tlsSrv.Close()
	assert.Equal(t, tlsSrv.URL+PathSmall, urlsOf(t, tlsSrv.Client(), tlsSrv.URL).URLs.Small, "https, from the TLS state")

	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		srv := NewHTTPServer(s.Handler())
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		v6 := "http://" + ln.Addr().String()
		assert.Equal(t, v6+PathSmall, urlsOf(t, http.DefaultClient, v6).URLs.Small, "an IPv6 address in brackets")
	}

	_, based := start(t, Config{BaseURL: "https://gw.example.com:8443"})
	assert.Equal(t, "https://gw.example.com:8443/large", urlsOf(t, http.DefaultClient, based).URLs.Large)
}

func TestLimitsAreValidated(t *testing.T) {
	for _, cfg := range []Config{
		{Public: Limits{MaxMbps: -2}},
		{Trusted: Limits{MaxConcurrent: -1}},
		{Public: Limits{ClientBytes: 1000}},
		{Public: Limits{ClientBytesPeriod: -time.Second}},
		{Trusted: Limits{V6Bits: 129}},
		{StallTimeout: -time.Second},
	} {
		_, err := New(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
	_, err := New(Config{Public: Limits{MaxMbps: NoLimit, ClientBytes: NoLimit}})
	assert.NoError(t, err)
}

package measureserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// start serves a new Server for cfg on loopback, with h2c, as the gateway
// does.
func start(tb testing.TB, cfg Config) (*Server, string) {
	tb.Helper()
	s, err := New(cfg)
	require.NoError(tb, err)
	return s, serve(tb, s)
}

// serve serves s on loopback through NewHTTPServer and returns its base
// URL. Tweak s before calling it: the handlers read s unsynchronized.
func serve(tb testing.TB, s *Server) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	srv := NewHTTPServer(s.Handler())
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// client returns an HTTP/1.1 client of its own, so tests share no
// connections.
func client(tb testing.TB) *http.Client {
	tb.Helper()
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// h2cClient returns a client that speaks only HTTP/2 without TLS.
func h2cClient(tb testing.TB) *http.Client {
	tb.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	return do(t, c, http.MethodGet, u, nil)
}

func do(t *testing.T, c *http.Client, method, u string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// nqDoc is the config document as a client of either naming reads it.
type nqDoc struct {
	Version int `json:"version"`
	URLs    struct {
		Small        string `json:"small_download_url"`
		Large        string `json:"large_download_url"`
		Upload       string `json:"upload_url"`
		LegacySmall  string `json:"small_https_download_url"`
		LegacyLarge  string `json:"large_https_download_url"`
		LegacyUpload string `json:"https_upload_url"`
	} `json:"urls"`
}

func TestConfigDocument(t *testing.T) {
	_, plain := start(t, Config{})
	tlsSrv := httptest.NewUnstartedServer(must(New(Config{})).Handler())
	tlsSrv.EnableHTTP2 = true
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	for _, tc := range []struct {
		name   string
		server string       // base URL to fetch from
		c      *http.Client // nil: plain HTTP/1.1
		base   string       // base the document must advertise
	}{
		{"derived from the request", plain, nil, plain},
		{"derived over TLS", tlsSrv.URL, tlsSrv.Client(), tlsSrv.URL},
		{"BaseURL", startURL(t, Config{BaseURL: "https://gw.example.com:8443"}), nil, "https://gw.example.com:8443"},
		{"BaseURL with a slash", startURL(t, Config{BaseURL: "https://gw.example.com:8443/"}), nil, "https://gw.example.com:8443"},
		{"BaseURL with a path", startURL(t, Config{BaseURL: "http://[2001:db8::1]:8080/nq/"}), nil, "http://[2001:db8::1]:8080/nq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			if c == nil {
				c = client(t)
			}
			resp, body := get(t, c, tc.server+PathConfig)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.Equal(t, "no-store, no-transform", resp.Header.Get("Cache-Control"))
			assert.Empty(t, resp.Header.Get("Content-Encoding"))

			var top map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(body, &top))
			assert.ElementsMatch(t, []string{"version", "urls"}, keys(top), "only the draft's names, no test_endpoint")

			var doc nqDoc
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&doc))
			assert.Equal(t, 1, doc.Version)
			assert.Equal(t, tc.base+"/small", doc.URLs.Small)
			assert.Equal(t, tc.base+"/large", doc.URLs.Large)
			assert.Equal(t, tc.base+"/upload", doc.URLs.Upload)
			assert.Equal(t, doc.URLs.Small, doc.URLs.LegacySmall)
			assert.Equal(t, doc.URLs.Large, doc.URLs.LegacyLarge)
			assert.Equal(t, doc.URLs.Upload, doc.URLs.LegacyUpload)
			var host string
			for _, raw := range []string{doc.URLs.Small, doc.URLs.Large, doc.URLs.Upload} {
				u, err := url.Parse(raw)
				require.NoError(t, err)
				assert.True(t, u.IsAbs(), raw)
				if host == "" {
					host = u.Host
				}
				assert.Equal(t, host, u.Host, "the draft requires one host for all three URLs")
			}
		})
	}
}

func TestTheAdvertisedURLsWork(t *testing.T) {
	_, base := start(t, Config{LargeObjectBytes: 3 << 20})
	c := client(t)
	_, body := get(t, c, base+PathConfig)
	var doc nqDoc
	require.NoError(t, json.Unmarshal(body, &doc))

	resp, b := get(t, c, doc.URLs.Small)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Len(t, b, 1)
	resp, b = get(t, c, doc.URLs.Large)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Len(t, b, 3<<20)
	resp, _ = do(t, c, http.MethodPost, doc.URLs.Upload, strings.NewReader("abc"))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{MaxDownBytes: -1}, "MaxDownBytes"},
		{Config{MaxUpBytes: -1}, "MaxUpBytes"},
		{Config{LargeObjectBytes: -1}, "LargeObjectBytes"},
		{Config{MaxConcurrentPerClient: -1}, "MaxConcurrentPerClient"},
		{Config{BaseURL: "gw.example.com"}, "http:// or https://"},
		{Config{BaseURL: "ftp://gw.example.com"}, "http:// or https://"},
		{Config{BaseURL: "https://"}, "no host"},
		{Config{BaseURL: "https://gw.example.com/?x=1"}, "query"},
		{Config{BaseURL: "https://user@gw.example.com"}, "user info"},
		{Config{BaseURL: "https://gw.example.com:port"}, "BaseURL"},
	} {
		_, err := New(tc.cfg)
		require.Error(t, err, "%+v", tc.cfg)
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.ErrorContains(t, err, tc.want)
	}
	s, err := New(Config{})
	require.NoError(t, err)
	assert.EqualValues(t, DefaultMaxDownBytes, s.cfg.MaxDownBytes)
	assert.EqualValues(t, DefaultMaxUpBytes, s.cfg.MaxUpBytes)
	assert.EqualValues(t, DefaultLargeObjectBytes, s.cfg.LargeObjectBytes)
	assert.Equal(t, DefaultMaxConcurrentPerClient, s.cfg.MaxConcurrentPerClient)
}

func TestSmallGenerate204AndMethods(t *testing.T) {
	_, base := start(t, Config{})
	c := client(t)

	resp, b := get(t, c, base+PathSmall)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, []byte("x"), b)
	assert.EqualValues(t, 1, resp.ContentLength)
	assert.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store, no-transform", resp.Header.Get("Cache-Control"))

	resp, b = get(t, c, base+PathGenerate)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Empty(t, b)

	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, PathSmall, http.StatusMethodNotAllowed},
		{http.MethodPost, PathConfig, http.StatusMethodNotAllowed},
		{http.MethodPost, PathLarge, http.StatusMethodNotAllowed},
		{http.MethodPut, PathDown + "?bytes=1", http.StatusMethodNotAllowed},
		{http.MethodGet, PathUpload, http.StatusMethodNotAllowed},
		{http.MethodGet, PathUp, http.StatusMethodNotAllowed},
		{http.MethodDelete, PathIP, http.StatusMethodNotAllowed},
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodHead, PathSmall, http.StatusOK},
	} {
		resp, _ := do(t, c, tc.method, base+tc.path, nil)
		assert.Equal(t, tc.want, resp.StatusCode, "%s %s", tc.method, tc.path)
		assert.Equal(t, "no-store, no-transform", resp.Header.Get("Cache-Control"), "%s %s", tc.method, tc.path)
		if tc.want == http.StatusMethodNotAllowed {
			assert.NotEmpty(t, resp.Header.Get("Allow"), "%s %s", tc.method, tc.path)
		}
	}
}

func TestDownIsExact(t *testing.T) {
	s, base := start(t, Config{MaxDownBytes: 4 << 20})
	c := client(t)
	var total uint64
	for _, n := range []int{0, 1, 1<<20 + 7} {
		resp, b := get(t, c, fmt.Sprintf("%s%s?bytes=%d", base, PathDown, n))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Len(t, b, n)
		assert.EqualValues(t, n, resp.ContentLength)
		assert.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
		total += uint64(n)
		if n > 1<<20 {
			assert.Greater(t, deflated(t, b), n*99/100, "the data must not compress")
		}
	}
	assert.Equal(t, total, s.Stats().BytesDown)

	for _, q := range []string{"-1", "abc", "", "1.5", fmt.Sprint(4<<20 + 1), "99999999999999999999"} {
		resp, b := get(t, c, base+PathDown+"?bytes="+url.QueryEscape(q))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "bytes=%q", q)
		assert.Contains(t, string(b), "from 0 to 4194304", "bytes=%q", q)
	}
	resp, b := get(t, c, base+PathDown)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "no bytes parameter")
	assert.Contains(t, string(b), "4194304")

	resp, b = do(t, c, http.MethodHead, base+PathDown+"?bytes=1000", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 1000, resp.ContentLength)
	assert.Empty(t, b)
}

func TestLargeStopsWhenTheClientLeaves(t *testing.T) {
	for name, newClient := range map[string]func(testing.TB) *http.Client{"HTTP/1.1": client, "h2c": h2cClient} {
		t.Run(name, func(t *testing.T) {
			s, base := start(t, Config{})
			c := newClient(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+PathLarge, nil)
			require.NoError(t, err)
			resp, err := c.Do(req)
			require.NoError(t, err)
			assert.EqualValues(t, DefaultLargeObjectBytes, resp.ContentLength)
			assert.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
			_, err = io.CopyN(io.Discard, resp.Body, 4<<20)
			require.NoError(t, err)
			assert.EqualValues(t, 1, s.Stats().ActiveTransfers)

			cancel()
			resp.Body.Close()
			assert.Eventually(t, func() bool { return s.Stats().ActiveTransfers == 0 }, 5*time.Second, 5*time.Millisecond,
				"the handler returns once the client leaves")
			assert.Less(t, s.Stats().BytesDown, uint64(1<<30), "streaming stopped long before the 8 GiB end")
			assert.Empty(t, s.limit.active, "the client's slot is freed")
		})
	}
}

func TestLargeDropsAClientThatStopsReading(t *testing.T) {
	s, err := New(Config{})
	require.NoError(t, err)
	s.stall = 200 * time.Millisecond
	base := serve(t, s)

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", PathLarge)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// Read nothing more: the socket buffers fill, the server's writes
	// block, and the stall deadline ends the transfer.
	assert.Eventually(t, func() bool { return s.Stats().ActiveTransfers == 0 }, 10*time.Second, 10*time.Millisecond)
}

func TestLargeHead(t *testing.T) {
	s, base := start(t, Config{})
	resp, b := do(t, client(t), http.MethodHead, base+PathLarge, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, DefaultLargeObjectBytes, resp.ContentLength)
	assert.Empty(t, b)
	assert.Zero(t, s.Stats().BytesDown)
}

// streamed hides a reader's length so the request goes out chunked.
type streamed struct{ io.Reader }

func TestUploadCountsBytes(t *testing.T) {
	s, base := start(t, Config{})
	c := client(t)
	const n = 1<<20 + 3
	var want uint64
	for _, tc := range []struct {
		name, path string
		body       io.Reader
		size       int64
	}{
		{"with Content-Length", PathUpload, bytes.NewReader(make([]byte, n)), n},
		{"chunked", PathUp, streamed{bytes.NewReader(make([]byte, n))}, n},
		{"empty", PathUpload, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, c, http.MethodPost, base+tc.path, tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var res uploadResult
			require.NoError(t, json.Unmarshal(b, &res))
			assert.Equal(t, tc.size, res.Bytes)
			assert.GreaterOrEqual(t, res.DurationMS, 0.0)
			if tc.size == 0 {
				assert.Zero(t, res.DurationMS)
			}
			want += uint64(tc.size)
			assert.Equal(t, want, s.Stats().BytesUp)
		})
	}
	assert.Zero(t, s.Stats().ActiveTransfers)
}

func TestUploadOverTheCap(t *testing.T) {
	s, base := start(t, Config{MaxUpBytes: 1024})
	c := client(t)
	for _, tc := range []struct {
		name string
		body io.Reader
	}{
		{"declared by Content-Length", bytes.NewReader(make([]byte, 2048))},
		{"found while reading", streamed{bytes.NewReader(make([]byte, 2048))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, c, http.MethodPost, base+PathUp, tc.body)
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
			assert.Contains(t, string(b), "limit of 1024 bytes")
		})
	}
	resp, b := do(t, c, http.MethodPost, base+PathUpload, bytes.NewReader(make([]byte, 1024)))
	assert.Equal(t, http.StatusOK, resp.StatusCode, "exactly the cap is fine")
	assert.EqualValues(t, 1024, decodeUpload(t, b).Bytes)
	assert.Zero(t, s.Stats().ActiveTransfers)
}

func decodeUpload(t *testing.T, b []byte) uploadResult {
	t.Helper()
	var res uploadResult
	require.NoError(t, json.Unmarshal(b, &res))
	return res
}

// chunks returns at most size bytes per Read.
type chunks struct {
	r    io.Reader
	size int
}

func (c chunks) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.size)]) }

func TestDrainTimesFirstToLastByte(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	calls := 0
	clock := func() time.Time { calls++; return t0.Add(time.Duration(calls) * 10 * time.Millisecond) }
	var reads []int
	n, first, last, err := drain(chunks{bytes.NewReader(make([]byte, 25)), 10}, make([]byte, 64), clock, func(m int) { reads = append(reads, m) })
	require.NoError(t, err)
	assert.EqualValues(t, 25, n)
	assert.Equal(t, []int{10, 10, 5}, reads)
	assert.Equal(t, t0.Add(10*time.Millisecond), first, "clock read after the first data")
	assert.Equal(t, t0.Add(30*time.Millisecond), last, "and after the last; EOF alone does not count")

	boom := errors.New("boom")
	_, _, _, err = drain(io.MultiReader(strings.NewReader("ab"), errReader{boom}), make([]byte, 8), time.Now, func(int) {})
	assert.ErrorIs(t, err, boom)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestConcurrencyLimitPerClient(t *testing.T) {
	s, base := start(t, Config{MaxConcurrentPerClient: 2})
	c := client(t)
	var bodies []io.Closer
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	for range 2 {
		resp, err := c.Get(base + PathLarge)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		bodies = append(bodies, resp.Body)
	}
	assert.EqualValues(t, 2, s.Stats().ActiveTransfers)

	resp, b := get(t, c, base+PathDown+"?bytes=10")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Equal(t, "no-store, no-transform", resp.Header.Get("Cache-Control"))
	assert.Contains(t, string(b), "127.0.0.1 already has 2 transfers")
	resp, _ = do(t, c, http.MethodPost, base+PathUpload, strings.NewReader("x"))
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "uploads share the limit")
	assert.EqualValues(t, 2, s.Stats().RejectedByLimit)

	resp, _ = get(t, c, base+PathSmall)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "small endpoints are not limited")
	resp, _ = get(t, c, base+PathConfig)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	for _, b := range bodies {
		b.Close()
	}
	bodies = nil
	assert.Eventually(t, func() bool {
		resp, err := c.Get(base + PathDown + "?bytes=10")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond, "slots free again once transfers end")
}

func TestIPEchoesTheRealPeer(t *testing.T) {
	_, base := start(t, Config{})
	c := client(t)
	var local net.Addr
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { local = info.Conn.LocalAddr() },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+PathIP, nil)
	require.NoError(t, err)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Real-IP", "203.0.113.9")
	req.Header.Set("Forwarded", "for=203.0.113.9")
	resp, err := c.Do(req)
	require.NoError(t, err)
	var got ipAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "127.0.0.1", got.IP)
	require.NotNil(t, local)
	assert.EqualValues(t, local.(*net.TCPAddr).Port, got.Port)

	req.Header.Set("Accept", "text/plain")
	resp, err = c.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "127.0.0.1\n", string(b))
	assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
}

func TestPrefersText(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"*/*"}, false},
		{[]string{"text/plain"}, true},
		{[]string{"TEXT/PLAIN; charset=utf-8"}, true},
		{[]string{"text/*"}, true},
		{[]string{"application/json"}, false},
		{[]string{"application/json, text/plain"}, false},
		{[]string{"text/plain, application/json;q=0.9"}, true},
		{[]string{"text/plain;q=0.5, */*"}, false},
		{[]string{"text/html, text/plain;q=0.8, */*;q=0.1"}, true},
		{[]string{"application/json;q=0", "text/plain;q=0.1"}, true},
		{[]string{"text/plain;q=2"}, false},
		{[]string{"garbage;;;"}, false},
	} {
		assert.Equal(t, tc.want, prefersText(tc.accept), "%q", tc.accept)
	}
}

func TestH2C(t *testing.T) {
	_, base := start(t, Config{})
	c := h2cClient(t)
	resp, b := get(t, c, base+PathSmall)
	assert.Equal(t, 2, resp.ProtoMajor, "h2c")
	assert.Len(t, b, 1)

	// A latency probe shares the connection that carries the load.
	large, err := c.Get(base + PathLarge)
	require.NoError(t, err)
	defer large.Body.Close()
	_, err = io.CopyN(io.Discard, large.Body, 1<<20)
	require.NoError(t, err)
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+PathSmall, nil)
	require.NoError(t, err)
	probe, err := c.Do(req)
	require.NoError(t, err)
	probe.Body.Close()
	assert.Equal(t, http.StatusOK, probe.StatusCode)
	assert.Equal(t, 2, probe.ProtoMajor)
	assert.True(t, reused, "multiplexed on the loaded connection")
}

func BenchmarkDown(b *testing.B) {
	_, base := start(b, Config{})
	c := client(b)
	const n = 64 << 20
	u := fmt.Sprintf("%s%s?bytes=%d", base, PathDown, n)
	b.SetBytes(n)
	for b.Loop() {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || got != n {
			b.Fatalf("read %d of %d bytes: %v", got, n, err)
		}
	}
}

func startURL(tb testing.TB, cfg Config) string {
	_, base := start(tb, cfg)
	return base
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// deflated is the size of b after the strongest deflate.
func deflated(t *testing.T, b []byte) int {
	t.Helper()
	var out bytes.Buffer
	w, err := flate.NewWriter(&out, flate.BestCompression)
	require.NoError(t, err)
	_, err = w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return out.Len()
}

package measureserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// start serves a measurement server on loopback with h2c, as the gateway
// does.
func start(tb testing.TB, cfg Config) (*Server, string) {
	tb.Helper()
	s, err := New(cfg)
	require.NoError(tb, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	srv := NewHTTPServer(s.Handler())
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { srv.Close() })
	return s, "http://" + ln.Addr().String()
}

func TestConfigDocument(t *testing.T) {
	_, base := start(t, Config{})
	resp, err := http.Get(base + PathConfig)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Cache-Control"), "no-store")
	var doc configDoc
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	assert.Equal(t, 1, doc.Version)
	assert.Equal(t, base+"/small", doc.URLs.Small)
	assert.Equal(t, base+"/large", doc.URLs.Large)
	assert.Equal(t, base+"/upload", doc.URLs.Upload)
	assert.Equal(t, doc.URLs.Small, doc.URLs.SmallHTTP, "the draft's -00 names too, for goresponsiveness")
	assert.Equal(t, doc.URLs.Large, doc.URLs.LargeHTTP)
	assert.Equal(t, doc.URLs.Upload, doc.URLs.UploadOld)

	_, base2 := start(t, Config{BaseURL: "https://gw.example.com:8443/"})
	resp, err = http.Get(base2 + PathConfig)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	assert.Equal(t, "https://gw.example.com:8443/upload", doc.URLs.Upload)

	_, err = New(Config{BaseURL: "gw.example.com"})
	assert.ErrorContains(t, err, "http://")
}

func TestDownIsExact(t *testing.T) {
	_, base := start(t, Config{MaxDownBytes: 4 << 20})
	for _, n := range []int{0, 1, 1<<20 + 7} {
		resp, err := http.Get(fmt.Sprintf("%s/down?bytes=%d", base, n))
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Len(t, b, n)
		assert.EqualValues(t, n, resp.ContentLength)
	}
	for _, q := range []string{"-1", "abc", "", fmt.Sprint(4<<20 + 1)} {
		resp, err := http.Get(base + "/down?bytes=" + q)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "bytes=%q", q)
		assert.Contains(t, string(b), "from 0 to 4194304")
	}
}

func TestSmallAndGenerate204AndMethods(t *testing.T) {
	_, base := start(t, Config{})
	resp, err := http.Get(base + PathSmall)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Len(t, b, 1)
	resp, err = http.Get(base + PathGenerate)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, err = http.Post(base+PathSmall, "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestLargeStopsWhenTheClientLeaves(t *testing.T) {
	s, base := start(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+PathLarge, nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	assert.EqualValues(t, DefaultMaxDownBytes, resp.ContentLength, "the per-request cap bounds /large too")
	_, err = io.CopyN(io.Discard, resp.Body, 10<<20)
	require.NoError(t, err)
	cancel()
	resp.Body.Close()
	// The handler returns, so the client's slot is freed.
	assert.Eventually(t, func() bool { return s.Stats().ActivePublic == 0 }, 2*time.Second, 10*time.Millisecond)
	assert.Less(t, s.Stats().BytesDown, int64(DefaultMaxDownBytes), "streaming stopped long before the end")
	assert.Zero(t, s.Stats().Stalled, "a client that leaves did not stall")
}

func TestUploadCountsAndCaps(t *testing.T) {
	s, base := start(t, Config{MaxUpBytes: 1 << 20})
	resp, err := http.Post(base+PathUpload, "application/octet-stream", bytes.NewReader(make([]byte, 300_000)))
	require.NoError(t, err)
	var res upResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
	resp.Body.Close()
	assert.EqualValues(t, 300_000, res.Bytes)
	assert.EqualValues(t, 300_000, s.Stats().BytesUp)

	resp, err = http.Post(base+PathUp, "application/octet-stream", bytes.NewReader(make([]byte, 2<<20)))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Contains(t, string(b), "larger than 1048576")
}

// TestUploadProgress: asked, the server answers an upload at once and
// tells, while the body still comes, how much has arrived, ending with
// the total; a cut upload ends with the reason instead of a number.
func TestUploadProgress(t *testing.T) {
	_, base := start(t, Config{MaxUpBytes: 1 << 20})
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, base+PathUpload, pr)
	require.NoError(t, err)
	req.Header.Set(HeaderUploadProgress, "1")
	type answer struct {
		resp *http.Response
		err  error
	}
	ans := make(chan answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		ans <- answer{resp, err}
	}()
	chunk := make([]byte, 100_000)
	_, err = pw.Write(chunk)
	require.NoError(t, err)
	a := <-ans // the answer starts with the body still open
	require.NoError(t, a.err)
	defer a.resp.Body.Close()
	assert.Equal(t, http.StatusOK, a.resp.StatusCode)
	assert.Equal(t, "1", a.resp.Header.Get(HeaderUploadProgress))
	lines := bufio.NewScanner(a.resp.Body)
	require.True(t, lines.Scan())
	first, err := strconv.ParseInt(lines.Text(), 10, 64)
	require.NoError(t, err)
	assert.Positive(t, first)
	assert.LessOrEqual(t, first, int64(100_000))
	time.Sleep(2 * progressEvery)
	_, err = pw.Write(chunk)
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	var last int64
	for lines.Scan() {
		n, err := strconv.ParseInt(lines.Text(), 10, 64)
		require.NoError(t, err, "only counts: %q", lines.Text())
		assert.GreaterOrEqual(t, n, last, "counts never go back")
		last = n
	}
	assert.EqualValues(t, 200_000, last, "the last line is the total")

	// Over the cap: the last line says why.
	pr, pw = io.Pipe()
	req, err = http.NewRequest(http.MethodPost, base+PathUpload, pr)
	require.NoError(t, err)
	req.Header.Set(HeaderUploadProgress, "1")
	go func() {
		for range 12 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	pr.CloseWithError(io.ErrClosedPipe)
	require.NoError(t, err)
	text := strings.TrimSpace(string(b))
	assert.Contains(t, text[strings.LastIndex(text, "\n")+1:], "larger than 1048576", "the cut's reason is the last line")
}

func TestConcurrencyLimitPerClient(t *testing.T) {
	s, base := start(t, Config{Public: Limits{MaxConcurrentPerClient: 2}})
	var bodies []io.Closer
	for range 2 {
		resp, err := http.Get(base + PathLarge)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		bodies = append(bodies, resp.Body)
	}
	resp, err := http.Get(base + PathLarge)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.EqualValues(t, 1, s.Stats().Rejected)
	for _, b := range bodies {
		b.Close()
	}
	assert.Eventually(t, func() bool {
		resp, err := http.Get(base + "/down?bytes=10")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 2*time.Second, 20*time.Millisecond, "slots free again once transfers end")
}

func TestIPEchoesTheRealPeer(t *testing.T) {
	_, base := start(t, Config{})
	req, _ := http.NewRequest(http.MethodGet, base+PathIP, nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var got struct {
		IP   string `json:"ip"`
		Port int    `json:"port"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	resp.Body.Close()
	assert.Equal(t, "127.0.0.1", got.IP)
	assert.Positive(t, got.Port)

	req.Header.Set("Accept", "text/plain")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "127.0.0.1\n", string(b))
}

func TestH2CClientsWork(t *testing.T) {
	_, base := start(t, Config{})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	resp, err := (&http.Client{Transport: tr}).Get(base + PathSmall)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 2, resp.ProtoMajor, "h2c")
	assert.True(t, strings.HasPrefix(resp.Proto, "HTTP/2"))
}

func BenchmarkDown(b *testing.B) {
	_, base := start(b, Config{TrustAll: true})
	const n = 64 << 20
	b.SetBytes(n)
	for range b.N {
		resp, err := http.Get(fmt.Sprintf("%s/down?bytes=%d", base, n))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func TestTotalConcurrencyLimit(t *testing.T) {
	// Two "clients" on loopback addresses of their own; the total limit
	// is reached before either one's.
	s, base := start(t, Config{Public: Limits{MaxConcurrentPerClient: 5, MaxConcurrent: 2}})
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	a, b := from("127.0.0.1"), from("127.0.0.2")
	r1, err := a.Get(base + PathLarge)
	require.NoError(t, err)
	defer r1.Body.Close()
	r2, err := b.Get(base + PathLarge)
	require.NoError(t, err)
	defer r2.Body.Close()
	r3, err := b.Get(base + PathLarge)
	require.NoError(t, err)
	r3.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, r3.StatusCode)
	assert.EqualValues(t, 1, s.Stats().Rejected)
}

// The guard paces every client together. The check is a floor on the
// elapsed time, which a slow machine can only raise: 12 MB at 40 Mbit/s
// cannot arrive in under 2.4 s, less the guard's 10 ms burst.
func TestBandwidthGuard(t *testing.T) {
	const mbps, size = 40, 12_000_000
	s, base := start(t, Config{Public: Limits{MaxMbps: mbps}})
	resp, err := http.Get(base + PathConfig)
	require.NoError(t, err)
	var doc configDoc
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	resp.Body.Close()
	assert.Equal(t, float64(mbps), doc.RateCapMbps, "the config document advertises the guard")

	floor := time.Duration(float64(size*8)/(mbps*1e6)*float64(time.Second)) - 20*time.Millisecond
	start := time.Now()
	errs := make(chan error, 2)
	for range 2 { // two downloads share the guard
		go func() {
			resp, err := http.Get(fmt.Sprintf("%s/down?bytes=%d", base, size/2))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil && n != size/2 {
				err = fmt.Errorf("got %d bytes", n)
			}
			errs <- err
		}()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	assert.GreaterOrEqual(t, time.Since(start), floor, "downloads beat the guard")

	start = time.Now()
	resp, err = http.Post(base+PathUpload, "application/octet-stream", bytes.NewReader(make([]byte, size)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), floor, "an upload beat the guard")
	assert.EqualValues(t, size, s.Stats().BytesUp)
}

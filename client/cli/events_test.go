package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/localapi/localapitest"
	"github.com/tetherwfh/tether/netdiag/report"
)

// follow runs `tether events` with args against d until the test calls
// stop, which cancels it and returns its exit code and output.
func follow(t *testing.T, d *localapitest.Daemon, args ...string) (out, errb *syncBuffer, stop func() int) {
	t.Helper()
	out, errb = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, withSocket(append([]string{"events"}, args...), d.Socket), Env{Stdout: out, Stderr: errb})
	}()
	t.Cleanup(cancel)
	return out, errb, func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(5 * time.Second):
			t.Fatal("tether events did not stop on its context's end")
			return -1
		}
	}
}

// lines waits until out holds n lines and returns them.
func lines(t *testing.T, out *syncBuffer, n int) []string {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") >= n }, 5*time.Second, 5*time.Millisecond,
		"want %d lines, have:\n%s", n, out.String())
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

var published = []localapi.Event{
	{Type: localapi.EventDecision, Time: time.Date(2026, 11, 22, 10, 2, 4, 0, time.Local),
		Decision: &localapi.Decision{Mode: "split", Reasons: []localapi.Reason{{ID: "full_needs", Text: "the line is 0.9 Mbit/s up, below the company's 3 Mbit/s"}}}},
	{Type: localapi.EventState, Time: time.Date(2026, 11, 22, 10, 2, 5, 0, time.Local),
		State: &localapi.StateEvent{State: localapi.StateConnected}},
	{Type: localapi.EventProgress, Time: time.Date(2026, 11, 22, 10, 2, 6, 0, time.Local),
		Progress: &localapi.Progress{Stage: "download", Text: "download: 87.3 Mbit/s on 8 streams"}},
	{Type: localapi.EventReport, Time: time.Date(2026, 11, 22, 10, 2, 7, 0, time.Local),
		Report: &report.Report{Summary: "The line is slow.", Verdicts: []report.Verdict{{ID: report.VerdictLineSlow}, {ID: report.VerdictBufferbloat}}}},
	{Type: localapi.EventSuggestion, Time: time.Date(2026, 11, 22, 10, 2, 8, 0, time.Local),
		Suggestion: &report.Suggestion{ID: report.SuggestionUseHotspot, Summary: "use your phone's hotspot for calls"}},
	{Type: localapi.EventState, Time: time.Date(2026, 11, 22, 10, 2, 9, 0, time.Local),
		State: &localapi.StateEvent{State: localapi.StateDegraded, Reason: "the gateway missed 2 of the last 5 checks"}},
	{Type: localapi.EventSuggestionCleared, Time: time.Date(2026, 11, 22, 10, 2, 10, 0, time.Local),
		Suggestion: &report.Suggestion{ID: report.SuggestionUseHotspot, Summary: "the line has recovered: latency is 19 ms again"}},
}

const publishedText = `10:02:04 decision split: the line is 0.9 Mbit/s up, below the company's 3 Mbit/s (full_needs)
10:02:05 state connected
10:02:06 progress download: 87.3 Mbit/s on 8 streams
10:02:07 report The line is slow. [line_slow, bufferbloat]
10:02:08 suggestion use_hotspot: use your phone's hotspot for calls
10:02:09 state degraded: the gateway missed 2 of the last 5 checks
10:02:10 suggestion use_hotspot withdrawn: the line has recovered: latency is 19 ms again`

func TestEventsFollowsTheStream(t *testing.T) {
	d := enrolledDaemon(t)
	out, errb, stop := follow(t, d)
	first := lines(t, out, 1)
	assert.Regexp(t, `^\d\d:\d\d:\d\d state disconnected$`, first[0], "the current state first")
	for _, ev := range published {
		d.Publish(ev)
	}
	got := lines(t, out, 1+len(published))
	assert.Equal(t, publishedText, strings.Join(got[1:], "\n"))
	assert.Equal(t, 0, stop(), "Ctrl-C is the way to stop: %s", errb.String())
	assert.Empty(t, errb.String())
	assert.Eventually(t, func() bool { return d.Watchers() == 0 }, 5*time.Second, 5*time.Millisecond, "the stream is closed")
}

func TestEventsJSON(t *testing.T) {
	d := enrolledDaemon(t)
	out, _, stop := follow(t, d, "--json")
	lines(t, out, 1)
	for _, ev := range published {
		d.Publish(ev)
	}
	got := lines(t, out, 1+len(published))
	require.Equal(t, 0, stop())
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(got[0]), &first))
	assert.Equal(t, "state", first["type"])
	assert.Equal(t, map[string]any{"state": "disconnected"}, first["state"])
	_, err := time.Parse(time.RFC3339, first["time"].(string))
	assert.NoError(t, err, "time is RFC 3339")
	for i, line := range got[1:] {
		var ev localapi.Event
		require.NoError(t, json.Unmarshal([]byte(line), &ev), "one event a line")
		assert.True(t, published[i].Time.Equal(ev.Time))
		ev.Time = published[i].Time
		assert.Equal(t, published[i], ev)
	}
	var dec map[string]any
	require.NoError(t, json.Unmarshal([]byte(got[1]), &dec))
	assert.Equal(t, map[string]any{"mode": "split", "reasons": []any{map[string]any{"id": "full_needs", "text": "the line is 0.9 Mbit/s up, below the company's 3 Mbit/s"}}}, dec["decision"])
}

// TestEventsWatchesAgainWhenDropped: tetherd drops a watcher that falls
// behind; events watches again, and gives up only when the daemon is
// gone.
func TestEventsWatchesAgainWhenDropped(t *testing.T) {
	d := enrolledDaemon(t)
	out, errb, stop := follow(t, d)
	lines(t, out, 1)
	d.DropWatchers()
	lines(t, out, 2) // the state again, from the new stream
	assert.Contains(t, errb.String(), "watching again")
	d.Publish(published[1])
	assert.Equal(t, "10:02:05 state connected", lines(t, out, 3)[2])

	d.Close()
	require.Eventually(t, func() bool { return strings.Contains(errb.String(), "tetherd is not running") }, 5*time.Second, 10*time.Millisecond, errb.String())
	assert.Equal(t, 1, stop())
	assert.Regexp(t, regexp.MustCompile("tether events: tetherd is not running .*start it with `tetherd --config FILE`"), errb.String())
}

func TestFormatEventOfAnUnknownType(t *testing.T) {
	ev := localapi.Event{Type: "bundle", Time: time.Date(2026, 11, 22, 10, 2, 3, 0, time.Local)}
	assert.Equal(t, "10:02:03 bundle\n", FormatEvent(ev))
}

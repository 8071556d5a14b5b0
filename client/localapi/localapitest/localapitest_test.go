package localapitest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/localapi/localapitest"
	"github.com/tetherwfh/tether/netdiag/report"
)

func enrolled(t *testing.T) *localapitest.Daemon {
	t.Helper()
	d := localapitest.New(t)
	d.SetStatus(localapi.Status{State: localapi.StateDisconnected, Version: "1.2.3"})
	return d
}

func code(t *testing.T, err error) localapi.ErrorCode {
	t.Helper()
	var e *localapi.Error
	require.ErrorAs(t, err, &e)
	return e.Code
}

func TestUpAnswersTheDecisionAndConnects(t *testing.T) {
	d := enrolled(t)
	c := d.Client()
	ctx := context.Background()

	dec, err := c.Up(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, localapi.Decision{Mode: localapi.ModeFull, Reasons: []localapi.Reason{}}, dec, "auto without a decision set: full")

	want := localapi.Decision{Mode: "split", Reasons: []localapi.Reason{{ID: "line_slow", Text: "the line is slow"}}}
	d.SetDecision(want)
	dec, err = c.Up(ctx, localapi.ModeSplit)
	require.NoError(t, err)
	assert.Equal(t, want, dec)
	st := d.Status()
	assert.Equal(t, localapi.StateConnected, st.State)
	assert.Equal(t, "split", st.Mode)
	assert.Equal(t, &want, st.Decision)
	assert.True(t, d.Settings().Connect)
	assert.Equal(t, localapi.ModeSplit, d.Settings().Mode)

	d.RefuseMode(localapi.ModeFull, "company policy allows only split")
	_, err = c.Up(ctx, localapi.ModeFull)
	assert.Equal(t, localapi.CodeModeNotAllowed, code(t, err))
	assert.ErrorContains(t, err, "company policy allows only split")

	var sent []string
	for _, r := range d.Sent(localapi.PathUp) {
		var req localapi.UpRequest
		require.NoError(t, r.Decode(&req))
		sent = append(sent, req.Mode)
	}
	assert.Equal(t, []string{"", "split", "full"}, sent)

	st, err = c.Down(ctx)
	require.NoError(t, err)
	assert.Equal(t, localapi.StateDisconnected, st.State)
	assert.Empty(t, st.Mode)
	assert.False(t, d.Settings().Connect)
}

func TestNotEnrolled(t *testing.T) {
	d := localapitest.New(t)
	d.SetStatus(localapi.Status{State: localapi.StateNeedsEnrollment})
	c := d.Client()
	_, err := c.Up(context.Background(), "")
	assert.Equal(t, localapi.CodeNotEnrolled, code(t, err))
	_, err = c.Diagnose(context.Background(), true)
	assert.Equal(t, localapi.CodeNotEnrolled, code(t, err))

	_, err = c.Enroll(context.Background(), localapi.EnrollRequest{URL: "https://gw:8443"})
	assert.Equal(t, localapi.CodeBadRequest, code(t, err), "a token is required")
	st, err := c.Enroll(context.Background(), localapi.EnrollRequest{URL: "https://gw:8443", Token: "tok", Pin: "sha256:ab"})
	require.NoError(t, err)
	assert.Equal(t, localapi.StateDisconnected, st.State)
	require.NotNil(t, st.Enrollment)
	assert.Equal(t, "https://gw:8443", st.Enrollment.Gateway)
	reqs := d.Sent(localapi.PathEnroll)
	require.Len(t, reqs, 2)
	var req localapi.EnrollRequest
	require.NoError(t, reqs[1].Decode(&req))
	assert.Equal(t, localapi.EnrollRequest{URL: "https://gw:8443", Token: "tok", Pin: "sha256:ab"}, req)
}

func TestDiagnoseAndReports(t *testing.T) {
	d := enrolled(t)
	c := d.Client()
	ctx := context.Background()
	_, err := c.LatestReport(ctx)
	assert.Equal(t, localapi.CodeNotFound, code(t, err))
	rs, err := c.Reports(ctx)
	require.NoError(t, err)
	assert.Empty(t, rs)
	_, err = c.Diagnose(ctx, true)
	assert.Equal(t, localapi.CodeInternal, code(t, err), "no report set")

	rep := report.Report{Schema: report.Schema, Mode: report.ModeQuick, Summary: "all good",
		Verdicts: []report.Verdict{{ID: report.VerdictBufferbloat}}}
	d.SetReport(rep)
	got, err := c.Diagnose(ctx, true)
	require.NoError(t, err)
	assert.Equal(t, rep, got)
	latest, err := c.LatestReport(ctx)
	require.NoError(t, err)
	assert.Equal(t, rep, latest)
	assert.Equal(t, &localapi.ReportSummary{Summary: "all good", Mode: report.ModeQuick, Verdicts: []report.VerdictID{report.VerdictBufferbloat}}, d.Status().LastReport)
	var req localapi.DiagnoseRequest
	require.NoError(t, d.Sent(localapi.PathDiagnose)[1].Decode(&req))
	assert.True(t, req.Quick)

	older := report.Report{Summary: "older"}
	d.SetReports(rep, older)
	rs, err = c.Reports(ctx)
	require.NoError(t, err)
	assert.Equal(t, []report.Report{rep, older}, rs)
}

func TestSettings(t *testing.T) {
	d := enrolled(t)
	c := d.Client()
	ctx := context.Background()
	s, err := c.Settings(ctx)
	require.NoError(t, err)
	assert.Equal(t, localapi.Settings{Mode: "auto", Engine: "auto"}, s)

	want := localapi.Settings{Mode: "split", Connect: true, FailClosed: true, Engine: "tun"}
	s, err = c.SetSettings(ctx, want)
	require.NoError(t, err)
	assert.Equal(t, want, s)
	assert.Equal(t, want, d.Settings())

	_, err = c.SetSettings(ctx, localapi.Settings{Mode: "sideways", Engine: "auto"})
	assert.Equal(t, localapi.CodeBadRequest, code(t, err))
	d.RefuseMode("full", "company policy allows only split")
	_, err = c.SetSettings(ctx, localapi.Settings{Mode: "full", Engine: "auto"})
	assert.Equal(t, localapi.CodeModeNotAllowed, code(t, err))
	assert.Equal(t, want, d.Settings(), "a refused PUT changes nothing")
}

func TestFailOn(t *testing.T) {
	d := enrolled(t)
	c := d.Client()
	d.FailOn(localapi.PathDiagnose, &localapi.Error{Status: http.StatusConflict, Code: localapi.CodeBusy, Message: "a diagnosis is running"})
	_, err := c.Diagnose(context.Background(), false)
	assert.Equal(t, localapi.CodeBusy, code(t, err))
	_, err = c.Status(context.Background())
	assert.NoError(t, err, "only that path fails")
	d.FailOn(localapi.PathDiagnose, nil)
	d.SetReport(report.Report{})
	_, err = c.Diagnose(context.Background(), false)
	assert.NoError(t, err)
}

// TestEventsStream: the current state first, then what is published and
// what the operations cause, in order.
func TestEventsStream(t *testing.T) {
	d := enrolled(t)
	d.SetReport(report.Report{Summary: "ok", Suggestions: []report.Suggestion{{ID: report.SuggestionUseHotspot}}},
		localapi.Progress{Stage: "latency", Text: "measuring latency"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan localapi.Event, 32)
	done := make(chan error, 1)
	go func() { done <- d.Client().Watch(ctx, func(ev localapi.Event) error { got <- ev; return nil }) }()
	next := func() localapi.Event {
		t.Helper()
		select {
		case ev := <-got:
			assert.False(t, ev.Time.IsZero(), "every event has a time")
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
			return localapi.Event{}
		}
	}
	ev := next()
	require.Equal(t, localapi.EventState, ev.Type)
	assert.Equal(t, localapi.StateDisconnected, ev.State.State)

	d.Publish(localapi.Event{Type: localapi.EventState, State: &localapi.StateEvent{State: localapi.StateDegraded, Reason: "wobbly"}})
	ev = next()
	assert.Equal(t, localapi.StateEvent{State: localapi.StateDegraded, Reason: "wobbly"}, *ev.State)
	assert.Equal(t, localapi.StateDegraded, d.Status().State, "a state event is the status's state")

	_, err := d.Client().Diagnose(ctx, true)
	require.NoError(t, err)
	var types []string
	for range 3 {
		types = append(types, next().Type)
	}
	assert.Equal(t, []string{localapi.EventProgress, localapi.EventReport, localapi.EventSuggestion}, types)

	_, err = d.Client().Up(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, localapi.EventDecision, next().Type)
	ev = next()
	assert.Equal(t, localapi.StateConnected, ev.State.State)

	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Eventually(t, func() bool { return d.Watchers() == 0 }, 5*time.Second, 10*time.Millisecond)
}

// TestSlowWatcherIsDropped: a watcher that reads nothing is dropped once
// its buffer fills; Publish never blocks on it.
func TestSlowWatcherIsDropped(t *testing.T) {
	d := enrolled(t)
	conn, err := net.Dial("unix", d.Socket)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: tetherd\r\n\r\n", localapi.PathEvents)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return d.Watchers() == 1 }, 5*time.Second, time.Millisecond)

	big := strings.Repeat("x", 8<<10)
	start := time.Now()
	for i := 0; d.Watchers() > 0; i++ {
		require.Less(t, i, 100000, "the watcher was never dropped")
		d.Publish(localapi.Event{Type: localapi.EventProgress, Progress: &localapi.Progress{Stage: "download", Text: big}})
	}
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestDropWatchersEndsTheStream(t *testing.T) {
	d := enrolled(t)
	done := make(chan error, 1)
	first := make(chan struct{})
	go func() {
		done <- d.Client().Watch(context.Background(), func(localapi.Event) error {
			close(first)
			return nil
		})
	}()
	<-first
	d.DropWatchers()
	err := <-done
	require.Error(t, err)
	assert.False(t, errors.Is(err, context.Canceled))
	assert.ErrorContains(t, err, "watch again")
}

func TestRequestsAreRecorded(t *testing.T) {
	d := enrolled(t)
	_, err := d.Client().Status(context.Background())
	require.NoError(t, err)
	_, err = d.Client().Down(context.Background())
	require.NoError(t, err)
	reqs := d.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, localapitest.Request{Method: "GET", Path: localapi.PathStatus, Body: []byte{}}, reqs[0])
	assert.Equal(t, "POST", reqs[1].Method)
	assert.Equal(t, localapi.PathDown, reqs[1].Path)
	assert.JSONEq(t, `{}`, string(reqs[1].Body))
}

func TestFakeServesTheLineMonitor(t *testing.T) {
	d := localapitest.New(t)
	c := &localapi.Client{Socket: d.Socket}
	ctx := context.Background()
	l, err := c.Line(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, "unknown", l.Finding.Kind)
	d.SetLine(localapi.Line{Finding: localapi.LineFinding{Kind: "saturated", Text: "latency rose"}})
	a, err := c.Snooze(ctx, report.SuggestionUseHotspot, time.Hour)
	require.NoError(t, err)
	l, err = c.Line(ctx, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, "saturated", l.Finding.Kind)
	assert.Equal(t, a.Until, l.Snoozed[report.SuggestionUseHotspot])
}

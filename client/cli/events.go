package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
)

// The events command's retries.
const (
	// rewatchPause is the pause before watching again after the daemon
	// ended the stream (it drops a watcher too slow to keep up).
	rewatchPause = time.Second
	// maxEmptyWatches is how many streams in a row may end without an
	// event before events gives up: a daemon that accepts and hangs up.
	maxEmptyWatches = 3
)

func runEvents(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "events")
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print each event as a line of JSON, as the daemon streams it")
	if err := parse(fs, args); err != nil {
		return err
	}
	c := &localapi.Client{Socket: *socket}
	enc := json.NewEncoder(env.Stdout)
	show := func(ev localapi.Event) error {
		if *asJSON {
			return enc.Encode(ev)
		}
		_, err := io.WriteString(env.Stdout, FormatEvent(ev))
		return err
	}
	for empty := 0; ; {
		got := false
		var showErr error
		err := c.Watch(ctx, func(ev localapi.Event) error {
			got = true
			showErr = show(ev)
			return showErr
		})
		if ctx.Err() != nil {
			return nil // Ctrl-C: the way to stop
		}
		if showErr != nil {
			return showErr // stdout is gone
		}
		var le *localapi.Error
		var ve *localapi.VersionError
		if errors.Is(err, localapi.ErrNotRunning) || errors.As(err, &le) || errors.As(err, &ve) {
			return err
		}
		if got {
			empty = 0
		} else if empty++; empty >= maxEmptyWatches {
			return fmt.Errorf("%w; tetherd ended %d streams in a row without an event", err, empty)
		}
		fmt.Fprintf(env.Stderr, "tether events: %v; watching again\n", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(rewatchPause):
		}
	}
}

// FormatEvent renders an event as a line for a person, at its time in
// the local zone: "10:02:03 state connected".
func FormatEvent(ev localapi.Event) string {
	var what string
	switch {
	case ev.Type == localapi.EventState && ev.State != nil:
		what = "state " + safe(string(ev.State.State))
		if ev.State.Reason != "" {
			what += ": " + safe(ev.State.Reason)
		}
	case ev.Type == localapi.EventDecision && ev.Decision != nil:
		what = "decision " + safe(ev.Decision.Mode)
		var rs []string
		for _, r := range ev.Decision.Reasons {
			rs = append(rs, safe(r.Text)+" ("+safe(r.ID)+")")
		}
		if len(rs) > 0 {
			what += ": " + strings.Join(rs, "; ")
		}
	case ev.Type == localapi.EventProgress && ev.Progress != nil:
		what = "progress " + safe(ev.Progress.Text)
		if ev.Progress.Text == "" {
			what = "progress " + safe(ev.Progress.Stage)
		}
	case ev.Type == localapi.EventReport && ev.Report != nil:
		what = "report " + safe(ev.Report.Summary)
		var ids []string
		for _, v := range ev.Report.Verdicts {
			ids = append(ids, safe(string(v.ID)))
		}
		if len(ids) > 0 {
			what += " [" + strings.Join(ids, ", ") + "]"
		}
	case ev.Type == localapi.EventSuggestion && ev.Suggestion != nil:
		what = "suggestion " + safe(string(ev.Suggestion.ID)) + ": " + safe(ev.Suggestion.Summary)
	case ev.Type == localapi.EventSuggestionCleared && ev.Suggestion != nil:
		what = "suggestion " + safe(string(ev.Suggestion.ID)) + " withdrawn: " + safe(ev.Suggestion.Summary)
	default:
		what = safe(ev.Type) // a type this program does not know yet
	}
	return ev.Time.Local().Format(time.TimeOnly) + " " + what + "\n"
}

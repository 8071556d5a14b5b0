package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tetherwfh/tether/client/localapi"
)

// settingKeys are the settings `tether settings set` takes, in the order
// they are shown, each with what it means and what it accepts.
var settingKeys = []struct{ key, doc string }{
	{"mode", "the tunnel's mode: auto (tetherd decides), full or split"},
	{"connect", "keep the tunnel up, at start and after a network change: true or false"},
	{"fail_closed", "the kill switch, where company policy leaves it to you: true or false"},
	{"engine", "auto (TUN where tetherd may create a device, else userspace), tun or userspace"},
}

func runSettings(ctx context.Context, env Env, args []string) error {
	if len(args) > 0 && args[0] == "set" {
		return runSettingsSet(ctx, env, args[1:])
	}
	fs := newFlags(env, "settings")
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the settings as JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tether settings [--json]\n       tether settings set KEY=VALUE ... [--json]\n\nkeys:")
		for _, k := range settingKeys {
			fmt.Fprintf(fs.Output(), "  %-12s %s\n", k.key, k.doc)
		}
		fmt.Fprintln(fs.Output(), "\nflags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := (&localapi.Client{Socket: *socket}).Settings(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, s)
	}
	_, err = io.WriteString(env.Stdout, FormatSettings(s))
	return err
}

func runSettingsSet(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "settings set")
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the settings as tetherd keeps them, as JSON")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		fmt.Fprintln(env.Stderr, "usage: tether settings set KEY=VALUE ... (keys: mode, connect, fail_closed, engine)")
		return errUsage
	}
	c := &localapi.Client{Socket: *socket}
	s, err := c.Settings(ctx)
	if err != nil {
		return err
	}
	for _, kv := range rest {
		if err := setSetting(&s, kv); err != nil {
			fmt.Fprintf(env.Stderr, "tether settings set: %v\n", err)
			return errUsage
		}
	}
	s, err = c.SetSettings(ctx, s)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, s)
	}
	_, err = io.WriteString(env.Stdout, "Saved.\n"+FormatSettings(s))
	return err
}

// setSetting applies one KEY=VALUE to s, refusing an unknown key or a
// value the key does not take.
func setSetting(s *localapi.Settings, kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("%q: want KEY=VALUE, e.g. mode=split", kv)
	}
	oneOf := func(allowed ...string) error {
		for _, a := range allowed {
			if value == a {
				return nil
			}
		}
		return fmt.Errorf("%s=%q: want %s", key, value, strings.Join(allowed, ", "))
	}
	boolean := func(dst *bool) error {
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s=%q: want true or false", key, value)
		}
		*dst = b
		return nil
	}
	switch key {
	case "mode":
		if err := oneOf(localapi.ModeAuto, localapi.ModeFull, localapi.ModeSplit); err != nil {
			return err
		}
		s.Mode = value
		return nil
	case "connect":
		return boolean(&s.Connect)
	case "fail_closed":
		return boolean(&s.FailClosed)
	case "engine":
		if err := oneOf("auto", "tun", "userspace"); err != nil {
			return err
		}
		s.Engine = value
		return nil
	}
	return fmt.Errorf("no setting %q: the settings are mode, connect, fail_closed and engine", key)
}

// FormatSettings renders the settings as KEY=VALUE lines, as `tether
// settings set` takes them, each with what it means.
func FormatSettings(s localapi.Settings) string {
	values := map[string]string{"mode": s.Mode, "connect": strconv.FormatBool(s.Connect),
		"fail_closed": strconv.FormatBool(s.FailClosed), "engine": s.Engine}
	var b strings.Builder
	for _, k := range settingKeys {
		fmt.Fprintf(&b, "%-20s %s\n", k.key+"="+safe(values[k.key]), k.doc)
	}
	return b.String()
}

// Package localapi is the daemon's local API as its clients see it: the
// JSON types and a small HTTP client over the daemon's socket. The CLI and
// the tray import this package and nothing else of the daemon.
package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// PathStatus returns the daemon's Status.
const PathStatus = "/v1/status"

// State is the daemon's overall state.
type State string

// The daemon's states.
const (
	// StateStarting: the daemon has not yet checked the gateway.
	StateStarting State = "starting"
	// StateReady: the gateway answered its last health check.
	StateReady State = "ready"
	// StateGatewayUnreachable: the last health check failed.
	StateGatewayUnreachable State = "gateway-unreachable"
)

// Status is the body of PathStatus.
type Status struct {
	State   State         `json:"state"`
	Version string        `json:"version"`
	Since   time.Time     `json:"since"` // when the daemon started
	Gateway GatewayStatus `json:"gateway"`
}

// GatewayStatus is what the daemon last learned about its gateway.
type GatewayStatus struct {
	URL       string    `json:"url"`
	Name      string    `json:"name,omitempty"`
	Reachable bool      `json:"reachable"`
	RTT       Duration  `json:"rtt,omitempty"` // of the last health check
	LastCheck time.Time `json:"last_check,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// Duration marshals as a string Go can parse ("1.2ms"), readable in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("localapi: duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Client talks to the daemon over its unix socket.
type Client struct {
	// Socket is the daemon's socket path.
	Socket string
	hc     *http.Client
}

// requestTimeout bounds one local API call; the daemon answers from memory,
// so anything slower means it is wedged.
const requestTimeout = 5 * time.Second

// ErrNotRunning means nothing listens on the socket.
var ErrNotRunning = errors.New("tetherd is not running")

func (c *Client) client() *http.Client {
	if c.hc == nil {
		c.hc = &http.Client{
			Timeout: requestTimeout,
			Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", c.Socket)
			}},
		}
	}
	return c.hc
}

// Status fetches the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.get(ctx, PathStatus, &st)
	return st, err
}

func (c *Client) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://tetherd"+path, nil)
	if err != nil {
		return fmt.Errorf("localapi: %w", err)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errConnRefused) {
			return fmt.Errorf("%w (no daemon at %s; start it with `tetherd --config FILE`)", ErrNotRunning, c.Socket)
		}
		return fmt.Errorf("localapi: %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("localapi: %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("localapi: %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("localapi: %s: %w", path, err)
	}
	return nil
}

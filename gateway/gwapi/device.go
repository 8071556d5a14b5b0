package gwapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// PathDevice answers an enrolled device, authenticated by its
// credential ("Authorization: Bearer <device credential>"), with its
// Device: the company's current policy. A revoked device gets 403 with
// CodeRevoked, an unknown credential 401.
const PathDevice = "/v1/device"

// CodeRevoked is the error code of a revoked device's call.
const CodeRevoked = "revoked"

// Device is what the gateway says to an enrolled device about itself.
type Device struct {
	PeerID      int64       `json:"peer_id"`
	Address     string      `json:"address"`
	Policy      Policy      `json:"policy"`
	Diagnostics Diagnostics `json:"diagnostics"`
}

// Diagnostics tells a client how to diagnose its line against this
// gateway: what the gateway serves beside its API, and the names its
// filtering resolver answers in a known way.
type Diagnostics struct {
	// STAMPPort is the STAMP reflector's UDP port on the gateway's public
	// address (and, inside the tunnel, on its tunnel address: 862); zero
	// when it runs none.
	STAMPPort uint16 `json:"stamp_port,omitempty"`
	// Canary is a name the company's filter blocks (dns.canary); empty
	// when none is set, and the filter check is skipped.
	Canary string `json:"canary,omitempty"`
	// ProbeName is a name the company's resolver must resolve (a local
	// zone's), the filter check's control; empty means a public name.
	ProbeName string `json:"probe_name,omitempty"`
}

// maxDeviceAnswer: a policy and a few hints.
const maxDeviceAnswer = 64 << 10

// ErrRevoked means the gateway says this device was revoked.
var ErrRevoked = errors.New("the company revoked this device")

// Device asks the gateway about the device whose credential this is. A
// revoked device gets an error that wraps ErrRevoked (and the gateway's
// *Error, with CodeRevoked).
func (c *Client) Device(ctx context.Context, credential string) (Device, error) {
	const op = "device"
	var d Device
	if credential == "" {
		return d, fmt.Errorf("%s: no device credential (enroll again)", op)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathDevice, nil)
	if err != nil {
		return d, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+credential)
	resp, err := c.hc.Do(req)
	if err != nil {
		return d, fmt.Errorf("%s: %s did not answer: %w", op, c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := readError(resp, nil)
		if e.Code == CodeRevoked {
			return d, fmt.Errorf("%s: %w: %w", op, ErrRevoked, e)
		}
		return d, fmt.Errorf("%s: %w", op, e)
	}
	b, err := readAtMost(resp.Body, maxDeviceAnswer)
	if err != nil {
		return d, fmt.Errorf("%s: reading the answer of %s: %w", op, c.base, err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("%s: the answer of %s is not the gateway API's: %w", op, c.base, err)
	}
	return d, nil
}

package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/localapi/localapitest"
)

func TestEnroll(t *testing.T) {
	d := localapitest.New(t)
	d.SetStatus(localapi.Status{State: localapi.StateNeedsEnrollment, Version: "1.2.3"})
	code, out, errOut := tether(t, d, "enroll", "https://gw.example.com:8443", "--token", "tok-123", "--pin", "sha256:abcd", "--label", "laptop")
	require.Equal(t, 0, code, errOut)
	var req localapi.EnrollRequest
	sent(t, d, localapi.PathEnroll, &req)
	assert.Equal(t, localapi.EnrollRequest{URL: "https://gw.example.com:8443", Token: "tok-123", Pin: "sha256:abcd", Label: "laptop"}, req)
	assert.Equal(t, "Enrolled with https://gw.example.com:8443 as 10.77.0.2 (peer 1).\n"+
		"tetherd is disconnected.\n  enrolled: `tether up` connects\n", out)

	code, out, errOut = tether(t, d, "enroll", "--token", "tok-456", "https://gw.example.com:8443", "--json")
	require.Equal(t, 0, code, errOut)
	req = localapi.EnrollRequest{}
	sent(t, d, localapi.PathEnroll, &req)
	assert.Equal(t, localapi.EnrollRequest{URL: "https://gw.example.com:8443", Token: "tok-456"}, req, "flags before or after the URL")
	var st localapi.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.NotNil(t, st.Enrollment)
	assert.Equal(t, "10.77.0.2", st.Enrollment.Address)
}

func TestEnrollFailed(t *testing.T) {
	d := localapitest.New(t)
	d.SetStatus(localapi.Status{State: localapi.StateNeedsEnrollment})
	d.FailOn(localapi.PathEnroll, &localapi.Error{Status: 502, Code: localapi.CodeEnrollFailed, Message: "the gateway refused the token: it was already used"})
	code, out, errOut := tether(t, d, "enroll", "https://gw:8443", "--token", "old")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Equal(t, "tether enroll: the gateway refused the token: it was already used: check the URL and --pin, "+
		"and ask an admin for a new token (`tether-gateway token create`) if it was used or expired\n", errOut)
}

func TestEnrollUsage(t *testing.T) {
	d := localapitest.New(t)
	for _, args := range [][]string{
		{"enroll", "https://gw:8443"},                          // no token
		{"enroll", "--token", "t"},                             // no URL
		{"enroll", "https://gw:8443", "extra", "--token", "t"}, // two URLs
		{"enroll", "gw.example.com", "--token", "t"},           // not a URL
	} {
		code, _, errOut := tether(t, d, args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.NotEmpty(t, errOut, "%v", args)
	}
	assert.Empty(t, d.Sent(localapi.PathEnroll), "nothing was asked of the daemon")
}

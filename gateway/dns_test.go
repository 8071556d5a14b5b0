package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gatewaytest"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/resolver"
)

// TestGatewayServesFilteringDNS loads a config file with a dns section,
// serves it, and checks a blocked and a local name, explain and metrics.
func TestGatewayServesFilteringDNS(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "phishing.txt")
	require.NoError(t, os.WriteFile(list, []byte("phishing.test\n"), 0o644))
	cfgPath := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`name: dns-gw
dns:
  listen: 127.0.0.1:0
  lists:
    - {name: phish, category: phishing, format: domains, path: `+list+`}
  local_zones:
    - name: corp.test
      records: ["intranet IN A 10.77.0.10"]
  cache: {max_ttl: 1h}
`), 0o600))
	cfg, err := gateway.LoadConfig(cfgPath)
	require.NoError(t, err)
	require.NotNil(t, cfg.DNS)
	assert.Equal(t, time.Hour, cfg.DNS.Cache.MaxTTL)
	g := gatewaytest.New(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.Name, c.DNS = cfg.Name, cfg.DNS }))
	s, base := g.Server, g.URL()

	ask := func(name string) *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		q.SetEdns0(1232, false)
		resp, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(q, s.DNSAddr().String())
		require.NoError(t, err)
		return resp
	}
	resp := ask("phishing.test.")
	assert.Equal(t, dns.RcodeNameError, resp.Rcode)
	resp = ask("intranet.corp.test.")
	require.Len(t, resp.Answer, 1)

	var ex resolver.Explanation
	assert.Equal(t, http.StatusOK, getJSON(t, base+gwapi.PathDNSExplain+"?name=login.phishing.test", &ex))
	assert.True(t, ex.Decision.Blocked)
	assert.Equal(t, "||phishing.test^", ex.Decision.Rule)
	var e gwapi.Error
	assert.Equal(t, http.StatusBadRequest, getJSON(t, base+gwapi.PathDNSExplain+"?name=bad..name", &e))
	assert.NotEmpty(t, e.Message)

	code, body := call(t, "GET", base+"/metrics", g.Secrets.MetricsToken, nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.Contains(t, string(body), `tether_dns_queries_total{result="blocked",type="A"} 1`)
	assert.Contains(t, string(body), `tether_dns_list_rules{category="phishing",list="phish"} 1`)
}

// TestDNSExplanationWireType holds gwapi.DNSExplanation, what clients
// decode, to the resolver's Explanation, what the gateway encodes: the
// same fields under the same names.
func TestDNSExplanationWireType(t *testing.T) {
	d := resolver.Decision{Blocked: true, Allowed: true, Important: true, List: "l", Category: "c", Rule: "r", Line: 3}
	ex := resolver.Explanation{Name: "a.test", Decision: d, Overrides: []resolver.Decision{d}, CategoryOff: true, Summary: "s"}
	b, err := json.Marshal(ex)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var wire gwapi.DNSExplanation
	require.NoError(t, dec.Decode(&wire), "every field the gateway sends is in the wire type")
	again, err := json.Marshal(wire)
	require.NoError(t, err)
	assert.JSONEq(t, string(b), string(again), "and none is lost")
	exported := func(t reflect.Type) (n int) {
		for f := range t.Fields() {
			if f.IsExported() {
				n++
			}
		}
		return n
	}
	assert.Equal(t, exported(reflect.TypeFor[resolver.Explanation]()), exported(reflect.TypeFor[gwapi.DNSExplanation]()), "a field added to one is added to the other")
	assert.Equal(t, exported(reflect.TypeFor[resolver.Decision]()), exported(reflect.TypeFor[gwapi.DNSDecision]()), "a field added to one is added to the other")
}

func TestGatewayDNSConfigErrors(t *testing.T) {
	cfg := gateway.DefaultConfig()
	cfg.DNS = &resolver.Config{Listen: "nonsense"}
	_, err := gateway.New(cfg, gateway.Options{})
	require.ErrorContains(t, err, "dns.listen")
	cfg.DNS = &resolver.Config{Listen: "127.0.0.1:0", BlockMode: "sinkhole"}
	_, err = gateway.New(cfg, gateway.Options{})
	require.ErrorContains(t, err, "block_mode")
}

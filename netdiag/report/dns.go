package report

// DNSReport is the DNS health of every resolver checked.
type DNSReport struct {
	Resolvers []ResolverReport `json:"resolvers"`
	// Filter says whether the company's filter is in effect; absent
	// without a company resolver and a canary.
	Filter *FilterReport `json:"filter,omitempty"`
	// Consistency compares the system resolvers' answers with the
	// company resolver's; absent without a company resolver.
	Consistency *ConsistencyReport `json:"consistency,omitempty"`
	// Interception says whether something on the path answers DNS sent
	// to any address; absent when the check did not run.
	Interception *InterceptReport `json:"interception,omitempty"`
}

// ResolverReport is one resolver's health. Pointers are unknown when nil:
// a check that could not run says so rather than guessing.
type ResolverReport struct {
	Addr string `json:"addr"`
	// Role is "system" (the OS uses it) or "company" (the filtering
	// resolver); Source says where a system resolver was found.
	Role   string `json:"role"`
	Source string `json:"source,omitempty"`
	// Latency of the probe name (netdiag.DNSConfig.ProbeName) over UDP:
	// median, p90, loss.
	LatencyStats
	UDP *bool `json:"udp"`
	TCP *bool `json:"tcp"`
	// Resolves: the probe name, a name that must resolve, got an address
	// in some answer; false when every answer lacked one (a refusal, a
	// failure, NXDOMAIN), unknown when nothing answered. ProbeAnswer
	// then says what came back, e.g. "REFUSED for example.com".
	Resolves    *bool  `json:"resolves"`
	ProbeAnswer string `json:"probe_answer,omitempty"`
	// EDNS: an EDNS0 query with a 1232-byte buffer got an EDNS0 answer.
	EDNS *bool `json:"edns"`
	// Truncation: "ok" (a large answer came back truncated over UDP and
	// whole over TCP), "fits" (it fit over UDP), "tcp_failed" (truncated,
	// and TCP did not deliver it), or empty when not tested.
	Truncation string `json:"truncation,omitempty"`
	// AD: the resolver validated DNSSEC for the signed name
	// (netdiag.DNSConfig.SignedName).
	AD *bool `json:"ad"`
	// NSID is the resolver's identity (RFC 5001), when it gives one.
	NSID string `json:"nsid,omitempty"`
	// NXDOMAIN: "ok" when a name that cannot exist got NXDOMAIN,
	// "rewritten" when it got addresses instead (RewrittenTo), "failed"
	// when there was no usable answer.
	NXDOMAIN    string   `json:"nxdomain,omitempty"`
	RewrittenTo []string `json:"rewritten_to,omitempty"`
	// AnswerFrom is set when answers came from an address other than the
	// one asked: a transparent DNS proxy in the path.
	AnswerFrom string `json:"answer_from,omitempty"`
	Error      string `json:"error,omitempty"`
}

// FilterReport says whether the company's DNS filter holds.
type FilterReport struct {
	Canary string `json:"canary"`
	// CompanyBlocks: the company resolver's answer for the canary says it
	// is a block (BlockMarker says how); false for any other answer;
	// unknown (null) when it gave no usable answer, or when only a weak
	// marker spoke for a block while the control name did not resolve.
	CompanyBlocks *bool `json:"company_blocks"`
	// CompanyAnswer is that answer in words: rcode, addresses, EDE and
	// the authority's SOA owner.
	CompanyAnswer string `json:"company_answer,omitempty"`
	// BlockMarker is what made the answer a block: "ede",
	// "synthesized_soa", "no_soa" or "unspecified_address" (see
	// netdiag/REPORT.md).
	BlockMarker string `json:"block_marker,omitempty"`
	// Control is a name that must resolve (the probe name), and
	// ControlResolves whether the company resolver resolved it: a
	// resolver that answers every name NXDOMAIN is broken, not filtering.
	Control         string `json:"control"`
	ControlResolves *bool  `json:"control_resolves"`
	// BypassedBy lists system resolvers that resolve the canary: using
	// them, the filter does not apply.
	BypassedBy []string `json:"bypassed_by,omitempty"`
}

// ConsistencyReport compares answers for one name across resolvers.
type ConsistencyReport struct {
	Name    string   `json:"name"`
	Company []string `json:"company"`
	// Differs lists resolvers whose answers differ from the company's.
	Differs []ResolverAnswers `json:"differs,omitempty"`
}

// ResolverAnswers is one resolver's answer set.
type ResolverAnswers struct {
	Resolver string   `json:"resolver"`
	Answers  []string `json:"answers"`
}

// InterceptReport is the transparent-interception check.
type InterceptReport struct {
	// Intercepted: some probe was answered, so something on the path
	// answers DNS sent to any address.
	Intercepted bool             `json:"intercepted"`
	Probes      []InterceptProbe `json:"probes"`
}

// InterceptProbe is one address's result.
type InterceptProbe struct {
	Addr     string `json:"addr"`
	Answered bool   `json:"answered"`
	// RTTMS is how soon after the first query the answer came: an
	// interceptor in the home router answers as fast as the router does.
	RTTMS float64 `json:"rtt_ms,omitempty"`
	// Answer is the reply in words (rcode, addresses, EDE).
	Answer string `json:"answer,omitempty"`
	// Error is why there was no answer when the network said so (no
	// route, an ICMP error); empty after a plain silence, the normal case.
	Error string `json:"error,omitempty"`
}

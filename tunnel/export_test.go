package tunnel

// What the external tests (package tunnel_test, which use tunneltest)
// share with the in-package ones.
var (
	EchoServer = echoServer
	ServeConns = serveConns
	RoundTrip  = roundTrip
	Pfx        = pfx
)

// DownTimeout bounds Down's wait for the proxies and the DNS forwarder.
const DownTimeout = downTimeout

// MaxDNSMessage is the largest DNS message the forwarder reads.
const MaxDNSMessage = maxDNSMessage

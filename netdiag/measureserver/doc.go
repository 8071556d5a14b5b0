// Package measureserver is the gateway's measurement service, HTTP side.
// Tether's client and third-party tools (Apple's networkQuality -C,
// goresponsiveness, Cloudflare-style speed tests) measure throughput and
// responsiveness against it.
//
// # Endpoints
//
//   - GET /.well-known/nq: the config document of the IETF draft
//     "Responsiveness under Working Conditions"
//     (draft-ietf-ippm-responsiveness, section "Well-Known Uniform Resource
//     Identifier (URI) For Test Server Discovery"). It is an application/json
//     object with "version": 1 and "urls" holding absolute URLs of /small,
//     /large and /upload. The draft names these URLs small_download_url,
//     large_download_url and upload_url. The document also carries them
//     under the names the draft used until revision -00:
//     small_https_download_url, large_https_download_url and
//     https_upload_url. goresponsiveness and Tether's own client read only
//     those older names. Apple's and Cloudflare's public config documents
//     send both sets too. This goes against the draft's advice (SHOULD NOT)
//     to add other names, but the draft also tells clients to ignore names
//     they do not know, so carrying both is safe.
//   - GET /small: 1 byte, application/octet-stream (draft: "status code of
//     200 (OK) and 1 byte of content").
//   - GET /large: Config.LargeObjectBytes (default 8 GiB: the draft asks for
//     "at least 8GB") of incompressible data, with Content-Length, streamed
//     from one pre-generated random block until the client goes away.
//   - POST /upload and POST /up: the body is read and thrown away, up to
//     Config.MaxUpBytes. The answer is the JSON object
//     {"bytes": N, "duration_ms": D}, where D is measured on the server
//     from the first body byte to the last.
//   - GET /down?bytes=N: exactly N bytes, 0 ≤ N ≤ Config.MaxDownBytes. This
//     is Cloudflare's GET /__down?bytes=N, and bytes=0 serves as a latency
//     ping.
//   - GET /generate_204: 204 No Content, for captive-portal detection.
//   - GET /ip: the peer address taken from the connection only, never from
//     X-Forwarded-For. The answer is JSON {"ip": ..., "port": ...}, or the
//     bare IP as text/plain if the client prefers that.
//
// Every response carries Cache-Control: no-store, no-transform. The
// transfer endpoints (/large, /down, /upload, /up) are limited per client
// IP. A client over its limit gets 429 with Retry-After. A transfer whose
// client stops reading or sending for a while (stallTimeout) is ended, so
// it cannot hold its slot forever.
//
// # Serving
//
// Serve Handler with HTTP/2 enabled. The draft's clients send latency
// probes on loaded connections, multiplexed beside the load. That needs
// HTTP/2, and on plain HTTP it needs HTTP/2 without TLS (h2c). NewHTTPServer
// returns an *http.Server configured this way. To build one yourself (Go
// 1.24+), set
//
//	p := new(http.Protocols)
//	p.SetHTTP1(true)
//	p.SetHTTP2(true)            // h2 over TLS
//	p.SetUnencryptedHTTP2(true) // h2c with prior knowledge
//	srv.Protocols = p
//
// and set no WriteTimeout: a /large transfer runs for as long as the client
// wants it.
//
// The draft requires TLS ("Both the client and the server MUST support
// HTTP/2 over TLS"), and goresponsiveness accepts only https URLs.
// Tether's client accepts http URLs as well. Whether Apple's networkQuality
// accepts them has not been checked. Put TLS in front for third-party
// clients.
package measureserver

package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gatewaytest"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/tunnel"
	"github.com/tetherwfh/tether/tunnel/tunneltest"
)

// rawPeer is a WireGuard peer with no network stack: every packet the
// gateway sends it is counted, so a test sees exactly what reaches the
// holder of an address.
type rawPeer struct {
	dev            *device.Device
	tcp, udp, icmp atomic.Int64
	first          atomic.Value // string: the first TCP or UDP packet seen
}

func newRawPeer(t *testing.T, g *gatewaytest.Gateway, token string) (*rawPeer, gwapi.Enrollment) {
	t.Helper()
	// The raw device needs the private key's bytes, which tunnel never
	// exposes: a random scalar, which X25519 and wireguard-go clamp alike.
	var priv [32]byte
	_, err := rand.Read(priv[:])
	require.NoError(t, err)
	pubBytes, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	require.NoError(t, err)
	var pub tunnel.PublicKey
	copy(pub[:], pubBytes)
	en, err := g.API.Enroll(context.Background(), gwapi.EnrollRequest{Token: token, PublicKey: pub.String(), Label: "raw"})
	require.NoError(t, err)
	gk, err := tunnel.ParsePublicKey(en.GatewayPublicKey)
	require.NoError(t, err)

	ct := tuntest.NewChannelTUN()
	p := &rawPeer{dev: device.NewDevice(ct.TUN(), conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))}
	t.Cleanup(p.dev.Close)
	require.NoError(t, p.dev.IpcSet(fmt.Sprintf("private_key=%s\npublic_key=%s\nendpoint=%s\npersistent_keepalive_interval=1\nallowed_ip=0.0.0.0/0\n",
		hex.EncodeToString(priv[:]), hex.EncodeToString(gk[:]), en.Endpoint)))
	require.NoError(t, p.dev.Up())
	go func() {
		for pkt := range ct.Inbound { // what the device decrypted
			if len(pkt) < 20 || pkt[0]>>4 != 4 {
				continue
			}
			src, _ := netip.AddrFromSlice(pkt[12:16])
			dst, _ := netip.AddrFromSlice(pkt[16:20])
			desc := fmt.Sprintf("proto %d %s -> %s, %d bytes", pkt[9], src, dst, len(pkt))
			switch pkt[9] {
			case 6:
				p.tcp.Add(1)
				p.first.CompareAndSwap(nil, desc)
			case 17:
				p.udp.Add(1)
				p.first.CompareAndSwap(nil, desc)
			case 1:
				p.icmp.Add(1)
			}
		}
	}()
	return p, en
}

// TestRevokedPeersSessionsNeverReachTheNextPeer: the probe found that
// revocation removed only the WireGuard peer. The gateway's netstack kept
// the revoked peer's download and its forwarded flows, and the next peer
// given the address received their segments. Here the quarantine is off
// and the pool has one address, so the next peer gets that very address
// at once: it must receive nothing but what it asks for.
func TestRevokedPeersSessionsNeverReachTheNextPeer(t *testing.T) {
	// A "company" TCP server that streams without end, and a UDP one
	// that, once asked, sends a datagram every 20 ms for 30 s.
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tunneltest.ServeEndless(t, tl)
	ul, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ul.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			go func() {
				for i := 0; i < 1500; i++ {
					if _, err := ul.WriteTo([]byte("company datagram"), from); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
	}()

	// The company network is 10.77.0.0/24; its hosts are these servers.
	company := netip.MustParseAddr("10.77.0.10")
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil || ap.Addr() != company {
			return nil, fmt.Errorf("no such company host %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()).String())
	}
	g := gatewaytest.New(t, gatewaytest.WithConfig(func(c *gateway.Config) {
		c.WireGuard.Address = netip.MustParsePrefix("10.99.0.1/30") // one peer address: .2
		c.Policy.AllowedModes = []string{"split"}
		c.WireGuard.AddressQuarantine = -1
	}), gatewaytest.WithOptions(gateway.Options{ForwardDial: dial}))
	companyAddr := func(a net.Addr) string {
		return netip.AddrPortFrom(company, uint16(netip.MustParseAddrPort(a.String()).Port())).String()
	}
	token := g.Token(t, 2)
	a := g.Connect(t, token)
	enA, gw := a.Enrollment, a.Gateway
	require.Equal(t, "10.99.0.2/30", enA.Address)
	require.Eventually(t, func() bool { return a.Reaches(time.Second) }, 10*time.Second, 10*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// 1. A download from the gateway's own measurement service, read a
	// little, then left unread: the gateway has segments queued for A.
	dl, err := a.Net().DialContext(ctx, "tcp", netip.AddrPortFrom(gw, 80).String())
	require.NoError(t, err)
	defer dl.Close()
	_, err = fmt.Fprintf(dl, "GET /large HTTP/1.1\r\nHost: %s\r\n\r\n", gw)
	require.NoError(t, err)
	_, err = io.ReadFull(dl, make([]byte, 256<<10))
	require.NoError(t, err)
	// 2. A forwarded TCP stream from the company server, likewise.
	fw, err := a.Net().DialContext(ctx, "tcp", companyAddr(tl.Addr()))
	require.NoError(t, err)
	defer fw.Close()
	_, err = io.ReadFull(fw, make([]byte, 256<<10))
	require.NoError(t, err)
	// 3. A forwarded UDP flow the company server keeps sending on.
	uc, err := a.Net().DialContext(ctx, "udp", companyAddr(ul.LocalAddr()))
	require.NoError(t, err)
	defer uc.Close()
	_, err = uc.Write([]byte("hello"))
	require.NoError(t, err)
	_ = uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = uc.Read(make([]byte, 1500))
	require.NoError(t, err, "the UDP flow works before the revocation")

	rv, err := g.API.Revoke(ctx, enA.PeerID)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, rv.SessionsEnded, 3, "the download, the TCP stream and the UDP flow")

	b, enB := newRawPeer(t, g, token)
	require.Equal(t, enA.Address, enB.Address, "the next peer has the revoked peer's address")
	// B's keepalive makes the handshake; from then on the gateway would
	// send B whatever it still had for the address. Wait for the
	// handshake, then long enough for several TCP retransmissions and
	// 100 of the company's datagrams.
	require.Eventually(t, func() bool {
		s, err := b.dev.IpcGet()
		return err == nil && strings.Contains(s, "last_handshake_time_sec=") && !strings.Contains(s, "last_handshake_time_sec=0\n")
	}, 10*time.Second, 20*time.Millisecond, "the next peer's handshake")
	time.Sleep(2 * time.Second)
	assert.Zero(t, b.tcp.Load()+b.udp.Load(), "the next peer received %d TCP and %d UDP packets meant for the revoked one (first: %v)",
		b.tcp.Load(), b.udp.Load(), b.first.Load())
}

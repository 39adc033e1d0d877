package porthole_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/porthole/porthole"
	"github.com/porthole/porthole/gateway"
)

// colonPin writes a hex fingerprint as openssl prints it: upper case, with
// colons.
func colonPin(pin string) string {
	var parts []string
	for i := 0; i < len(pin); i += 2 {
		parts = append(parts, strings.ToUpper(pin[i:i+2]))
	}
	return strings.Join(parts, ":")
}

func TestDialTLSTrusted(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	roots := x509.NewCertPool()
	roots.AddCert(gw.Cert.Leaf)
	for name, d := range map[string]*porthole.Dialer{
		"Pin":         {Fingerprint: gw.Pin},
		"OpenSSLPin":  {Fingerprint: colonPin(gw.Pin)},
		"RootCAs":     {TLSConfig: &tls.Config{RootCAs: roots}},
		"PinOverRoot": {Fingerprint: gw.Pin, TLSConfig: &tls.Config{RootCAs: x509.NewCertPool()}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/echo", "/tcp"} {
				echoOnce(t, mustDial(t, gw.TLSURL+path, d, waitLimit), "over TLS to "+path)
			}
		})
	}
}

func TestDialTLSWrongPin(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	wrong := []byte(gw.Pin)
	if wrong[0] = '0'; gw.Pin[0] == '0' { // change the first hex digit
		wrong[0] = '1'
	}
	_, err := porthole.Dial(dialContext(t), gw.TLSURL+"/echo", &porthole.Dialer{Fingerprint: string(wrong)})
	if !errors.Is(err, porthole.ErrFingerprint) {
		t.Fatalf("Dial with a wrong pin: %v, want an error wrapping porthole.ErrFingerprint", err)
	}
}

func TestDialTLSUntrusted(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	_, err := porthole.Dial(dialContext(t), gw.TLSURL+"/echo", nil)
	var cve *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &cve) || !errors.As(err, &unknown) {
		t.Fatalf("Dial with no trust in the gateway's certificate: %v, want an x509.UnknownAuthorityError", err)
	}
}

// TestTLSVersions checks the gateway's floor directly: TLS 1.1 is refused
// with a protocol_version alert, TLS 1.2 and 1.3 are served.
func TestTLSVersions(t *testing.T) {
	gw := startGateway(t, gateway.Options{})
	addr := strings.TrimPrefix(gw.TLSURL, "https://")
	for _, v := range []uint16{tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: waitLimit}, "tcp", addr, &tls.Config{
				InsecureSkipVerify: true,
				MinVersion:         v,
				MaxVersion:         v,
			})
			if v < tls.VersionTLS12 {
				if err == nil {
					conn.Close()
					t.Fatalf("the gateway accepted a %s client", tls.VersionName(v))
				}
				if !strings.Contains(err.Error(), "protocol version") {
					t.Fatalf("handshake error %q, want the server's protocol_version alert", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s handshake: %v", tls.VersionName(v), err)
			}
			conn.Close()
		})
	}
}

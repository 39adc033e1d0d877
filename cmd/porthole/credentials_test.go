package main

import (
	"strings"
	"testing"

	"github.com/porthole/porthole/internal/testgw"
)

// connect's credentials, against a gateway whose config guards one route
// with a token and one with client certificates: -token-file and
// PORTHOLE_TOKEN carry the token, -cert and -key the certificate.
func TestConnectCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testgw.NewCA(t, "clients")
	writeFile(t, dir, "clients.pem", string(ca.PEM()))
	certPEM, keyPEM := testgw.CertPEM(t, ca.ClientCert(t))
	cert := writeFile(t, dir, "me.pem", string(certPEM))
	key := writeFile(t, dir, "me.key", string(keyPEM))
	strangerPEM, strangerKeyPEM := testgw.CertPEM(t, testgw.NewCA(t, "strangers").ClientCert(t))
	stranger := writeFile(t, dir, "stranger.pem", string(strangerPEM))
	strangerKey := writeFile(t, dir, "stranger.key", string(strangerKeyPEM))
	tokenFile := writeFile(t, dir, "token", "s3cret\n")
	config := writeFile(t, dir, "porthole.toml", `[[route]]
path = "/secret"
target = "echo"
tokens_sha256 = ["`+hashTokenCmd(t, "s3cret")+`"]

[[route]]
path = "/mtls"
target = "echo"
client_ca = "clients.pem"
`)
	g := startServe(t, "-config", config, "-listen", "127.0.0.1:0", "-tls-listen", "127.0.0.1:0")

	for _, c := range []struct {
		name string
		env  []string
		args []string
		ok   bool
		want string // in stderr, when not ok
	}{
		{"token-file", nil, []string{"-token-file", tokenFile, g.url + "/secret"}, true, ""},
		{"PORTHOLE_TOKEN", []string{"PORTHOLE_TOKEN=s3cret"}, []string{g.url + "/secret"}, true, ""},
		{"wrong PORTHOLE_TOKEN", []string{"PORTHOLE_TOKEN=guess"}, []string{g.url + "/secret"}, false, "403"},
		{"token and token-file", nil, []string{"-token", "s3cret", "-token-file", tokenFile, g.url + "/secret"}, false, "give one"},
		{"client certificate", nil, []string{"-cert", cert, "-key", key, "-fingerprint", g.pin, g.tlsURL + "/mtls"}, true, ""},
		{"no client certificate", nil, []string{"-fingerprint", g.pin, g.tlsURL + "/mtls"}, false, "401"},
		{"a stranger's certificate", nil, []string{"-cert", stranger, "-key", strangerKey, "-fingerprint", g.pin, g.tlsURL + "/mtls"}, false, "403"},
		{"cert without key", nil, []string{"-cert", cert, g.tlsURL + "/mtls"}, false, "-cert and -key go together"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runPortholeEnv(t, c.env, []byte("abc"), append([]string{"connect"}, c.args...)...)
			switch {
			case c.ok && (r.code != 0 || r.stdout != "abc"):
				t.Errorf("exit %d, stdout %q, want 0 and abc; stderr:\n%s", r.code, r.stdout, r.stderr)
			case !c.ok && (r.code == 0 || !strings.Contains(r.stderr, c.want)):
				t.Errorf("exit %d, want a failure saying %q; stderr:\n%s", r.code, c.want, r.stderr)
			}
			if strings.Contains(r.stderr, "s3cret") {
				t.Errorf("connect wrote the token to its log:\n%s", r.stderr)
			}
		})
	}
}

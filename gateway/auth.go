package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"net/http"
	"strings"

	"github.com/porthole/porthole/carrier"
)

// Auth is a route's access policy: a client passes with any one of the
// credentials it allows. A nil *Auth lets anyone in.
type Auth struct {
	// Tokens are the SHA-256 digests (HashToken) of the bearer tokens
	// allowed; the gateway never holds the tokens themselves.
	Tokens [][sha256.Size]byte
	// ClientCAs verifies client certificates (mutual TLS): a client whose
	// certificate chains to one of them passes. The HTTPS listener asks
	// for client certificates while any route has ClientCAs.
	ClientCAs *x509.CertPool
}

// HashToken returns the SHA-256 digest of a bearer token, as Auth.Tokens
// holds it.
func HashToken(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// TokenCookie is the cookie a browser may carry its bearer token in.
const TokenCookie = "porthole_token"

// Where a client may put its bearer token: the Authorization header
// ("Bearer TOKEN"), a Sec-WebSocket-Protocol entry carrier.TokenProtocol +
// TOKEN (browsers cannot set headers on a WebSocket), or the TokenCookie
// cookie. Never the URL: a token there ends up in logs and histories.

// check says whether r may open a tunnel on a route with policy a: nil,
// or the refusal, 401 when r has no credentials and 403 when they are
// wrong. failed reports credentials that were presented and refused.
func (a *Auth) check(r *http.Request, path string) (refusal *carrier.StatusError, failed bool) {
	if a == nil {
		return nil, false
	}
	certGiven := r.TLS != nil && len(r.TLS.PeerCertificates) > 0
	if a.ClientCAs != nil && certGiven && a.certTrusted(r) {
		return nil, false
	}
	if token, ok := bearerToken(r); ok {
		if a.tokenAllowed(token) {
			return nil, false
		}
		return carrier.Errorf(http.StatusForbidden, "the bearer token is not valid for route %s", path), true
	}
	if certGiven && a.ClientCAs != nil {
		return carrier.Errorf(http.StatusForbidden, "the client certificate is not trusted for route %s", path), true
	}
	e := carrier.Errorf(http.StatusUnauthorized, "route %s needs credentials: %s", path, a.wants())
	e.Header = http.Header{"Www-Authenticate": {`Bearer realm="porthole"`}}
	return e, false
}

// wants says what credentials the policy takes.
func (a *Auth) wants() string {
	var ways []string
	if len(a.Tokens) > 0 {
		ways = append(ways, "a bearer token (porthole connect -token-file FILE, or PORTHOLE_TOKEN)")
	}
	if a.ClientCAs != nil {
		ways = append(ways, "a client certificate over https (porthole connect -cert and -key)")
	}
	return strings.Join(ways, " or ")
}

// tokenAllowed compares token's digest with every allowed digest in
// constant time, so neither the match nor its position shows in timing.
func (a *Auth) tokenAllowed(token string) bool {
	sum := HashToken(token)
	ok := 0
	for _, allowed := range a.Tokens {
		ok |= subtle.ConstantTimeCompare(sum[:], allowed[:])
	}
	return ok == 1
}

// certTrusted verifies the client's certificate chain against ClientCAs.
func (a *Auth) certTrusted(r *http.Request) bool {
	certs := r.TLS.PeerCertificates
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         a.ClientCAs,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err == nil
}

// bearerToken finds the token r carries, if any.
func bearerToken(r *http.Request) (string, bool) {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token), true
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if token, ok := strings.CutPrefix(strings.TrimSpace(p), carrier.TokenProtocol); ok {
				return token, true
			}
		}
	}
	if c, err := r.Cookie(TokenCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

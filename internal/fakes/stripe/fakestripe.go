// Package stripe (imported as fakestripe) is a stateful in-memory fake of
// the Stripe endpoints Beaver calls, for tests through httptest:
//
//	fs := fakestripe.New("whsec_test")
//	srv := httptest.NewServer(fs)
//	client, _ := stripe.New(stripe.Config{SecretKey: "sk_test_x", WebhookSecret: "whsec_test", APIBase: srv.URL})
//
// It answers with Stripe's JSON shapes (API version family "basil") and
// error shapes ({"error": {"type", "code", "message", "param", ...}}),
// honours Idempotency-Key like Stripe (same key and parameters → the
// recorded response, different parameters → idempotency_error), refuses
// unknown parameters, and records every request for inspection. Test
// helpers move objects along (complete a Checkout, refund from the
// "dashboard", open a dispute) and return signed webhook payloads.
//
// Off-session card behaviour follows Stripe's test payment methods:
// pm_card_chargeDeclined → card_declined/generic_decline,
// pm_card_chargeDeclinedInsufficientFunds → card_declined/insufficient_funds,
// pm_card_chargeDeclinedExpiredCard → expired_card,
// pm_card_authenticationRequired (and pm_card_threeDSecureRequired) →
// authentication_required; any other pm_... succeeds.
package stripe

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request is one recorded API call.
type Request struct {
	Method string
	Path   string
	// Form holds the decoded form body (POST) or query (GET), with
	// Stripe's bracket keys as sent, e.g. "metadata[account_id]".
	Form           url.Values
	IdempotencyKey string
	StripeVersion  string
	Header         http.Header // Authorization removed
}

// Server is the fake; it implements http.Handler. Safe for concurrent use.
type Server struct {
	webhookSecret string

	mu           sync.Mutex
	customers    map[string]*customer
	sessions     map[string]*session
	intents      map[string]*paymentIntent
	charges      map[string]*charge
	refunds      map[string]*refund
	setupIntents map[string]*setupIntent
	invoices     map[string]*invoice
	disputes     map[string]*dispute
	idem         map[string]*idemEntry
	requests     []Request
	failures     []failure
}

// New returns an empty fake whose webhook helpers sign with webhookSecret.
func New(webhookSecret string) *Server {
	return &Server{
		webhookSecret: webhookSecret,
		customers:     map[string]*customer{},
		sessions:      map[string]*session{},
		intents:       map[string]*paymentIntent{},
		charges:       map[string]*charge{},
		refunds:       map[string]*refund{},
		setupIntents:  map[string]*setupIntent{},
		invoices:      map[string]*invoice{},
		disputes:      map[string]*dispute{},
		idem:          map[string]*idemEntry{},
	}
}

type idemEntry struct {
	method, path string
	form         url.Values
	status       int
	body         []byte
}

type failure struct {
	method, path string
	status       int
	err          apiError
}

// apiError is Stripe's error object. Fields left empty are omitted, as
// Stripe does.
type apiError struct {
	Type          string         `json:"type"`
	Code          string         `json:"code,omitempty"`
	DeclineCode   string         `json:"decline_code,omitempty"`
	Message       string         `json:"message"`
	Param         string         `json:"param,omitempty"`
	Charge        string         `json:"charge,omitempty"`
	DocURL        string         `json:"doc_url,omitempty"`
	PaymentIntent map[string]any `json:"payment_intent,omitempty"`
	PaymentMethod map[string]any `json:"payment_method,omitempty"`
}

// reply is what a handler produces; ServeHTTP writes it and records it
// for idempotent replays.
type reply struct {
	status int
	body   any
}

func ok(body any) reply { return reply{http.StatusOK, body} }

func errReply(status int, e apiError) reply {
	if e.Code != "" && e.DocURL == "" {
		e.DocURL = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(e.Code, "_", "-")
	}
	return reply{status, map[string]any{"error": e}}
}

func invalid(code, param, msg string) reply {
	return errReply(http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: code, Param: param, Message: msg})
}

func missing(kind, param, id string) reply {
	return errReply(http.StatusNotFound, apiError{Type: "invalid_request_error", Code: "resource_missing", Param: param,
		Message: fmt.Sprintf("No such %s: '%s'", kind, id)})
}

// FailNext makes the next request to method+path answer status with the
// given error, without touching state or the idempotency record (a
// transient failure: a retry with the same key then succeeds). stripe-go
// itself retries only network errors and 429 lock_timeout.
func (s *Server) FailNext(method, path string, status int, errType, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{method: method, path: path, status: status,
		err: apiError{Type: errType, Code: code, Message: message}})
}

// Requests returns a copy of every API request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// RequestsTo returns the recorded requests for one method and path.
func (s *Server) RequestsTo(method, path string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// Object returns the current JSON of any object by id (cus_, cs_, pi_, ch_,
// re_, seti_, in_, dp_), unexpanded.
func (s *Server) Object(id string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v any
	switch {
	case s.customers[id] != nil:
		v = s.customers[id].render()
	case s.sessions[id] != nil:
		v = s.renderSession(s.sessions[id], nil)
	case s.intents[id] != nil:
		v = s.renderIntent(s.intents[id], nil)
	case s.charges[id] != nil:
		v = s.charges[id].render()
	case s.refunds[id] != nil:
		v = s.refunds[id].render()
	case s.setupIntents[id] != nil:
		v = s.setupIntents[id].render()
	case s.invoices[id] != nil:
		v = s.invoices[id].render()
	case s.disputes[id] != nil:
		v = s.disputes[id].render()
	default:
		return nil, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b, true
}

// ServeHTTP routes /v1/... like Stripe's API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, "", invalid("", "", "Invalid request body: "+err.Error()))
		return
	}
	hdr := r.Header.Clone()
	hdr.Del("Authorization")
	idemKey := r.Header.Get("Idempotency-Key")

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, Form: cloneValues(r.Form),
		IdempotencyKey: idemKey, StripeVersion: r.Header.Get("Stripe-Version"), Header: hdr,
	})
	reqID := "req_" + randID(14)

	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer sk_") {
		writeJSON(w, reqID, errReply(http.StatusUnauthorized, apiError{Type: "invalid_request_error",
			Message: "Invalid API Key provided. Use a secret key (sk_test_...) as a Bearer token."}))
		return
	}
	for i, f := range s.failures {
		if f.method == r.Method && f.path == r.URL.Path {
			s.failures = append(s.failures[:i], s.failures[i+1:]...)
			writeJSON(w, reqID, errReply(f.status, f.err))
			return
		}
	}

	// Idempotency: Stripe replays the first response (errors included)
	// for a key, and refuses the key with different parameters.
	if r.Method == http.MethodPost && idemKey != "" {
		if e := s.idem[idemKey]; e != nil {
			if e.method != r.Method || e.path != r.URL.Path || !reflect.DeepEqual(e.form, cloneValues(r.Form)) {
				writeJSON(w, reqID, errReply(http.StatusBadRequest, apiError{Type: "idempotency_error",
					Message: fmt.Sprintf("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", idemKey)}))
				return
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Idempotency-Key", idemKey)
			writeRaw(w, reqID, e.status, e.body)
			return
		}
	}

	rep := s.route(r)
	body, err := json.Marshal(rep.body)
	if err != nil {
		panic(fmt.Sprintf("fakestripe: marshal response: %v", err))
	}
	if r.Method == http.MethodPost && idemKey != "" {
		s.idem[idemKey] = &idemEntry{method: r.Method, path: r.URL.Path, form: cloneValues(r.Form), status: rep.status, body: body}
		w.Header().Set("Idempotency-Key", idemKey)
	}
	writeRaw(w, reqID, rep.status, body)
}

func (s *Server) route(r *http.Request) reply {
	p := r.URL.Path
	post, get := r.Method == http.MethodPost, r.Method == http.MethodGet
	switch {
	case post && p == "/v1/customers":
		return s.createCustomer(r.Form)
	case get && strings.HasPrefix(p, "/v1/customers/") && !strings.Contains(p[len("/v1/customers/"):], "/"):
		c := s.customers[p[len("/v1/customers/"):]]
		if c == nil {
			return missing("customer", "id", p[len("/v1/customers/"):])
		}
		return ok(c.render())
	case post && p == "/v1/checkout/sessions":
		return s.createSession(r.Form)
	case get && strings.HasPrefix(p, "/v1/checkout/sessions/") && !strings.Contains(p[len("/v1/checkout/sessions/"):], "/"):
		return s.getSession(p[len("/v1/checkout/sessions/"):], r.Form)
	case post && p == "/v1/payment_intents":
		return s.createIntent(r.Form)
	case get && strings.HasPrefix(p, "/v1/payment_intents/") && !strings.Contains(p[len("/v1/payment_intents/"):], "/"):
		return s.getIntent(p[len("/v1/payment_intents/"):], r.Form)
	case get && strings.HasPrefix(p, "/v1/setup_intents/") && !strings.Contains(p[len("/v1/setup_intents/"):], "/"):
		id := p[len("/v1/setup_intents/"):]
		if err := checkParams(r.Form, "expand"); err != nil {
			return *err
		}
		si := s.setupIntents[id]
		if si == nil {
			return missing("setupintent", "intent", id)
		}
		return ok(si.render())
	case post && p == "/v1/refunds":
		return s.createRefund(r.Form)
	}
	return errReply(http.StatusNotFound, apiError{Type: "invalid_request_error",
		Message: fmt.Sprintf("Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.", r.Method, p)})
}

func writeJSON(w http.ResponseWriter, reqID string, rep reply) {
	body, err := json.Marshal(rep.body)
	if err != nil {
		panic(err)
	}
	writeRaw(w, reqID, rep.status, body)
}

func writeRaw(w http.ResponseWriter, reqID string, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	if reqID != "" {
		w.Header().Set("Request-Id", reqID)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// --- form helpers -----------------------------------------------------

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// checkParams refuses top-level parameters outside allowed, like Stripe.
func checkParams(form url.Values, allowed ...string) *reply {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for k := range form {
		top, _, _ := strings.Cut(k, "[")
		if !ok[top] {
			r := invalid("parameter_unknown", top, "Received unknown parameter: "+top)
			return &r
		}
	}
	return nil
}

// subMap collects "prefix[key]=value" pairs, e.g. metadata.
func subMap(form url.Values, prefix string) map[string]string {
	out := map[string]string{}
	for k, vs := range form {
		if rest, found := strings.CutPrefix(k, prefix+"["); found && strings.HasSuffix(rest, "]") && !strings.Contains(rest, "[") {
			out[strings.TrimSuffix(rest, "]")] = vs[0]
		}
	}
	return out
}

// list collects "name[0]", "name[1]", ... or "name[]" values in order.
func list(form url.Values, name string) []string {
	var out []string
	out = append(out, form[name+"[]"]...)
	for i := 0; ; i++ {
		v, found := form[fmt.Sprintf("%s[%d]", name, i)]
		if !found {
			break
		}
		out = append(out, v...)
	}
	return out
}

func boolParam(form url.Values, key string) (bool, bool, *reply) {
	v, present := form[key]
	if !present {
		return false, false, nil
	}
	switch v[0] {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	r := invalid("parameter_invalid_boolean", key, fmt.Sprintf("Invalid boolean: %s", v[0]))
	return false, true, &r
}

func intParam(form url.Values, key string) (int64, bool, *reply) {
	v, present := form[key]
	if !present {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		r := invalid("parameter_invalid_integer", key, fmt.Sprintf("Invalid integer: %s", v[0]))
		return 0, true, &r
	}
	return n, true, nil
}

func validURL(param, u string) *reply {
	parsed, err := url.Parse(strings.ReplaceAll(u, "{CHECKOUT_SESSION_ID}", "x"))
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		r := invalid("url_invalid", param, "Not a valid URL")
		return &r
	}
	return nil
}

// expansion is a set of dotted expand paths relative to an object.
type expansion map[string]bool

func newExpansion(paths []string) expansion {
	e := expansion{}
	for _, p := range paths {
		e[p] = true
	}
	return e
}

func (e expansion) has(field string) bool {
	if e[field] {
		return true
	}
	for p := range e {
		if strings.HasPrefix(p, field+".") {
			return true
		}
	}
	return false
}

func (e expansion) sub(field string) expansion {
	out := expansion{}
	for p := range e {
		if rest, found := strings.CutPrefix(p, field+"."); found {
			out[rest] = true
		}
	}
	return out
}

// checkExpand refuses paths outside the supported set, as Stripe does for
// non-expandable properties.
func checkExpand(paths []string, supported ...string) *reply {
	ok := map[string]bool{}
	for _, s := range supported {
		ok[s] = true
	}
	for _, p := range paths {
		if !ok[p] {
			r := invalid("", "expand", fmt.Sprintf("This property cannot be expanded (%s).", p))
			return &r
		}
	}
	return nil
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

func newID(prefix string) string { return prefix + randID(24) }

func now() int64 { return time.Now().Unix() }

func nullable(id string) any {
	if id == "" {
		return nil
	}
	return id
}

func metaOrEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

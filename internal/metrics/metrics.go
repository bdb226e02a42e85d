// Package metrics holds what Gatehouse exports to Prometheus: requests by
// route pattern and status with their latency, uploads, sign-in outcomes
// by factor, and gauges read at scrape time (the outbox, the Simple page
// cache, the database pool).
//
// The request path must stay allocation-free (the Simple API serves a warm
// page in well under a microsecond of Go time), so nothing here builds a
// label map per request: every series a request touches is resolved once,
// at start-up for routes, uploads and sign-ins, and on the first request
// for a route's status codes, and then held by pointer.
//
// A nil *Metrics is valid and records nothing: that is the server with
// --metrics-listen unset.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every metric name.
const namespace = "gatehouse"

// latencyBuckets cover a cached Simple page (tens of microseconds) up to a
// large upload (a minute).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics is the set of series one server exports. Make it with New.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	routes   map[string]*Route
	other    *Route

	uploads     [numUploadOutcomes]prometheus.Counter
	uploadBytes [numUploadOutcomes]prometheus.Counter
	logins      [numFactors][numLoginOutcomes]prometheus.Counter
}

// New makes the metrics with the Go runtime and process collectors
// registered. Routes are added with Route before the server starts.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), routes: map[string]*Route{}}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_requests_total",
		Help: "HTTP requests answered, by route pattern (as registered, e.g. \"GET /simple/{project}/{$}\") and status code.",
	}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "Time from a request's arrival to its handler's return, by route pattern.",
		Buckets: latencyBuckets,
	}, []string{"route"})
	up := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "uploads_total",
		Help: "Uploads (POST /legacy/) by outcome: accepted, duplicate (an identical file was there), refused (the client's mistake, 4xx), failed (the server's, 5xx).",
	}, []string{"outcome"})
	upBytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "upload_bytes_total",
		Help: "Bytes of upload request bodies read, by the upload's outcome.",
	}, []string{"outcome"})
	for o := range UploadOutcome(numUploadOutcomes) {
		m.uploads[o] = up.WithLabelValues(o.String())
		m.uploadBytes[o] = upBytes.WithLabelValues(o.String())
	}
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "login_attempts_total",
		Help: "Sign-in steps by factor (password, totp, recovery_code, security_key, passkey, email_confirmation) and outcome: ok, refused (wrong or expired), limited (rate limit or busy), error (the server's).",
	}, []string{"factor", "outcome"})
	for f := range Factor(numFactors) {
		for o := range LoginOutcome(numLoginOutcomes) {
			m.logins[f][o] = logins.WithLabelValues(f.String(), o.String())
		}
	}
	m.reg.MustRegister(m.requests, m.latency, up, upBytes, logins)
	m.other = m.Route("other")
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Register adds a collector (gauges read at scrape time).
func (m *Metrics) Register(c prometheus.Collector) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(c)
}

// Route is one route pattern's series, resolved once.
type Route struct {
	pattern  string
	requests *prometheus.CounterVec
	latency  prometheus.Observer
	codes    [500]atomic.Pointer[prometheus.Counter] // status 100–599
	odd      prometheus.Counter                      // any other status
}

// Route registers pattern's series and returns them. It is for set-up
// (routes.go's registrations) and is not safe for concurrent use.
func (m *Metrics) Route(pattern string) *Route {
	if m == nil {
		return nil
	}
	if r, ok := m.routes[pattern]; ok {
		return r
	}
	r := &Route{pattern: pattern, requests: m.requests, latency: m.latency.WithLabelValues(pattern),
		odd: m.requests.WithLabelValues(pattern, "other")}
	m.routes[pattern] = r
	return r
}

// RouteFor returns the series of a registered pattern, or those of "other"
// (a request no route matched). Safe for concurrent use once set-up is
// over; it does not allocate.
func (m *Metrics) RouteFor(pattern string) *Route {
	if m == nil {
		return nil
	}
	if r, ok := m.routes[pattern]; ok {
		return r
	}
	return m.other
}

// Observe counts one answered request. The first request with a given
// status resolves that status's counter; every later one only adds.
func (r *Route) Observe(status int, took time.Duration) {
	if r == nil {
		return
	}
	r.latency.Observe(took.Seconds())
	if status < 100 || status > 599 {
		r.odd.Inc()
		return
	}
	slot := &r.codes[status-100]
	c := slot.Load()
	if c == nil {
		// Two first requests may both resolve it: WithLabelValues returns
		// the same series, so either pointer is right.
		v := r.requests.WithLabelValues(r.pattern, strconv.Itoa(status))
		c = &v
		slot.Store(c)
	}
	(*c).Inc()
}

// UploadOutcome is how an upload ended.
type UploadOutcome int

// The upload outcomes.
const (
	UploadAccepted UploadOutcome = iota
	UploadDuplicate
	UploadRefused
	UploadFailed
	numUploadOutcomes
)

func (o UploadOutcome) String() string {
	return [...]string{"accepted", "duplicate", "refused", "failed"}[o]
}

// Upload counts one upload and the bytes of its body that were read.
func (m *Metrics) Upload(o UploadOutcome, bytes int64) {
	if m == nil {
		return
	}
	m.uploads[o].Inc()
	m.uploadBytes[o].Add(float64(bytes))
}

// Factor is what a sign-in step checked.
type Factor int

// The factors.
const (
	FactorPassword Factor = iota
	FactorTOTP
	FactorRecoveryCode
	FactorSecurityKey
	FactorPasskey
	FactorEmailConfirmation
	numFactors
)

func (f Factor) String() string {
	return [...]string{"password", "totp", "recovery_code", "security_key", "passkey", "email_confirmation"}[f]
}

// LoginOutcome is how a sign-in step ended.
type LoginOutcome int

// The sign-in outcomes.
const (
	LoginOK LoginOutcome = iota
	LoginRefused
	LoginLimited
	LoginError
	numLoginOutcomes
)

func (o LoginOutcome) String() string {
	return [...]string{"ok", "refused", "limited", "error"}[o]
}

// Login counts one sign-in step.
func (m *Metrics) Login(f Factor, o LoginOutcome) {
	if m == nil {
		return
	}
	m.logins[f][o].Inc()
}

package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/delivery"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/identity"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
	"github.com/switchboard-gw/switchboard/upstream"
)

// maxAdminBody caps admin request bodies.
const maxAdminBody = 1 << 20

// adminAuth requires "Authorization: Bearer ADMIN_KEY", or a token of a
// trusted OIDC issuer with the admin permission (adminIdentityAuth).
func (s *Server) adminAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		want, err := s.cfg.Store.AdminKeyHash(c.Request().Context())
		if err != nil {
			return err
		}
		got := bearerHeader(c.Request())
		if got == "" {
			return fail(http.StatusUnauthorized, "the admin API needs Authorization: Bearer ADMIN_KEY (printed at first start; also in SWITCHBOARD_ADMIN_KEY)")
		}
		if s.cfg.Identities != nil && identity.LooksLikeJWT(got) {
			return s.adminIdentityAuth(c, got, next)
		}
		if !store.AdminKeyMatches(want, got) {
			return fail(http.StatusUnauthorized, "wrong admin key")
		}
		return next(c)
	}
}

func (s *Server) adminRoutes(g *echo.Group) {
	g.GET("/hubs", s.listHubs)
	g.POST("/hubs", s.createHub)
	g.GET("/hubs/:hub", s.getHub)
	g.PUT("/hubs/:hub", s.putHub)
	g.DELETE("/hubs/:hub", s.deleteHub)
	g.GET("/hubs/:hub/upstreams", s.listUpstreams)
	g.POST("/hubs/:hub/upstreams", s.createUpstream)
	g.GET("/hubs/:hub/upstreams/:name", s.getUpstream)
	g.PUT("/hubs/:hub/upstreams/:name", s.putUpstream)
	g.DELETE("/hubs/:hub/upstreams/:name", s.deleteUpstream)
	g.GET("/hubs/:hub/upstreams/:name/log", s.upstreamLog)
	g.GET("/hubs/:hub/upstreams/:name/secrets", s.revealSecrets)
	g.POST("/hubs/:hub/upstreams/:name/secrets/\\:rotate", s.rotateSecret)
	g.GET("/status", s.status)
	s.keyRoutes(g)
	s.overviewRoutes(g)
}

// decodeStrict reads a JSON body, refusing unknown fields and trailing data
// so a typo in a field name is an error rather than silently ignored.
func decodeStrict(c echo.Context, v any) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxAdminBody+1))
	if err != nil {
		return fail(http.StatusBadRequest, "reading body: "+err.Error())
	}
	if len(body) > maxAdminBody {
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", maxAdminBody))
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(http.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
	if dec.More() {
		return fail(http.StatusBadRequest, "invalid JSON body: more than one value")
	}
	return nil
}

// hubInput is the writable part of a hub.
type hubInput struct {
	Name           string   `json:"name"`
	AllowAnonymous bool     `json:"allowAnonymous"`
	MaxMessageSize int      `json:"maxMessageSize"`
	AllowedOrigins []string `json:"allowedOrigins"`
	// Transports the hub offers; empty means all.
	Transports []string `json:"transports"`
}

const maxMessageSizeLimit = 16 << 20

func (in *hubInput) validate() error {
	if !negotiate.ValidHubName(in.Name) {
		return fail(http.StatusBadRequest, fmt.Sprintf("invalid hub name %q: it must start with a letter and contain only letters, digits and _`,.[] (at most 128)", in.Name))
	}
	if in.MaxMessageSize < 0 || in.MaxMessageSize > maxMessageSizeLimit {
		return fail(http.StatusBadRequest, fmt.Sprintf("maxMessageSize must be between 0 (default %d) and %d bytes", DefaultMaxMessageSize, maxMessageSizeLimit))
	}
	for _, o := range in.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fail(http.StatusBadRequest, fmt.Sprintf("allowedOrigins: %q is not an origin like https://app.example.com", o))
		}
	}
	// Transport names are taken in any case and kept as negotiate spells
	// them.
	for i, t := range in.Transports {
		name, ok := transportName(t)
		if !ok {
			return fail(http.StatusBadRequest, fmt.Sprintf("transports: %q is not a transport; use WebSockets, ServerSentEvents and/or LongPolling (none listed: all three)", t))
		}
		if slices.Contains(in.Transports[:i], name) {
			return fail(http.StatusBadRequest, fmt.Sprintf("transports: %s is listed twice", name))
		}
		in.Transports[i] = name
	}
	return nil
}

func (in *hubInput) hub() store.Hub {
	return store.Hub{Name: in.Name, AllowAnonymous: in.AllowAnonymous, MaxMessageSize: in.MaxMessageSize, AllowedOrigins: in.AllowedOrigins,
		Transports: in.Transports}
}

// hubView is a hub as the admin API shows it: with the limits in force,
// so a hub that set none shows the defaults rather than 0.
type hubView struct {
	store.Hub
	MaxMessageSize int      `json:"maxMessageSize"`
	Transports     []string `json:"transports"`
}

func viewHub(h store.Hub) hubView {
	v := hubView{Hub: h, MaxMessageSize: h.MaxMessageSize}
	if v.MaxMessageSize == 0 {
		v.MaxMessageSize = DefaultMaxMessageSize
	}
	for _, t := range hubTransports(h) {
		v.Transports = append(v.Transports, t.Transport)
	}
	return v
}

func (s *Server) listHubs(c echo.Context) error {
	hubs, err := s.cfg.Store.Hubs(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]hubView, 0, len(hubs))
	for _, h := range hubs {
		out = append(out, viewHub(h))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) createHub(c echo.Context) error {
	var in hubInput
	if err := decodeStrict(c, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	h, err := s.cfg.Store.CreateHub(c.Request().Context(), in.hub())
	if errors.Is(err, store.ErrExists) {
		return fail(http.StatusConflict, fmt.Sprintf("hub %q already exists; PUT /admin/hubs/%s to change it", in.Name, in.Name))
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, viewHub(h))
}

func (s *Server) getHub(c echo.Context) error {
	h, err := s.cfg.Store.Hub(c.Request().Context(), c.Param("hub"))
	if err != nil {
		return s.notFound(err, "hub %q not found", c.Param("hub"))
	}
	return c.JSON(http.StatusOK, viewHub(h))
}

func (s *Server) putHub(c echo.Context) error {
	var in hubInput
	if err := decodeStrict(c, &in); err != nil {
		return err
	}
	if in.Name == "" {
		in.Name = c.Param("hub")
	}
	if in.Name != c.Param("hub") {
		return fail(http.StatusBadRequest, "the name in the body differs from the URL; hubs cannot be renamed")
	}
	if err := in.validate(); err != nil {
		return err
	}
	h, err := s.cfg.Store.PutHub(c.Request().Context(), in.hub())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewHub(h))
}

func (s *Server) deleteHub(c echo.Context) error {
	if err := s.cfg.Store.DeleteHub(c.Request().Context(), c.Param("hub")); err != nil {
		return s.notFound(err, "hub %q not found", c.Param("hub"))
	}
	s.upstreamsChanged()
	return c.NoContent(http.StatusNoContent)
}

// upstreamInput is the writable part of an upstream.
type upstreamInput struct {
	Name        string         `json:"name"`
	URLTemplate string         `json:"urlTemplate"`
	Events      []string       `json:"events"`
	Timeout     store.Duration `json:"timeout"`
	Secrets     []string       `json:"secrets"`
	// OAuth2 adds a client-credentials bearer token to every request.
	OAuth2 *oauth2Input `json:"oauth2"`
	// SkipValidation saves the upstream without the registration check
	// (for local development against a receiver that does not answer it).
	SkipValidation bool `json:"skipValidation"`
	// The profile and, for azure-signalr, its event rules (admin_azure.go).
	store.UpstreamProfile
}

var upstreamName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

const maxUpstreamTimeout = 60 * time.Second

func (in *upstreamInput) validate() error {
	if !upstreamName.MatchString(in.Name) {
		return fail(http.StatusBadRequest, fmt.Sprintf("invalid upstream name %q: use 1-64 letters, digits, '.', '_' or '-'", in.Name))
	}
	if err := delivery.ValidateTemplate(in.URLTemplate); err != nil {
		return fail(http.StatusBadRequest, "urlTemplate: "+strings.TrimPrefix(err.Error(), "upstream: "))
	}
	if _, err := delivery.ParseFilter(in.Events); err != nil {
		return fail(http.StatusBadRequest, "events: "+strings.TrimPrefix(err.Error(), "upstream: "))
	}
	if d := time.Duration(in.Timeout); d < 0 || d > maxUpstreamTimeout {
		return fail(http.StatusBadRequest, fmt.Sprintf("timeout must be between 0 (default %s) and %s", delivery.DefaultTimeout, maxUpstreamTimeout))
	}
	if len(in.Secrets) > 2 {
		return fail(http.StatusBadRequest, "at most two secrets may be active (the new and the old during rotation)")
	}
	for i, sec := range in.Secrets {
		if err := checkSecret(sec); err != nil {
			return fail(http.StatusBadRequest, fmt.Sprintf("secrets[%d]: %s", i, err.Error()))
		}
	}
	if err := in.OAuth2.validate(); err != nil {
		return err
	}
	return in.validateProfile()
}

// checkSecret checks a signing secret an admin supplies. The error is meant
// for the admin and never quotes the secret.
func checkSecret(sec string) error {
	if strings.Contains(sec, maskMark) {
		return errors.New("this is a masked secret as the admin API shows it; give the whole secret " +
			"(GET …/upstreams/NAME/secrets, switchboard upstream secret show), or leave secrets out to keep the current ones")
	}
	if err := upstream.CheckSecret(sec); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "upstream: ") +
			`; make one with "switchboard upstream secret generate", or leave secrets out to have one generated`)
	}
	return nil
}

func (s *Server) upstreamFrom(c echo.Context, in *upstreamInput) store.Upstream {
	secrets := in.Secrets
	if len(secrets) == 0 && in.Profile != delivery.ProfileAzure {
		secrets = []string{upstream.NewSecret()}
	}
	return store.Upstream{Hub: c.Param("hub"), Name: in.Name, URLTemplate: in.URLTemplate,
		Events: in.Events, Timeout: in.Timeout, Secrets: secrets, UpstreamProfile: in.UpstreamProfile, OAuth2: in.OAuth2.stored()}
}

// upstreamView is an upstream as the admin API shows it. Secrets are masked
// except in the answer that created them (a new upstream, a rotation) and
// in the reveal call, GET …/upstreams/NAME/secrets. Warnings says what the
// admin may not expect: an earlier upstream that takes this one's blocking
// events (in create, replace and list answers).
type upstreamView struct {
	store.Upstream
	Secrets  []string `json:"secrets"`
	Warnings []string `json:"warnings,omitempty"`
}

// maskMark ends a masked secret; a secret never contains it.
const maskMark = "…"

// maskSecret keeps "whsec_" and four characters, enough to tell two secrets
// apart and too few to sign with.
func maskSecret(sec string) string {
	if n := len(upstream.SecretPrefix) + 4; len(sec) > n {
		return sec[:n] + maskMark
	}
	return maskMark
}

func viewUpstream(u store.Upstream, showSecrets bool) upstreamView {
	v := upstreamView{Upstream: u, Secrets: make([]string, len(u.Secrets))}
	v.OAuth2 = maskOAuth2(u.OAuth2)
	for i, sec := range u.Secrets {
		if showSecrets {
			v.Secrets[i] = sec
		} else {
			v.Secrets[i] = maskSecret(sec)
		}
	}
	return v
}

func (s *Server) listUpstreams(c echo.Context) error {
	if _, err := s.cfg.Store.Hub(c.Request().Context(), c.Param("hub")); err != nil {
		return s.notFound(err, "hub %q not found", c.Param("hub"))
	}
	ups, err := s.cfg.Store.Upstreams(c.Request().Context(), c.Param("hub"))
	if err != nil {
		return err
	}
	out := make([]upstreamView, 0, len(ups))
	for _, u := range ups {
		v := viewUpstream(u, false)
		v.Warnings = shadowed(ups, u)
		out = append(out, v)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) createUpstream(c echo.Context) error {
	var in upstreamInput
	if err := decodeStrict(c, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	if _, err := s.cfg.Store.Hub(c.Request().Context(), c.Param("hub")); err != nil {
		return s.notFound(err, "hub %q not found; create it first", c.Param("hub"))
	}
	if err := s.checkRegistration(c, &in); err != nil {
		return err
	}
	next := s.upstreamFrom(c, &in)
	if err := s.checkOAuth2(c.Request().Context(), &next); err != nil {
		return err
	}
	u, err := s.cfg.Store.CreateUpstream(c.Request().Context(), next)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fail(http.StatusNotFound, fmt.Sprintf("hub %q not found; create it first", c.Param("hub")))
	case errors.Is(err, store.ErrExists):
		return fail(http.StatusConflict, fmt.Sprintf("upstream %q already exists on hub %q", in.Name, c.Param("hub")))
	case err != nil:
		return err
	}
	s.upstreamsChanged()
	v := viewUpstream(u, true) // shown once: the secret's creation
	v.Warnings = s.shadowWarnings(c.Request().Context(), u)
	return c.JSON(http.StatusCreated, v)
}

func (s *Server) getUpstream(c echo.Context) error {
	u, err := s.cfg.Store.Upstream(c.Request().Context(), c.Param("hub"), c.Param("name"))
	if err != nil {
		return s.notFound(err, "upstream %q not found on hub %q", c.Param("name"), c.Param("hub"))
	}
	return c.JSON(http.StatusOK, viewUpstream(u, false))
}

func (s *Server) putUpstream(c echo.Context) error {
	var in upstreamInput
	if err := decodeStrict(c, &in); err != nil {
		return err
	}
	if in.Name == "" {
		in.Name = c.Param("name")
	}
	if in.Name != c.Param("name") {
		return fail(http.StatusBadRequest, "the name in the body differs from the URL; upstreams cannot be renamed")
	}
	if err := in.validate(); err != nil {
		return err
	}
	if _, err := s.cfg.Store.Hub(c.Request().Context(), c.Param("hub")); err != nil {
		return s.notFound(err, "hub %q not found; create it first", c.Param("hub"))
	}
	if err := s.checkRegistration(c, &in); err != nil {
		return err
	}
	// A PUT saves the upstream afresh, which also enables it again after a
	// 410 Gone disabled it.
	next := s.upstreamFrom(c, &in)
	if err := s.checkOAuth2(c.Request().Context(), &next); err != nil {
		return err
	}
	generated := len(in.Secrets) == 0
	if generated {
		if old, err := s.cfg.Store.Upstream(c.Request().Context(), c.Param("hub"), in.Name); err == nil {
			next.Secrets = old.Secrets // keep the secrets the handler already knows
			generated = false
		}
	}
	u, err := s.cfg.Store.PutUpstream(c.Request().Context(), next)
	if err != nil {
		return s.notFound(err, "hub %q not found; create it first", c.Param("hub"))
	}
	s.upstreamsChanged()
	v := viewUpstream(u, generated) // a secret made by this call is shown, once
	v.Warnings = s.shadowWarnings(c.Request().Context(), u)
	return c.JSON(http.StatusOK, v)
}

// secretsView is what the reveal and rotate calls answer: the upstream's
// signing secrets in full, newest (the one to sign with) first.
type secretsView struct {
	Secrets []string `json:"secrets"`
	// Dropped counts the secrets a rotation retired.
	Dropped int `json:"dropped,omitempty"`
}

// revealSecrets answers GET …/upstreams/{name}/secrets: the secrets in full,
// for an admin who lost them.
func (s *Server) revealSecrets(c echo.Context) error {
	u, err := s.cfg.Store.Upstream(c.Request().Context(), c.Param("hub"), c.Param("name"))
	if err != nil {
		return s.notFound(err, "upstream %q not found on hub %q", c.Param("name"), c.Param("hub"))
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, secretsView{Secrets: u.Secrets})
}

// rotateInput is the optional body of a rotation.
type rotateInput struct {
	// Secret is the new secret; empty means generate one.
	Secret string `json:"secret"`
}

// rotateSecret answers POST …/upstreams/{name}/secrets/:rotate: a new secret
// (given, or generated) signs from now on; the previous newest stays active
// beside it, so webhooks carry both signatures until the function has the
// new one; older secrets are dropped. At most two are ever active.
func (s *Server) rotateSecret(c echo.Context) error {
	var in rotateInput
	if c.Request().ContentLength != 0 {
		if err := decodeStrict(c, &in); err != nil {
			return err
		}
	}
	if in.Secret == "" {
		in.Secret = upstream.NewSecret()
	} else if err := checkSecret(in.Secret); err != nil {
		return fail(http.StatusBadRequest, "secret: "+err.Error())
	}
	ctx := c.Request().Context()
	s.secretsMu.Lock()
	defer s.secretsMu.Unlock()
	u, err := s.cfg.Store.Upstream(ctx, c.Param("hub"), c.Param("name"))
	if err != nil {
		return s.notFound(err, "upstream %q not found on hub %q", c.Param("name"), c.Param("hub"))
	}
	next := []string{in.Secret}
	if len(u.Secrets) > 0 && u.Secrets[0] != in.Secret {
		next = append(next, u.Secrets[0])
	}
	dropped := 0
	for _, old := range u.Secrets {
		if !slices.Contains(next, old) {
			dropped++
		}
	}
	u.Secrets = next
	if _, err := s.cfg.Store.PutUpstream(ctx, u); err != nil {
		return s.notFound(err, "upstream %q not found on hub %q", c.Param("name"), c.Param("hub"))
	}
	s.upstreamsChanged()
	s.log.Info("upstream signing secret rotated", "hub", u.Hub, "upstream", u.Name, "dropped", dropped)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, secretsView{Secrets: next, Dropped: dropped})
}

// shadowWarnings says which blocking events (connect, message) of u an
// earlier upstream of the hub takes first: they go to the first match only,
// as in Azure SignalR, so u never sees them. Notifications go to every
// match and are not listed.
func (s *Server) shadowWarnings(ctx context.Context, u store.Upstream) []string {
	ups, err := s.cfg.Store.Upstreams(ctx, u.Hub)
	if err != nil {
		s.log.Warn("listing upstreams for the shadowing check", "hub", u.Hub, "err", err)
		return nil
	}
	return shadowed(ups, u)
}

// shadowed is shadowWarnings for u among ups, the hub's upstreams in order.
func shadowed(ups []store.Upstream, u store.Upstream) []string {
	if u.Profile == delivery.ProfileAzure {
		return nil // its rules are Azure's, not an event filter
	}
	mine := blockingEvents(u.Events)
	var out []string
	for _, earlier := range ups {
		if earlier.Name == u.Name {
			break
		}
		if earlier.Profile == delivery.ProfileAzure {
			continue
		}
		if lost := mine.takenBy(blockingEvents(earlier.Events)); len(lost) > 0 {
			out = append(out, fmt.Sprintf("upstream %q comes first and also takes %s: blocking events go to the first "+
				"upstream that takes them, so %q will not get those (connected and disconnected still reach both); "+
				"narrow the events of one of them, or remove and re-add them in the order you want (switchboard upstream list shows it)",
				earlier.Name, strings.Join(lost, ", "), u.Name))
		}
	}
	return out
}

// blocking is the part of an event filter that concerns blocking events.
type blocking struct {
	connect     bool
	allMessages bool
	targets     map[string]bool // lower-cased message targets, when not allMessages
}

// blockingEvents reads a validated event filter (see delivery.ParseFilter).
func blockingEvents(events []string) blocking {
	b := blocking{targets: map[string]bool{}}
	if len(events) == 0 {
		return blocking{connect: true, allMessages: true}
	}
	for _, raw := range events {
		e := strings.TrimSpace(raw)
		name, target, hasTarget := strings.Cut(e, ":")
		switch {
		case e == "*":
			b.connect, b.allMessages = true, true
		case name == upstream.EventConnect && !hasTarget:
			b.connect = true
		case name == upstream.EventMessage && (!hasTarget || target == "*"):
			b.allMessages = true
		case name == upstream.EventMessage:
			b.targets[strings.ToLower(target)] = true
		}
	}
	return b
}

// takenBy lists, in filter syntax, the blocking events of b that first also
// takes.
func (b blocking) takenBy(first blocking) []string {
	var lost []string
	if b.connect && first.connect {
		lost = append(lost, upstream.EventConnect)
	}
	switch {
	case b.allMessages && first.allMessages:
		lost = append(lost, "message:*")
	case first.allMessages:
		for _, t := range sortedKeys(b.targets) {
			lost = append(lost, "message:"+t)
		}
	case b.allMessages:
		for _, t := range sortedKeys(first.targets) {
			lost = append(lost, "message:"+t)
		}
	default:
		for _, t := range sortedKeys(b.targets) {
			if first.targets[t] {
				lost = append(lost, "message:"+t)
			}
		}
	}
	return lost
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *Server) deleteUpstream(c echo.Context) error {
	if err := s.cfg.Store.DeleteUpstream(c.Request().Context(), c.Param("hub"), c.Param("name")); err != nil {
		return s.notFound(err, "upstream %q not found on hub %q", c.Param("name"), c.Param("hub"))
	}
	s.upstreamsChanged()
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) status(c echo.Context) error {
	hubs := s.cfg.Gateway.Status()
	if hubs == nil {
		hubs = []gateway.HubStatus{} // an idle node answers [], not null
	}
	out := map[string]any{
		"node":             s.cfg.Gateway.NodeID(),
		"hubs":             hubs,
		"slowConsumers":    s.cfg.Gateway.SlowConsumers(),
		"clientLimits":     s.limits.status(),
		"connectionLimits": s.cfg.Gateway.LimitStats(),
	}
	if s.cfg.Deliveries != nil {
		st := s.cfg.Deliveries.Status()
		if st.Upstreams == nil {
			st.Upstreams = []delivery.UpstreamStatus{}
		}
		out["outbox"], out["upstreams"] = st.Outbox, st.Upstreams
	}
	if s.cfg.NodeStatus != nil {
		for k, v := range s.cfg.NodeStatus() {
			out[k] = v
		}
	}
	return c.JSON(http.StatusOK, out)
}

// checkRegistration applies the upstream address policy (always: skipping
// the validation does not skip it) and then proves, unless the admin
// skipped it, that the receiver wants this gateway's events (CloudEvents
// abuse protection): OPTIONS to the URL a connect event would go to.
func (s *Server) checkRegistration(c echo.Context, in *upstreamInput) error {
	if s.cfg.Deliveries == nil {
		return nil
	}
	if err := s.cfg.Deliveries.CheckAddress(c.Request().Context(), c.Param("hub"), in.URLTemplate); err != nil {
		return fail(http.StatusBadRequest, "urlTemplate: "+strings.TrimPrefix(err.Error(), "delivery: "))
	}
	if in.SkipValidation {
		return nil
	}
	if err := s.cfg.Deliveries.CheckRegistration(c.Request().Context(), c.Param("hub"), in.URLTemplate); err != nil {
		return fail(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "delivery: "))
	}
	return nil
}

// upstreamLog answers the upstream's latest deliveries, newest first.
func (s *Server) upstreamLog(c echo.Context) error {
	if _, err := s.cfg.Store.Upstream(c.Request().Context(), c.Param("hub"), c.Param("name")); err != nil {
		return s.notFound(err, "upstream %q not found on hub %q", c.Param("name"), c.Param("hub"))
	}
	var log []delivery.Delivery
	if s.cfg.Deliveries != nil {
		log, _ = s.cfg.Deliveries.DeliveryLog(c.Param("hub"), c.Param("name"))
	}
	if log == nil {
		log = []delivery.Delivery{}
	}
	return c.JSON(http.StatusOK, log)
}

func (s *Server) upstreamsChanged() {
	if s.cfg.UpstreamsChanged != nil {
		s.cfg.UpstreamsChanged()
	}
}

// notFound maps store.ErrNotFound to a 404 with the given message and passes
// other errors on.
func (s *Server) notFound(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return fail(http.StatusNotFound, fmt.Sprintf(format, args...))
	}
	return err
}

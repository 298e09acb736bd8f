package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/delivery"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
	"github.com/switchboard-gw/switchboard/upstream"
)

// maxAdminBody caps admin request bodies.
const maxAdminBody = 1 << 20

// adminAuth requires "Authorization: Bearer ADMIN_KEY".
func (s *Server) adminAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		want, err := s.cfg.Store.AdminKey(c.Request().Context())
		if err != nil {
			return err
		}
		got := bearerHeader(c.Request())
		if got == "" {
			return fail(http.StatusUnauthorized, "the admin API needs Authorization: Bearer ADMIN_KEY (printed at first start; also in SWITCHBOARD_ADMIN_KEY)")
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
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
	g.GET("/status", s.status)
	s.keyRoutes(g)
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
	return nil
}

func (in *hubInput) hub() store.Hub {
	return store.Hub{Name: in.Name, AllowAnonymous: in.AllowAnonymous, MaxMessageSize: in.MaxMessageSize, AllowedOrigins: in.AllowedOrigins}
}

func (s *Server) listHubs(c echo.Context) error {
	hubs, err := s.cfg.Store.Hubs(c.Request().Context())
	if err != nil {
		return err
	}
	if hubs == nil {
		hubs = []store.Hub{}
	}
	return c.JSON(http.StatusOK, hubs)
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
	return c.JSON(http.StatusCreated, h)
}

func (s *Server) getHub(c echo.Context) error {
	h, err := s.cfg.Store.Hub(c.Request().Context(), c.Param("hub"))
	if err != nil {
		return s.notFound(err, "hub %q not found", c.Param("hub"))
	}
	return c.JSON(http.StatusOK, h)
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
	return c.JSON(http.StatusOK, h)
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
	// SkipValidation saves the upstream without the registration check
	// (for local development against a receiver that does not answer it).
	SkipValidation bool `json:"skipValidation"`
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
	for _, sec := range in.Secrets {
		if _, err := upstream.Sign([]string{sec}, "check", time.Unix(0, 0), nil); err != nil || !strings.HasPrefix(sec, upstream.SecretPrefix) {
			return fail(http.StatusBadRequest, "secrets: each must be \"whsec_\" followed by base64; omit secrets to have one generated")
		}
	}
	return nil
}

func (s *Server) upstreamFrom(c echo.Context, in *upstreamInput) store.Upstream {
	secrets := in.Secrets
	if len(secrets) == 0 {
		secrets = []string{upstream.NewSecret()}
	}
	return store.Upstream{Hub: c.Param("hub"), Name: in.Name, URLTemplate: in.URLTemplate,
		Events: in.Events, Timeout: in.Timeout, Secrets: secrets}
}

func (s *Server) listUpstreams(c echo.Context) error {
	if _, err := s.cfg.Store.Hub(c.Request().Context(), c.Param("hub")); err != nil {
		return s.notFound(err, "hub %q not found", c.Param("hub"))
	}
	ups, err := s.cfg.Store.Upstreams(c.Request().Context(), c.Param("hub"))
	if err != nil {
		return err
	}
	if ups == nil {
		ups = []store.Upstream{}
	}
	return c.JSON(http.StatusOK, ups)
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
	u, err := s.cfg.Store.CreateUpstream(c.Request().Context(), s.upstreamFrom(c, &in))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fail(http.StatusNotFound, fmt.Sprintf("hub %q not found; create it first", c.Param("hub")))
	case errors.Is(err, store.ErrExists):
		return fail(http.StatusConflict, fmt.Sprintf("upstream %q already exists on hub %q", in.Name, c.Param("hub")))
	case err != nil:
		return err
	}
	s.upstreamsChanged()
	return c.JSON(http.StatusCreated, u)
}

func (s *Server) getUpstream(c echo.Context) error {
	u, err := s.cfg.Store.Upstream(c.Request().Context(), c.Param("hub"), c.Param("name"))
	if err != nil {
		return s.notFound(err, "upstream %q not found on hub %q", c.Param("name"), c.Param("hub"))
	}
	return c.JSON(http.StatusOK, u)
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
	if len(in.Secrets) == 0 {
		if old, err := s.cfg.Store.Upstream(c.Request().Context(), c.Param("hub"), in.Name); err == nil {
			next.Secrets = old.Secrets // keep the secrets the handler already knows
		}
	}
	u, err := s.cfg.Store.PutUpstream(c.Request().Context(), next)
	if err != nil {
		return s.notFound(err, "hub %q not found; create it first", c.Param("hub"))
	}
	s.upstreamsChanged()
	return c.JSON(http.StatusOK, u)
}

func (s *Server) deleteUpstream(c echo.Context) error {
	if err := s.cfg.Store.DeleteUpstream(c.Request().Context(), c.Param("hub"), c.Param("name")); err != nil {
		return s.notFound(err, "upstream %q not found on hub %q", c.Param("name"), c.Param("hub"))
	}
	s.upstreamsChanged()
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) status(c echo.Context) error {
	out := map[string]any{
		"node":          s.cfg.Gateway.NodeID(),
		"hubs":          s.cfg.Gateway.Status(),
		"slowConsumers": s.cfg.Gateway.SlowConsumers(),
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

// checkRegistration proves, unless the admin skipped it, that the receiver
// wants this gateway's events (CloudEvents abuse protection): OPTIONS to the
// URL a connect event would go to.
func (s *Server) checkRegistration(c echo.Context, in *upstreamInput) error {
	if in.SkipValidation || s.cfg.Deliveries == nil {
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

package httpapi

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"
)

// dashboardFiles is the admin dashboard: plain HTML, CSS and JavaScript,
// no build step and nothing loaded from elsewhere. The page holds no data
// of its own: it asks for the admin key and reads everything from the
// admin API with it (GET /admin/overview and the calls the CLI makes).
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardCSP lets the page load only its own files and talk only to this
// gateway. No inline script or style is allowed, so data the page shows
// (hub names, upstream errors) can never run as code, which matters
// because the page holds the admin key.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

func (s *Server) dashboardRoutes(e *echo.Echo) {
	files, err := fs.Sub(dashboardFiles, "dashboard")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	static := http.StripPrefix("/dashboard/", http.FileServerFS(files))
	e.GET("/dashboard", func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, "/dashboard/")
	})
	e.Match([]string{http.MethodGet, http.MethodHead}, "/dashboard/*", func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The files change with the binary only; revalidate so an upgrade
		// is seen on the next load.
		h.Set("Cache-Control", "no-cache")
		static.ServeHTTP(c.Response(), c.Request())
		return nil
	})
}

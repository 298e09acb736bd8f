package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// keyRoutes serves the access keys part of the admin API.
func (s *Server) keyRoutes(g *echo.Group) {
	g.GET("/keys", s.listKeys)
}

func (s *Server) listKeys(c echo.Context) error {
	keys, err := s.cfg.Store.AccessKeys()
	if err != nil {
		return err
	}
	type keyInfo struct {
		ID        string    `json:"id"`
		CreatedAt time.Time `json:"createdAt"`
	}
	out := make([]keyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyInfo{ID: k.ID, CreatedAt: k.CreatedAt})
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": out})
}

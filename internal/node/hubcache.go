package node

import (
	"sync"

	"github.com/switchboard-gw/switchboard/store"
)

// hubCache answers hub lookups from memory, refreshed by the config watch,
// so a clustered node keeps serving its hubs (negotiate, REST) while NATS KV
// is unreachable, and a lookup costs no network round trip. A hub it does
// not know yet (created on another node a moment ago) is read from the
// store. Everything else goes to the store.
type hubCache struct {
	store.Config

	mu   sync.RWMutex // guards hubs
	hubs map[string]store.Hub
}

var _ store.Config = (*hubCache)(nil)

func (c *hubCache) Hub(name string) (store.Hub, error) {
	c.mu.RLock()
	h, ok := c.hubs[name]
	c.mu.RUnlock()
	if ok {
		return h, nil
	}
	h, err := c.Config.Hub(name)
	if err == nil {
		c.mu.Lock()
		if c.hubs == nil {
			c.hubs = make(map[string]store.Hub)
		}
		c.hubs[name] = h
		c.mu.Unlock()
	}
	return h, err
}

// reload replaces the cache with the store's hubs; on error the cache is
// kept as it is.
func (c *hubCache) reload() error {
	hubs, err := c.Config.Hubs()
	if err != nil {
		return err
	}
	m := make(map[string]store.Hub, len(hubs))
	for _, h := range hubs {
		m[h.Name] = h
	}
	c.mu.Lock()
	c.hubs = m
	c.mu.Unlock()
	return nil
}

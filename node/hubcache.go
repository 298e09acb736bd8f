package node

import (
	"sync"

	"github.com/switchboard-gw/switchboard/store"
)

// hubCache answers hub lookups from memory, so a clustered node keeps
// serving its hubs (negotiate, REST) while NATS KV is unreachable, and a
// lookup, done twice per client connect, costs neither a network round trip
// nor a bbolt read and JSON decode. This node's own hub writes update it at
// once; other nodes' arrive through the config watch (reload). A hub it does
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
		c.remember(h)
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

func (c *hubCache) remember(h store.Hub) {
	c.mu.Lock()
	if c.hubs == nil {
		c.hubs = make(map[string]store.Hub)
	}
	c.hubs[h.Name] = h
	c.mu.Unlock()
}

func (c *hubCache) CreateHub(h store.Hub) (store.Hub, error) {
	h, err := c.Config.CreateHub(h)
	if err == nil {
		c.remember(h)
	}
	return h, err
}

func (c *hubCache) PutHub(h store.Hub) (store.Hub, error) {
	h, err := c.Config.PutHub(h)
	if err == nil {
		c.remember(h)
	}
	return h, err
}

func (c *hubCache) DeleteHub(name string) error {
	err := c.Config.DeleteHub(name)
	// Forget it whatever the store said: a failed delete leaves the hub to
	// be read again from the store, never served stale.
	c.mu.Lock()
	delete(c.hubs, name)
	c.mu.Unlock()
	return err
}

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// results is what the shoppers saw.
type results struct {
	elapsed    time.Duration
	reserved   map[string]int // committed reservations, qty per sku
	restocked  map[string]int // committed restocks, qty per sku
	writes     map[string]int // committed writes per sku
	orders     int            // committed reservations
	restocks   int            // committed restocks
	outOfStock int            // declined reservations
	conflicts  int64          // versioned saves retried
	err        error          // the first unexpected error, or the ctx's
}

// shop runs the shoppers until each placed its orders or ctx ends.
func shop(ctx context.Context, pool *pgxpool.Pool, cfg config) *results {
	repo := &Repo{pool: pool, naive: cfg.Naive}
	res := &results{reserved: map[string]int{}, restocked: map[string]int{}, writes: map[string]int{}}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	start := time.Now()
	for range cfg.Shoppers {
		wg.Go(func() {
			for range cfg.Orders {
				if ctx.Err() != nil {
					return
				}
				s := sku(1 + rand.IntN(cfg.Items))
				restock := rand.IntN(10) == 0
				qty := 1 + rand.IntN(5)
				var err error
				if restock {
					qty *= 5
					_, err = repo.Restock(ctx, s, qty)
				} else {
					_, err = repo.Reserve(ctx, s, qty)
				}
				mu.Lock()
				switch {
				case err == nil && restock:
					res.restocks++
					res.restocked[s] += qty
					res.writes[s]++
				case err == nil:
					res.orders++
					res.reserved[s] += qty
					res.writes[s]++
				case errors.Is(err, errOutOfStock):
					res.outOfStock++
				case res.err == nil:
					res.err = fmt.Errorf("%s: %w", s, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.conflicts = repo.conflicts.Load()
	return res
}

package txotel

import (
	"context"

	"go.opentelemetry.io/otel/metric"

	"github.com/txkit/txkit/optimistic"
)

// OnConflict counts a conflict in txkit.optimistic.conflicts, by table
// (never by key). Set it as optimistic.ModifyOptions.OnConflict, or call
// it from your own.
func (o *Observer) OnConflict(c *optimistic.ConflictError) {
	if c == nil {
		return
	}
	o.m.optConflict.Add(context.Background(), 1, metric.WithAttributes(KeyOptimisticTable.String(c.Table.Sanitize())))
}

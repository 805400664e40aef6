package txotel_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txotel"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// telemetry is an Observer wired to in-memory exporters.
type telemetry struct {
	obs    *txotel.Observer
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t *testing.T, opts ...func(*txotel.Options)) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		_ = tel.tp.Shutdown(ctx)
		_ = tel.mp.Shutdown(ctx)
	})
	o := txotel.Options{TracerProvider: tel.tp, MeterProvider: tel.mp}
	for _, f := range opts {
		f(&o)
	}
	obs, err := txotel.New(o)
	require.NoError(t, err)
	tel.obs = obs
	return tel
}

// collect reads every metric now.
func (tel *telemetry) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sums gives a counter's, gauge's or up-down counter's values by the
// attribute set's encoding, and a histogram's counts and sums.
func sums(m metricdata.Metrics) map[string]float64 {
	out := map[string]float64{}
	enc := attribute.DefaultEncoder()
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out[p.Attributes.Encoded(enc)] += float64(p.Value)
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			out[p.Attributes.Encoded(enc)] += p.Value
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out[p.Attributes.Encoded(enc)] = float64(p.Value)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out[p.Attributes.Encoded(enc)+"#count"] += float64(p.Count)
			out[p.Attributes.Encoded(enc)+"#sum"] += p.Sum
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			out[p.Attributes.Encoded(enc)+"#count"] += float64(p.Count)
			out[p.Attributes.Encoded(enc)+"#sum"] += float64(p.Sum)
		}
	}
	return out
}

// attrs encodes kvs as the SDK does, for looking up sums.
func attrs(kvs ...attribute.KeyValue) string {
	s := attribute.NewSet(slices.Clone(kvs)...)
	return s.Encoded(attribute.DefaultEncoder())
}

// spanAttr is the value of key on span, or "" if absent.
func spanAttr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// ended is the names of the ended spans, in the order they ended.
func ended(spans *tracetest.SpanRecorder) []string {
	var out []string
	for _, s := range spans.Ended() {
		out = append(out, s.Name())
	}
	return out
}

// semconvPool is the attributes of a pool named name.
func semconvPool(name string) []attribute.KeyValue {
	return []attribute.KeyValue{semconv.DBSystemNamePostgreSQL, semconv.DBClientConnectionPoolName(name)}
}

// tree draws the ended spans as a tree, one line per span, indented two
// spaces per level under its parent, children in the order they started;
// a span whose parent is not among them is a root.
func tree(spans []sdktrace.ReadOnlySpan) string {
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext().SpanID()] = true
	}
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if p := s.Parent().SpanID(); s.Parent().IsValid() && ids[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) }
	var b strings.Builder
	var draw func(list []sdktrace.ReadOnlySpan, depth int)
	draw = func(list []sdktrace.ReadOnlySpan, depth int) {
		slices.SortStableFunc(list, byStart)
		for _, s := range list {
			b.WriteString(strings.Repeat("  ", depth) + s.Name() + "\n")
			draw(children[s.SpanContext().SpanID()], depth+1)
		}
	}
	draw(roots, 0)
	return b.String()
}

// named is the ended spans called name, in the order they ended.
func named(spans *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// slicesIndex is the index of key among s's attributes; it fails if absent.
func slicesIndex(s sdktrace.ReadOnlySpan, key attribute.Key) int {
	return slices.IndexFunc(s.Attributes(), func(kv attribute.KeyValue) bool { return kv.Key == key })
}

package txn_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/txn"
)

// WithTx calls pg_current_xact_id_if_assigned by a fixed OID; the server
// must agree on it.
func TestFastPathOIDMatchesTheCatalog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var oid uint32
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT 'pg_catalog.pg_current_xact_id_if_assigned()'::regprocedure::oid").Scan(&oid))
	require.Equal(t, uint32(txn.XactIDIfAssignedOID), oid)
}

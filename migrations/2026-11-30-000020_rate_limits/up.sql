-- The request rate limit shared by every server process (docs/access.md, "Rate limiting"), when
-- `server.rate_limit_shared` is on: one row per caller holding the GCRA's theoretical arrival
-- time. UNLOGGED: nothing here is worth a write-ahead log (a crash forgets the limits, which is
-- harmless); rows of callers gone quiet are deleted by the servers.
CREATE UNLOGGED TABLE rate_limits (
    subject             TEXT PRIMARY KEY,
    theoretical_arrival TIMESTAMPTZ NOT NULL
);

-- Requests for summaries: a partnership asks another that shares its releases with it for a
-- summary of closed quarters (docs/privacy.md, "Requests for summaries"). The owner accepts
-- (preparing releases through the gate and the two-person approval), declines with a reason, or
-- asks a question the requester answers. Requests are never deleted; what was asked never changes.
CREATE TABLE summary_requests (
    id               UUID PRIMARY KEY,
    requester_code   TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    owner_code       TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    periods          TEXT[] NOT NULL CHECK (cardinality(periods) BETWEEN 1 AND 4),
    breakdowns       TEXT[] NOT NULL,
    purpose          TEXT NOT NULL CHECK (length(purpose) BETWEEN 1 AND 2000),
    needed_by        DATE NOT NULL,
    requested_by     TEXT NOT NULL,
    requested_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    state            TEXT NOT NULL CHECK (state IN ('open', 'question', 'accepted', 'declined')),
    decided_by       TEXT,
    decided_at       TIMESTAMPTZ,
    decline_reason   TEXT,
    messages         JSONB NOT NULL DEFAULT '[]',
    CHECK (requester_code <> owner_code),
    CHECK ((state = 'declined') = (decline_reason IS NOT NULL))
);
CREATE INDEX summary_requests_owner_idx ON summary_requests (owner_code, requested_at DESC);
CREATE INDEX summary_requests_requester_idx ON summary_requests (requester_code, requested_at DESC);

-- What was asked never changes; a decision is final once accepted or declined.
CREATE FUNCTION summary_requests_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'requests for summaries are never deleted';
    END IF;
    IF (NEW.id, NEW.requester_code, NEW.owner_code, NEW.periods, NEW.breakdowns, NEW.purpose,
        NEW.needed_by, NEW.requested_by, NEW.requested_at)
       IS DISTINCT FROM
       (OLD.id, OLD.requester_code, OLD.owner_code, OLD.periods, OLD.breakdowns, OLD.purpose,
        OLD.needed_by, OLD.requested_by, OLD.requested_at) THEN
        RAISE EXCEPTION 'what a request asks never changes';
    END IF;
    IF OLD.state IN ('accepted', 'declined') AND NEW.state IS DISTINCT FROM OLD.state THEN
        RAISE EXCEPTION 'a request is accepted or declined once';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER summary_requests_guard BEFORE UPDATE OR DELETE ON summary_requests
    FOR EACH ROW EXECUTE FUNCTION summary_requests_guard();

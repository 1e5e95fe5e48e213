-- Regional groups and regional requests (docs/privacy.md, "Requests for summaries"). A regional
-- group is a named set of partnerships that work together (pan-Lancashire, say), imported as
-- reference data. A regional request asks every member of a group other than the requester for
-- the same summary: one request per member, each answered through that member's own queue, and
-- the answers assembled into one regional summary of published figures only.
CREATE TABLE regional_groups (
    name              TEXT NOT NULL CHECK (length(trim(name)) BETWEEN 1 AND 100),
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE CASCADE,
    PRIMARY KEY (name, partnership_code)
);
CREATE INDEX regional_groups_partnership_idx ON regional_groups (partnership_code);

CREATE TABLE regional_requests (
    id              UUID PRIMARY KEY,
    requester_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    group_name      TEXT NOT NULL,
    -- The group's members when asked, sorted (the group may change later; the request does not).
    members         TEXT[] NOT NULL CHECK (cardinality(members) BETWEEN 2 AND 200),
    requested_by    TEXT NOT NULL,
    requested_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX regional_requests_requester_idx ON regional_requests (requester_code, requested_at DESC);

CREATE FUNCTION regional_requests_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'regional requests are never changed or deleted';
END;
$$;
CREATE TRIGGER regional_requests_guard BEFORE UPDATE OR DELETE ON regional_requests
    FOR EACH ROW EXECUTE FUNCTION regional_requests_guard();

-- Each member's request names the regional request it is part of (none for a request to one
-- partnership); like the rest of what was asked, it never changes.
ALTER TABLE summary_requests
    ADD COLUMN regional_request_id UUID REFERENCES regional_requests (id) ON DELETE RESTRICT;
CREATE INDEX summary_requests_regional_idx ON summary_requests (regional_request_id)
    WHERE regional_request_id IS NOT NULL;

CREATE OR REPLACE FUNCTION summary_requests_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'requests for summaries are never deleted';
    END IF;
    IF (NEW.id, NEW.requester_code, NEW.owner_code, NEW.periods, NEW.breakdowns, NEW.purpose,
        NEW.needed_by, NEW.requested_by, NEW.requested_at, NEW.regional_request_id)
       IS DISTINCT FROM
       (OLD.id, OLD.requester_code, OLD.owner_code, OLD.periods, OLD.breakdowns, OLD.purpose,
        OLD.needed_by, OLD.requested_by, OLD.requested_at, OLD.regional_request_id) THEN
        RAISE EXCEPTION 'what a request asks never changes';
    END IF;
    IF OLD.state IN ('accepted', 'declined') AND NEW.state IS DISTINCT FROM OLD.state THEN
        RAISE EXCEPTION 'a request is accepted or declined once';
    END IF;
    RETURN NEW;
END;
$$;

-- An auditor's filter by partnership matches the partnership's own staff's entries too
-- (`caller_partnership`), newest first.
CREATE INDEX audit_log_caller_partnership_idx ON audit_log (caller_partnership, id)
    WHERE caller_partnership IS NOT NULL;

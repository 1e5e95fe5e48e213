DROP INDEX audit_log_caller_partnership_idx;
CREATE OR REPLACE FUNCTION summary_requests_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
DROP INDEX summary_requests_regional_idx;
ALTER TABLE summary_requests DROP COLUMN regional_request_id;
DROP TABLE regional_requests;
DROP FUNCTION regional_requests_guard();
DROP TABLE regional_groups;

-- The dispatcher looks for unfinished deliveries whose queue hint is missing or
-- stale. Keyed by when a hint was last sent, the ones sent recently (nearly all of a
-- busy backlog) are outside the range it reads instead of being read and skipped on
-- every pass. It also serves the queue statistics, which scan every open delivery.
CREATE INDEX deliveries_undispatched ON deliveries (COALESCE(dispatched_at, 0), due_at)
    WHERE status IN ('queued', 'sending') AND NOT dead;
DROP INDEX deliveries_open;

-- The dispatcher looks for notifications whose fan-out is due and whose queue hint is
-- missing or stale. Keyed by when a hint was last sent, a backlog of notifications
-- hinted a moment ago is outside the range it reads, instead of being read and
-- skipped on every pass.
CREATE INDEX notifications_undispatched ON notifications (COALESCE(dispatched_at, 0), COALESCE(send_at, 0))
    WHERE fanned_out = 0;
DROP INDEX notifications_pending_fanout;

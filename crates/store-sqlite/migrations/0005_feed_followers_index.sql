-- Fan-out pages through an author's followers within one app: an index that holds
-- the app too answers the page without a lookup per follower.
CREATE INDEX feed_follows_followee_app ON feed_follows (followee_id, app_id, follower_id);
DROP INDEX feed_follows_followee;

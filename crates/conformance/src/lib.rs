//! One conformance suite for every implementation of the platform's storage traits.
//!
//! The tests are generic async functions over the trait object; each backend crate
//! instantiates them with [`account_store_suite!`], handing it a factory that returns
//! a fresh, empty store (or `None` when the backend is not configured on this
//! machine, e.g. no `TIDINGS_TEST_DATABASE_URL`).

pub mod accounts;
pub mod bus;
pub mod chat;
pub mod feed;
pub mod notify;
pub mod presence;
pub mod queue;
pub mod ratelimit;

use std::any::Any;
use std::sync::Arc;

use tidings_notify::queue::WorkQueue;
use tidings_platform::store::AccountStore;

/// A fresh store plus whatever must live as long as it (a temporary directory, a
/// schema to drop).
pub struct TestStore {
    pub store: Arc<dyn AccountStore>,
    pub guard: Box<dyn Any + Send + Sync>,
}

/// Expands to one `#[tokio::test]` per conformance test, each on a fresh store from
/// `$factory` (an `async fn() -> Option<TestStore>`).
#[macro_export]
macro_rules! account_store_suite {
    ($factory:path) => {
        $crate::account_store_suite!(@each $factory;
            ping_answers,
            apps_round_trip,
            duplicate_app_key_conflicts,
            users_round_trip_and_stay_in_their_app,
            duplicate_username_and_external_id_conflict,
            update_user_sets_and_clears_fields,
            search_users_by_prefix_with_cursor,
            users_by_ids_returns_known_users_of_the_app,
            devices_upsert_move_disable_and_delete,
            preferences_round_trip,
            concurrent_writes_all_land_and_one_failure_stays_alone
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(test_store) = $factory().await else {
                    eprintln!("skipped {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::accounts::$name(test_store.store.clone()).await;
                drop(test_store);
            }
        )*
    };
}

/// A fresh, empty queue built with [`queue::SUITE_CONFIG`], plus what must outlive it.
pub struct TestQueue {
    pub queue: Arc<dyn WorkQueue>,
    pub guard: Box<dyn Any + Send + Sync>,
}

/// Expands to one `#[tokio::test]` per queue conformance test, each on a fresh queue
/// from `$factory` (an `async fn() -> Option<TestQueue>`).
#[macro_export]
macro_rules! queue_suite {
    ($factory:path) => {
        $crate::queue_suite!(@each $factory;
            enqueued_items_are_leased_once_in_order,
            queues_are_independent,
            unacked_lease_expires_and_is_handed_out_again,
            nack_returns_the_message_after_its_delay,
            delayed_enqueue_waits,
            too_many_deliveries_park_the_message,
            stats_count_pending_and_in_flight,
            concurrent_consumers_share_without_duplicates
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(test_queue) = $factory().await else {
                    eprintln!("skipped {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::queue::$name(test_queue.queue.clone()).await;
                drop(test_queue);
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per rate limiter conformance test; `$factory` is an
/// `async fn() -> Option<Arc<dyn RateLimiter>>`.
#[macro_export]
macro_rules! rate_limiter_suite {
    ($factory:path) => {
        $crate::rate_limiter_suite!(@each $factory;
            admits_up_to_the_limit_per_window,
            keys_are_counted_apart,
            concurrent_admissions_never_exceed_the_limit
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(limiter) = $factory().await else {
                    eprintln!("skipped {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::ratelimit::$name(limiter).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per notification store conformance test; `$factory`
/// is an `async fn() -> Option<(Arc<dyn NotifyStore>, Box<dyn Any + Send + Sync>)>`.
#[macro_export]
macro_rules! notify_store_suite {
    ($factory:path) => {
        $crate::notify_store_suite!(@each $factory;
            event_ids_dedup_per_app,
            fan_out_is_idempotent_and_keeps_its_cursor,
            fan_out_writes_planned_sending_rows_claimed,
            due_work_respects_send_at_and_redispatch,
            claims_are_exclusive_and_leases_expire,
            provider_ids_find_sms_and_email,
            inbox_pages_counts_and_reads,
            templates_topics_and_provider_settings,
            tracking_stats_queues_and_dead_letters
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, guard)) = $factory().await else {
                    eprintln!("skipped {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::notify::$name(store).await;
                drop(guard);
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per chat store conformance test; `$factory` is an
/// `async fn() -> Option<(Arc<dyn ChatStore>, Box<dyn Any + Send + Sync>)>`.
#[macro_export]
macro_rules! chat_store_suite {
    ($factory:path) => {
        $crate::chat_store_suite!(@each $factory;
            channels_and_members_round_trip,
            channel_lists_page_by_activity,
            direct_channels_are_one_per_pair,
            appends_number_without_gaps_and_dedup,
            concurrent_appends_leave_no_gaps,
            history_pages_by_seq,
            edits_deletes_and_reactions,
            read_positions_only_move_forward,
            sync_reads_the_users_channels_in_log_order
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, guard)) = $factory().await else {
                    eprintln!("skipped {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::chat::$name(store).await;
                drop(guard);
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per presence and registry conformance test;
/// `$presence` is an `async fn() -> Option<Arc<dyn PresenceStore>>` and `$registry`
/// an `async fn() -> Option<Arc<dyn GatewayRegistry>>`.
#[macro_export]
macro_rules! presence_suite {
    ($presence:path, $registry:path) => {
        $crate::presence_suite!(@each $presence;
            online_while_any_socket_lives,
            sockets_expire_unless_refreshed
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_registry_lists_live_gateways() {
            let Some(registry) = $registry().await else {
                eprintln!("skipped: backend not configured");
                return;
            };
            $crate::presence::the_registry_lists_live_gateways(registry).await;
        }
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(presence) = $factory().await else {
                    eprintln!("skipped {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::presence::$name(presence).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per chat bus conformance test; `$factory` is an
/// `async fn() -> Option<Arc<dyn ChatBus>>` giving a bus of its own.
#[macro_export]
macro_rules! bus_suite {
    ($factory:path) => {
        $crate::bus_suite!(@each $factory;
            every_subscriber_gets_events_in_publish_order,
            every_kind_of_event_round_trips
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(bus) = $factory().await else {
                    eprintln!("skipped {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::bus::$name(bus).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per feed store conformance test; `$factory` is an
/// `async fn() -> Option<(Arc<dyn FeedStore>, Box<dyn Any + Send + Sync>)>`.
#[macro_export]
macro_rules! feed_store_suite {
    ($factory:path) => {
        $crate::feed_store_suite!(@each $factory;
            posts_round_trip_with_idempotency,
            replies_count_on_their_parent,
            deletes_hide_posts_and_fan_out_is_tracked,
            author_posts_page_newest_first,
            the_follow_graph_counts_and_pages,
            mutes_and_likes,
            concurrent_likes_keep_an_exact_count
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, guard)) = $factory().await else {
                    eprintln!("skipped {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::feed::$name(store).await;
                drop(guard);
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per feed cache conformance test; `$factory` is an
/// `async fn() -> Option<Arc<dyn FeedCache>>`.
#[macro_export]
macro_rules! feed_cache_suite {
    ($factory:path) => {
        $crate::feed_cache_suite!(@each $factory;
            feeds_are_capped_newest_first,
            feeds_drop_posts_authors_and_whole_feeds,
            many_feeds_take_pushes_in_one_call,
            feeds_drop_and_lose_posts_in_batches
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(cache) = $factory().await else {
                    eprintln!("skipped {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::feed::$name(cache).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per object cache conformance test; `$factory` is
/// an `async fn() -> Option<Arc<dyn ObjectCache>>`.
#[macro_export]
macro_rules! object_cache_suite {
    ($factory:path) => {
        $crate::object_cache_suite!(@each $factory;
            objects_round_trip_and_delete,
            objects_expire
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(cache) = $factory().await else {
                    eprintln!("skipped {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::feed::$name(cache).await;
            }
        )*
    };
}

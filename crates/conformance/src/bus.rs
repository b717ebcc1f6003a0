//! Conformance tests of [`ChatBus`]: what the hubs rely on. Each test publishes on a
//! bus of its own.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tidings_chat::bus::{BusEvent, BusItem, ChatBus, ConnId};
use tidings_chat::model::MessageRecord;
use tidings_platform::Id;

type Bus = Arc<dyn ChatBus>;

async fn next_event(stream: &mut futures::stream::BoxStream<'static, BusItem>) -> Arc<BusEvent> {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream stays open");
        if let BusItem::Event(e) = item {
            return e;
        }
    }
}

pub async fn every_subscriber_gets_events_in_publish_order(bus: Bus) {
    let mut first = bus.subscribe().await.unwrap();
    let mut second = bus.subscribe().await.unwrap();
    for i in 0..200 {
        bus.publish(Arc::new(BusEvent::Users {
            users: vec![Id(i)],
            skip: None,
            frame: format!("frame {i}"),
        }))
        .await
        .unwrap();
    }
    for stream in [&mut first, &mut second] {
        for i in 0..200 {
            match &*next_event(stream).await {
                BusEvent::Users { users, frame, .. } => {
                    assert_eq!(users, &vec![Id(i)]);
                    assert_eq!(frame, &format!("frame {i}"));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

pub async fn every_kind_of_event_round_trips(bus: Bus) {
    let mut stream = bus.subscribe().await.unwrap();
    let events = vec![
        BusEvent::Message {
            members: vec![Id(1), Id(2)],
            origin: Some(ConnId { node: 3, local: 9 }),
            message: MessageRecord {
                id: Id(77),
                app_id: Id(5),
                channel_id: Id(6),
                seq: 4,
                pos: 1_234,
                sender_id: Id(1),
                client_msg_id: "c-1".into(),
                text: "héllo \"quoted\" 👋".into(),
                created_at_ms: 1_800_000_000_000,
                edited_at_ms: Some(1_800_000_000_500),
                deleted: false,
            },
        },
        BusEvent::Users {
            users: vec![Id(2)],
            skip: Some(ConnId { node: 1, local: 2 }),
            frame: r#"{"type":"typing"}"#.into(),
        },
        BusEvent::Presence {
            user: Id(2),
            frame: r#"{"type":"presence"}"#.into(),
        },
        BusEvent::Members { channel: Id(6) },
    ];
    for e in &events {
        bus.publish(Arc::new(e.clone())).await.unwrap();
    }
    for e in &events {
        assert_eq!(&*next_event(&mut stream).await, e);
    }
}

//! Conformance tests of [`ChatStore`]: ordering, dedup and membership rules the
//! chat service relies on, checked against every implementation.

use std::collections::HashMap;
use std::sync::Arc;

use tidings_chat::model::{
    Appended, ChannelKind, ChannelRecord, MemberRecord, MemberRole, MessageRecord, NewMessage,
};
use tidings_chat::store::{ChannelCursor, ChatStore};
use tidings_platform::{Id, StoreError};

type Store = Arc<dyn ChatStore>;

static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(5_000_000);

fn id() -> Id {
    Id(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

const T0: i64 = 1_800_000_000_000;

fn group(app: Id, creator: Id, at: i64) -> ChannelRecord {
    ChannelRecord {
        id: id(),
        app_id: app,
        kind: ChannelKind::Group,
        name: Some("team".into()),
        created_by: creator,
        direct_key: None,
        created_at_ms: at,
        last_seq: 0,
        last_message_id: None,
        activity_ms: at,
        member_count: 0,
    }
}

fn member(channel: &ChannelRecord, user: Id, role: MemberRole) -> MemberRecord {
    MemberRecord {
        channel_id: channel.id,
        user_id: user,
        role,
        joined_at_ms: channel.created_at_ms,
        read_seq: 0,
    }
}

async fn make_group(store: &Store, app: Id, users: &[Id], at: i64) -> ChannelRecord {
    let ch = group(app, users[0], at);
    let members: Vec<MemberRecord> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            member(
                &ch,
                *u,
                if i == 0 {
                    MemberRole::Admin
                } else {
                    MemberRole::Member
                },
            )
        })
        .collect();
    store.create_channel(&ch, &members).await.expect("create")
}

fn new_message(ch: &ChannelRecord, sender: Id, client: &str, at: i64) -> NewMessage {
    NewMessage {
        id: id(),
        app_id: ch.app_id,
        channel_id: ch.id,
        sender_id: sender,
        client_msg_id: client.into(),
        text: format!("hello {client}"),
        created_at_ms: at,
    }
}

async fn append(store: &Store, m: &NewMessage) -> MessageRecord {
    match store.append_message(m).await.expect("append") {
        Appended::New(m) => m,
        other => panic!("expected a new message, got {other:?}"),
    }
}

pub async fn channels_and_members_round_trip(store: Store) {
    let (app, other_app) = (id(), id());
    let (alice, bob, carol) = (id(), id(), id());
    let ch = make_group(&store, app, &[alice, bob], T0).await;
    assert_eq!(ch.member_count, 2);
    assert_eq!(ch.kind, ChannelKind::Group);
    assert_eq!(ch.name.as_deref(), Some("team"));
    assert_eq!(store.channel(app, ch.id).await.unwrap(), Some(ch.clone()));
    assert_eq!(
        store.channel(other_app, ch.id).await.unwrap(),
        None,
        "apps are isolated"
    );

    let mut ids = vec![alice, bob];
    ids.sort();
    assert_eq!(store.member_ids(ch.id).await.unwrap(), ids);
    let a = store
        .member(ch.id, alice)
        .await
        .unwrap()
        .expect("alice is a member");
    assert_eq!(a.role, MemberRole::Admin);
    assert_eq!(store.member(ch.id, carol).await.unwrap(), None);

    let carol_member = member(&ch, carol, MemberRole::Member);
    assert!(!store
        .add_member(&carol_member, 2)
        .await
        .is_ok_and(|added| added));
    assert!(
        matches!(
            store.add_member(&carol_member, 2).await,
            Err(StoreError::Conflict(_))
        ),
        "a full channel refuses"
    );
    assert!(store.add_member(&carol_member, 3).await.unwrap());
    assert!(
        !store.add_member(&carol_member, 3).await.unwrap(),
        "already a member"
    );
    assert_eq!(
        store
            .channel(app, ch.id)
            .await
            .unwrap()
            .unwrap()
            .member_count,
        3
    );
    assert_eq!(store.members(ch.id).await.unwrap().len(), 3);

    assert!(store.remove_member(ch.id, bob).await.unwrap());
    assert!(!store.remove_member(ch.id, bob).await.unwrap());
    assert_eq!(
        store
            .channel(app, ch.id)
            .await
            .unwrap()
            .unwrap()
            .member_count,
        2
    );
    assert_eq!(store.member(ch.id, bob).await.unwrap(), None);
}

pub async fn channel_lists_page_by_activity(store: Store) {
    let app = id();
    let (alice, bob) = (id(), id());
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(make_group(&store, app, &[alice, bob], T0 + i).await);
    }
    // A message moves a channel to the top.
    append(&store, &new_message(&made[1], bob, "up", T0 + 100)).await;
    let first = store.channels_of(app, alice, None, 3).await.unwrap();
    let order: Vec<Id> = first.iter().map(|(c, _)| c.id).collect();
    assert_eq!(order, vec![made[1].id, made[4].id, made[3].id]);
    assert!(first.iter().all(|(_, m)| m.user_id == alice));
    let last = &first[2].0;
    let rest = store
        .channels_of(
            app,
            alice,
            Some(ChannelCursor {
                activity_ms: last.activity_ms,
                id: last.id,
            }),
            10,
        )
        .await
        .unwrap();
    let order: Vec<Id> = rest.iter().map(|(c, _)| c.id).collect();
    assert_eq!(order, vec![made[2].id, made[0].id]);
    assert!(store
        .channels_of(id(), alice, None, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn direct_channels_are_one_per_pair(store: Store) {
    let (app, other_app) = (id(), id());
    let (alice, bob) = (id(), id());
    let direct = |app: Id| {
        let mut ch = group(app, alice, T0);
        ch.kind = ChannelKind::Direct;
        ch.name = None;
        ch.direct_key = Some(format!("{}:{}", alice.min(bob), alice.max(bob)));
        ch
    };
    let first = direct(app);
    let members = [
        member(&first, alice, MemberRole::Admin),
        member(&first, bob, MemberRole::Admin),
    ];
    let made = store.create_channel(&first, &members).await.unwrap();
    assert_eq!(made.id, first.id);
    let again = direct(app);
    let members2 = [
        member(&again, alice, MemberRole::Admin),
        member(&again, bob, MemberRole::Admin),
    ];
    let second = store.create_channel(&again, &members2).await.unwrap();
    assert_eq!(second.id, first.id, "the pair's channel is returned");
    assert_eq!(store.member_ids(again.id).await.unwrap(), Vec::<Id>::new());
    let elsewhere = direct(other_app);
    let members3 = [
        member(&elsewhere, alice, MemberRole::Admin),
        member(&elsewhere, bob, MemberRole::Admin),
    ];
    let third = store.create_channel(&elsewhere, &members3).await.unwrap();
    assert_ne!(third.id, first.id, "another app has its own");
}

pub async fn appends_number_without_gaps_and_dedup(store: Store) {
    let app = id();
    let (alice, bob, eve) = (id(), id(), id());
    let ch = make_group(&store, app, &[alice, bob], T0).await;
    let head = store.log_head().await.unwrap();
    let m1 = append(&store, &new_message(&ch, alice, "a1", T0 + 1)).await;
    let m2 = append(&store, &new_message(&ch, bob, "b1", T0 + 2)).await;
    assert_eq!((m1.seq, m2.seq), (1, 2));
    assert_eq!((m1.pos, m2.pos), (head + 1, head + 2));
    assert_eq!(m1.text, "hello a1");

    // The same client id from the same sender is the first message again.
    let mut retry = new_message(&ch, alice, "a1", T0 + 3);
    retry.text = "changed".into();
    match store.append_message(&retry).await.unwrap() {
        Appended::Duplicate(first) => assert_eq!(first, m1),
        other => panic!("expected the first message, got {other:?}"),
    }
    // Another sender may use the same client id.
    let m3 = append(&store, &new_message(&ch, bob, "a1", T0 + 4)).await;
    assert_eq!(
        (m3.seq, m3.pos),
        (3, head + 3),
        "the duplicate used no number"
    );

    assert_eq!(
        store
            .append_message(&new_message(&ch, eve, "e1", T0 + 5))
            .await
            .unwrap(),
        Appended::NotMember
    );
    let mut wrong_app = new_message(&ch, alice, "x", T0 + 5);
    wrong_app.app_id = id();
    assert_eq!(
        store.append_message(&wrong_app).await.unwrap(),
        Appended::NotMember
    );
    assert_eq!(store.log_head().await.unwrap(), head + 3);

    let stored = store.channel(app, ch.id).await.unwrap().unwrap();
    assert_eq!(stored.last_seq, 3);
    assert_eq!(stored.last_message_id, Some(m3.id));
    assert!(stored.activity_ms >= T0 + 4);
    // Sending reads up to one's own message.
    assert_eq!(store.member(ch.id, bob).await.unwrap().unwrap().read_seq, 3);
    assert_eq!(
        store.member(ch.id, alice).await.unwrap().unwrap().read_seq,
        1
    );
    assert_eq!(store.message(ch.id, m2.id).await.unwrap(), Some(m2.clone()));
    assert_eq!(store.message(id(), m2.id).await.unwrap(), None);
    let by_ids = store.messages_by_ids(&[m1.id, m3.id, id()]).await.unwrap();
    assert_eq!(by_ids.len(), 2);
    let by_pos = store.messages_by_pos(head + 1, head + 3).await.unwrap();
    assert_eq!(
        by_pos.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![m1.id, m2.id, m3.id]
    );
}

pub async fn concurrent_appends_leave_no_gaps(store: Store) {
    let app = id();
    let users: Vec<Id> = (0..4).map(|_| id()).collect();
    let mut channels = Vec::new();
    for i in 0..3 {
        channels.push(make_group(&store, app, &users, T0 + i).await);
    }
    let head = store.log_head().await.unwrap();
    let per_task = 25;
    let mut tasks = Vec::new();
    for (t, user) in users.iter().enumerate() {
        for ch in &channels {
            let (store, ch, user) = (store.clone(), ch.clone(), *user);
            tasks.push(tokio::spawn(async move {
                for i in 0..per_task {
                    let m = new_message(&ch, user, &format!("{t}-{i}"), T0 + 10);
                    append(&store, &m).await;
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("task");
    }
    let total = (users.len() * channels.len() * per_task) as i64;
    assert_eq!(store.log_head().await.unwrap(), head + total);
    let all = store.messages_by_pos(head + 1, head + total).await.unwrap();
    assert_eq!(all.len() as i64, total);
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m.pos, head + 1 + i as i64, "positions have no gaps");
    }
    let mut seqs: HashMap<Id, Vec<i64>> = HashMap::new();
    for m in &all {
        seqs.entry(m.channel_id).or_default().push(m.seq);
    }
    for (_, list) in seqs {
        let expected: Vec<i64> = (1..=list.len() as i64).collect();
        assert_eq!(
            list, expected,
            "within a channel, pos order is seq order without gaps"
        );
    }
}

pub async fn history_pages_by_seq(store: Store) {
    let app = id();
    let (alice, bob) = (id(), id());
    let ch = make_group(&store, app, &[alice, bob], T0).await;
    for i in 0..10 {
        append(&store, &new_message(&ch, alice, &format!("m{i}"), T0 + i)).await;
    }
    let seqs = |ms: Vec<MessageRecord>| ms.iter().map(|m| m.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.history(ch.id, None, None, 3).await.unwrap()),
        vec![8, 9, 10]
    );
    assert_eq!(
        seqs(store.history(ch.id, Some(8), None, 3).await.unwrap()),
        vec![5, 6, 7]
    );
    assert_eq!(
        seqs(store.history(ch.id, Some(3), None, 5).await.unwrap()),
        vec![1, 2]
    );
    assert_eq!(
        seqs(store.history(ch.id, None, Some(2), 3).await.unwrap()),
        vec![3, 4, 5]
    );
    assert_eq!(
        seqs(store.history(ch.id, None, Some(10), 3).await.unwrap()),
        Vec::<i64>::new()
    );
    assert!(store.history(id(), None, None, 5).await.unwrap().is_empty());
}

pub async fn edits_deletes_and_reactions(store: Store) {
    let app = id();
    let (alice, bob) = (id(), id());
    let ch = make_group(&store, app, &[alice, bob], T0).await;
    let m = append(&store, &new_message(&ch, alice, "x", T0)).await;
    let edited = store
        .edit_message(ch.id, m.id, "new text", T0 + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.text, "new text");
    assert_eq!(edited.edited_at_ms, Some(T0 + 5));
    assert_eq!((edited.seq, edited.pos), (m.seq, m.pos));
    assert_eq!(
        store.edit_message(id(), m.id, "no", T0).await.unwrap(),
        None
    );

    assert!(store
        .set_reaction(m.id, bob, "👍", true, T0 + 6)
        .await
        .unwrap());
    assert!(
        !store
            .set_reaction(m.id, bob, "👍", true, T0 + 6)
            .await
            .unwrap(),
        "once per user"
    );
    assert!(store
        .set_reaction(m.id, alice, "👍", true, T0 + 7)
        .await
        .unwrap());
    assert!(store
        .set_reaction(m.id, alice, "🎉", true, T0 + 8)
        .await
        .unwrap());
    let counts = store.reactions(&[m.id], 1).await.unwrap();
    let thumbs = counts.iter().find(|c| c.emoji == "👍").expect("thumbs");
    assert_eq!(thumbs.count, 2);
    assert_eq!(thumbs.user_ids, vec![bob], "capped, first reactor first");
    assert_eq!(counts.iter().find(|c| c.emoji == "🎉").unwrap().count, 1);
    assert!(store
        .set_reaction(m.id, bob, "👍", false, T0 + 9)
        .await
        .unwrap());
    assert!(!store
        .set_reaction(m.id, bob, "👍", false, T0 + 9)
        .await
        .unwrap());
    let counts = store.reactions(&[m.id], 10).await.unwrap();
    assert_eq!(
        counts.iter().find(|c| c.emoji == "👍").unwrap().user_ids,
        vec![alice]
    );

    let deleted = store
        .delete_message(ch.id, m.id, T0 + 10)
        .await
        .unwrap()
        .unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.text, "");
    assert!(store.reactions(&[m.id], 10).await.unwrap().is_empty());
    assert_eq!(
        store.edit_message(ch.id, m.id, "again", T0).await.unwrap(),
        None,
        "deleted stays deleted"
    );
    assert_eq!(
        store.history(ch.id, None, None, 10).await.unwrap().len(),
        1,
        "the seq stays"
    );
}

pub async fn read_positions_only_move_forward(store: Store) {
    let app = id();
    let (alice, bob, eve) = (id(), id(), id());
    let ch = make_group(&store, app, &[alice, bob], T0).await;
    for i in 0..5 {
        append(&store, &new_message(&ch, alice, &format!("m{i}"), T0 + i)).await;
    }
    assert_eq!(store.mark_read(ch.id, bob, 3).await.unwrap(), Some(3));
    assert_eq!(
        store.mark_read(ch.id, bob, 2).await.unwrap(),
        Some(3),
        "never back"
    );
    assert_eq!(
        store.mark_read(ch.id, bob, 99).await.unwrap(),
        Some(5),
        "never past the end"
    );
    assert_eq!(store.mark_read(ch.id, eve, 1).await.unwrap(), None);
    let newcomer = member(&ch, eve, MemberRole::Member);
    assert!(store.add_member(&newcomer, 10).await.unwrap());
    assert_eq!(
        store.member(ch.id, eve).await.unwrap().unwrap().read_seq,
        5,
        "a newcomer starts with the past read"
    );
}

pub async fn sync_reads_the_users_channels_in_log_order(store: Store) {
    let (app, other_app) = (id(), id());
    let (alice, bob, carol) = (id(), id(), id());
    let ab = make_group(&store, app, &[alice, bob], T0).await;
    let ac = make_group(&store, app, &[alice, carol], T0).await;
    let bc = make_group(&store, app, &[bob, carol], T0).await;
    let start = store.log_head().await.unwrap();
    let mut expected = Vec::new();
    for i in 0..6 {
        let a = append(&store, &new_message(&ab, bob, &format!("ab{i}"), T0 + i)).await;
        append(&store, &new_message(&bc, bob, &format!("bc{i}"), T0 + i)).await;
        let c = append(&store, &new_message(&ac, carol, &format!("ac{i}"), T0 + i)).await;
        expected.push(a.id);
        expected.push(c.id);
    }
    let all = store.sync_page(app, alice, start, 100).await.unwrap();
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), expected);
    assert!(all.windows(2).all(|w| w[0].pos < w[1].pos));
    let page = store.sync_page(app, alice, start, 5).await.unwrap();
    assert_eq!(page.len(), 5);
    let rest = store.sync_page(app, alice, page[4].pos, 100).await.unwrap();
    assert_eq!(rest.len(), expected.len() - 5);
    assert_eq!(rest[0].id, expected[5]);
    let head = store.log_head().await.unwrap();
    assert!(store
        .sync_page(app, alice, head, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .sync_page(other_app, alice, start, 100)
        .await
        .unwrap()
        .is_empty());
    // Leaving a channel leaves its messages out of later syncs.
    assert!(store.remove_member(ac.id, alice).await.unwrap());
    let after_leave = store.sync_page(app, alice, start, 100).await.unwrap();
    assert!(after_leave.iter().all(|m| m.channel_id == ab.id));
}

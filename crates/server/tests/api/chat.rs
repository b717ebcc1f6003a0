//! Chat through the real server: channels and members over HTTP, messages, sync,
//! presence and the rest over real WebSocket clients.

use std::collections::HashSet;

use serde_json::{json, Value};
use tidings_client::{Client, Frame, HistoryQuery, Socket, User};

use crate::helpers::{assert_problem, eventually, spawn_with, Backend, TestApp};
use crate::on_both_backends;

async fn socket(client: &Client) -> Socket {
    client.connect_socket().await.expect("socket connects").0
}

fn send_frame(reference: &str, channel: &str, client_msg_id: &str, text: &str) -> Value {
    json!({"type": "send", "ref": reference, "channel_id": channel, "client_msg_id": client_msg_id, "text": text})
}

/// The next frame, which must be a `message`; its message.
async fn next_message(s: &mut Socket) -> Value {
    s.expect("message").await.expect("a message frame")
}

async fn pair(app: &TestApp) -> ((User, Client), (User, Client)) {
    (app.user("alice").await, app.user("bob").await)
}

async fn direct_messages_flow_both_ways(app: TestApp) {
    let ((alice, a), (bob, b)) = pair(&app).await;
    let ch = a.create_channel("direct", None, &[&bob.id]).await.unwrap();
    assert_eq!(ch.kind, "direct");
    assert_eq!(ch.member_count, 2);
    let again = b
        .create_channel("direct", None, &[&alice.id])
        .await
        .unwrap();
    assert_eq!(
        again.id, ch.id,
        "one direct channel per pair, whoever opens it"
    );

    let (mut sa, mut sb) = (socket(&a).await, socket(&b).await);
    sa.send(&send_frame("r1", &ch.id, "c1", "hi bob"))
        .await
        .unwrap();
    let ack = sa.expect("ack").await.unwrap();
    assert_eq!(ack["ref"], "r1");
    assert_eq!(ack["message"]["seq"], 1);
    assert_eq!(ack["message"]["text"], "hi bob");
    assert_eq!(ack["message"]["sender_id"], alice.id.as_str());
    let got = next_message(&mut sb).await;
    assert_eq!(got["message"]["id"], ack["message"]["id"]);
    assert!(got["cursor"].is_string());

    sb.send(&send_frame("r2", &ch.id, "c2", "hi alice"))
        .await
        .unwrap();
    assert_eq!(sb.expect("ack").await.unwrap()["message"]["seq"], 2);
    let got = next_message(&mut sa).await;
    assert_eq!(got["message"]["text"], "hi alice");
    assert_eq!(got["message"]["seq"], 2);

    // HTTP sending is the same path.
    let m = a
        .send_message(&ch.id, "c3", "over http", None)
        .await
        .unwrap();
    assert_eq!(m.seq, 3);
    assert_eq!(next_message(&mut sb).await["message"]["id"], m.id.as_str());
    assert_eq!(
        next_message(&mut sa).await["message"]["id"],
        m.id.as_str(),
        "other devices of the sender hear it too"
    );

    let history = b.history(&ch.id, HistoryQuery::default()).await.unwrap();
    let texts: Vec<&str> = history.items.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["hi bob", "hi alice", "over http"]);
    let mine = b.my_channels(None, None).await.unwrap();
    assert_eq!(mine.items.len(), 1);
    assert_eq!(mine.items[0].last_message.as_ref().unwrap().id, m.id);
    assert_eq!(
        mine.items[0].unread_count, 1,
        "bob read up to his own message"
    );
}

async fn a_group_of_fifty_gets_every_message_once(app: TestApp) {
    let (_, owner) = app.user("owner").await;
    let mut members = Vec::new();
    for i in 0..49 {
        members.push(app.user(&format!("member{i}")).await);
    }
    let ids: Vec<&str> = members.iter().map(|(u, _)| u.id.as_str()).collect();
    let group = owner
        .create_channel("group", Some("fifty"), &ids)
        .await
        .unwrap();
    assert_eq!(group.member_count, 50);
    let mut sockets = Vec::new();
    for (_, c) in &members {
        sockets.push(socket(c).await);
    }
    let mut owner_socket = socket(&owner).await;
    for i in 0..3 {
        owner_socket
            .send(&send_frame(
                &format!("r{i}"),
                &group.id,
                &format!("g{i}"),
                &format!("hello {i}"),
            ))
            .await
            .unwrap();
        owner_socket.expect("ack").await.unwrap();
    }
    for s in &mut sockets {
        for i in 0..3 {
            let m = next_message(s).await;
            assert_eq!(m["message"]["seq"], i + 1);
            assert_eq!(m["message"]["text"], format!("hello {i}"));
        }
    }
    // Nothing more: a ping's pong is the next frame on every socket.
    for s in &mut sockets {
        s.send(&json!({"type": "ping"})).await.unwrap();
        s.expect("pong").await.unwrap();
    }
}

async fn reconnecting_devices_sync_what_they_missed_once_in_order(app: TestApp) {
    let ((alice, a), (bob, b)) = pair(&app).await;
    let (_, carol_client) = app.user("carol").await;
    let direct = a.create_channel("direct", None, &[&bob.id]).await.unwrap();
    let group = carol_client
        .create_channel("group", Some("trio"), &[&alice.id, &bob.id])
        .await
        .unwrap();
    // Two devices of bob, each remembering its cursor.
    let mut cursors = Vec::new();
    for _ in 0..2 {
        let mut s = socket(&b).await;
        s.send(&json!({"type": "sync"})).await.unwrap();
        cursors.push(
            s.expect("synced").await.unwrap()["cursor"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        s.close().await;
    }
    let mut sent = Vec::new();
    for i in 0..6 {
        let (client, ch) = if i % 2 == 0 {
            (&a, &direct.id)
        } else {
            (&carol_client, &group.id)
        };
        sent.push(
            client
                .send_message(ch, &format!("m{i}"), &format!("missed {i}"), None)
                .await
                .unwrap(),
        );
    }
    for (device, cursor) in cursors.iter().enumerate() {
        let mut s = socket(&b).await;
        s.send(&json!({"type": "sync", "cursor": cursor}))
            .await
            .unwrap();
        let mut got = Vec::new();
        let synced = loop {
            match s.next().await.unwrap() {
                Frame::Json(v) if v["type"] == "message" => got.push(v),
                Frame::Json(v) if v["type"] == "synced" => break v,
                other => panic!("unexpected {other:?}"),
            }
        };
        let ids: Vec<&str> = got
            .iter()
            .map(|v| v["message"]["id"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = sent.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, want, "every missed message, once, in order");
        // Per channel in seq order.
        for ch in [&direct.id, &group.id] {
            let seqs: Vec<i64> = got
                .iter()
                .filter(|v| v["message"]["channel_id"] == ch.as_str())
                .map(|v| v["message"]["seq"].as_i64().unwrap())
                .collect();
            let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
            assert_eq!(seqs, expected);
        }
        // After sync, live messages keep coming, and a sync from the new cursor is empty.
        let live = a
            .send_message(&direct.id, &format!("live-{device}"), "live", None)
            .await
            .unwrap();
        assert_eq!(
            next_message(&mut s).await["message"]["id"],
            live.id.as_str()
        );
        // The next device, still at its old cursor, missed this one too.
        sent.push(live.clone());
        s.send(&json!({"type": "sync", "cursor": synced["cursor"]}))
            .await
            .unwrap();
        // This device has it already: nothing is sent twice.
        let again = s.expect("synced").await.unwrap();
        let cursor_after_live = again["cursor"].clone();
        s.close().await;
        // A device still at the old cursor gets exactly the live message.
        let mut fresh = socket(&b).await;
        fresh
            .send(&json!({"type": "sync", "cursor": synced["cursor"]}))
            .await
            .unwrap();
        assert_eq!(
            next_message(&mut fresh).await["message"]["id"],
            live.id.as_str()
        );
        assert_eq!(
            fresh.expect("synced").await.unwrap()["cursor"],
            cursor_after_live
        );
        fresh.close().await;
    }
    let _ = alice;
}

async fn a_resent_message_is_stored_once(app: TestApp) {
    let ((_, a), (bob, b)) = pair(&app).await;
    let ch = a.create_channel("direct", None, &[&bob.id]).await.unwrap();
    let mut sa = socket(&a).await;
    let mut sb = socket(&b).await;
    sa.send(&send_frame("first", &ch.id, "same-id", "once"))
        .await
        .unwrap();
    let first = sa.expect("ack").await.unwrap();
    // The ack was "lost": the client reconnects and sends again.
    sa.close().await;
    let mut sa = socket(&a).await;
    sa.send(&send_frame("again", &ch.id, "same-id", "once"))
        .await
        .unwrap();
    // The new socket is another device of the sender: the first message may still
    // reach it live (it was not the origin), before the ack. Never a second message.
    let second = loop {
        match sa.next().await.unwrap() {
            Frame::Json(v) if v["type"] == "ack" => break v,
            Frame::Json(v) if v["type"] == "message" => {
                assert_eq!(v["message"]["id"], first["message"]["id"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(second["ref"], "again");
    assert_eq!(second["message"]["id"], first["message"]["id"]);
    let http = a
        .send_message(&ch.id, "same-id", "once", None)
        .await
        .unwrap();
    assert_eq!(http.id, first["message"]["id"].as_str().unwrap());
    assert_eq!(
        b.history(&ch.id, HistoryQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    next_message(&mut sb).await;
    sb.send(&json!({"type": "ping"})).await.unwrap();
    sb.expect("pong").await.unwrap();
}

async fn non_members_are_refused(app: TestApp) {
    let ((_, a), (bob, _)) = pair(&app).await;
    let (_, eve) = app.user("eve").await;
    let ch = a.create_channel("direct", None, &[&bob.id]).await.unwrap();
    assert_problem(eve.channel(&ch.id).await.unwrap_err(), 403, "forbidden");
    assert_problem(
        eve.history(&ch.id, HistoryQuery::default())
            .await
            .unwrap_err(),
        403,
        "forbidden",
    );
    assert_problem(
        eve.send_message(&ch.id, "x", "hi", None).await.unwrap_err(),
        403,
        "forbidden",
    );
    let mut s = socket(&eve).await;
    s.send(&send_frame("r", &ch.id, "x", "hi")).await.unwrap();
    let err = s.expect("error").await.unwrap();
    assert_eq!(
        (err["ref"].as_str(), err["code"].as_str()),
        (Some("r"), Some("forbidden"))
    );
    s.send(&json!({"type": "typing", "channel_id": ch.id}))
        .await
        .unwrap();
    assert_eq!(s.expect("error").await.unwrap()["code"], "forbidden");
    // Another app's users do not see the channel at all.
    let other = app.second_app().await;
    let stranger = other
        .create_user(&tidings_client::CreateUser {
            username: Some("stranger".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let token = other.mint_token(&stranger.id, None).await.unwrap().token;
    let stranger = app.client.as_user(&token);
    assert_problem(
        stranger.channel(&ch.id).await.unwrap_err(),
        404,
        "not_found",
    );
    assert_problem(
        stranger
            .create_channel("direct", None, &[&bob.id])
            .await
            .unwrap_err(),
        422,
        "validation_failed",
    );
}

async fn group_admins_manage_members(app: TestApp) {
    let ((alice, a), (bob, b)) = pair(&app).await;
    let (carol, c) = app.user("carol").await;
    let group = a
        .create_channel("group", Some("team"), &[&bob.id])
        .await
        .unwrap();
    assert_eq!(group.role.as_deref(), Some("admin"));
    assert_problem(
        b.add_member(&group.id, &carol.id).await.unwrap_err(),
        403,
        "forbidden",
    );
    a.add_member(&group.id, &carol.id).await.unwrap();
    let seen = c.channel(&group.id).await.unwrap();
    assert_eq!(seen.member_count, 3);
    assert_eq!(seen.members.unwrap().len(), 3);
    assert_problem(
        b.remove_member(&group.id, &carol.id).await.unwrap_err(),
        403,
        "forbidden",
    );
    c.remove_member(&group.id, &carol.id).await.unwrap();
    assert_problem(c.channel(&group.id).await.unwrap_err(), 403, "forbidden");
    a.remove_member(&group.id, &bob.id).await.unwrap();
    assert_eq!(a.channel(&group.id).await.unwrap().member_count, 1);
    let direct = a.create_channel("direct", None, &[&bob.id]).await.unwrap();
    assert_problem(
        a.add_member(&direct.id, &carol.id).await.unwrap_err(),
        409,
        "conflict",
    );
    assert_problem(
        a.create_channel("group", None, &[&bob.id])
            .await
            .unwrap_err(),
        422,
        "validation_failed",
    );
    assert_problem(
        a.create_channel("direct", None, &[&bob.id, &carol.id])
            .await
            .unwrap_err(),
        422,
        "validation_failed",
    );
    let _ = alice;
}

async fn history_pages_back_by_seq(app: TestApp) {
    let ((_, a), (bob, b)) = pair(&app).await;
    let ch = a.create_channel("direct", None, &[&bob.id]).await.unwrap();
    for i in 0..7 {
        a.send_message(&ch.id, &format!("h{i}"), &format!("text {i}"), None)
            .await
            .unwrap();
    }
    let newest = b
        .history(
            &ch.id,
            HistoryQuery {
                limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        newest.items.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    let before: i64 = newest.next_cursor.unwrap().parse().unwrap();
    let older = b
        .history(
            &ch.id,
            HistoryQuery {
                before_seq: Some(before),
                limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        older.items.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    let oldest = b
        .history(
            &ch.id,
            HistoryQuery {
                before_seq: Some(2),
                limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        oldest.items.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1]
    );
    assert!(oldest.next_cursor.is_none());
    let after = b
        .history(
            &ch.id,
            HistoryQuery {
                after_seq: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        after.items.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![6, 7]
    );
    // The app's backend reads every channel of its app.
    assert_eq!(
        app.app
            .history(&ch.id, HistoryQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        7
    );
    let sent = app
        .app
        .send_message(&ch.id, "from-app", "system says", Some(&bob.id))
        .await
        .unwrap();
    assert_eq!((sent.seq, sent.sender_id.as_str()), (8, bob.id.as_str()));
}

async fn edits_deletes_and_reactions_reach_members(app: TestApp) {
    let ((alice, a), (bob, b)) = pair(&app).await;
    let ch = a.create_channel("direct", None, &[&bob.id]).await.unwrap();
    let mut sb = socket(&b).await;
    let m = a.send_message(&ch.id, "e1", "tpyo", None).await.unwrap();
    next_message(&mut sb).await;
    assert_problem(
        b.edit_message(&ch.id, &m.id, "not mine").await.unwrap_err(),
        403,
        "forbidden",
    );
    let edited = a.edit_message(&ch.id, &m.id, "typo").await.unwrap();
    assert_eq!(edited.text, "typo");
    assert!(edited.edited_at.is_some());
    let frame = sb.expect("message_updated").await.unwrap();
    assert_eq!(frame["message"]["text"], "typo");

    b.react(&ch.id, &m.id, "👍", true).await.unwrap();
    let frame = sb.expect("reaction").await.unwrap();
    assert_eq!(
        (frame["emoji"].as_str(), frame["added"].as_bool()),
        (Some("👍"), Some(true))
    );
    let history = a.history(&ch.id, HistoryQuery::default()).await.unwrap();
    assert_eq!(history.items[0].reactions[0].count, 1);
    assert_eq!(history.items[0].reactions[0].user_ids, vec![bob.id.clone()]);
    b.react(&ch.id, &m.id, "👍", false).await.unwrap();
    sb.expect("reaction").await.unwrap();

    a.delete_message(&ch.id, &m.id).await.unwrap();
    let frame = sb.expect("message_deleted").await.unwrap();
    assert_eq!(frame["message_id"], m.id.as_str());
    let history = b.history(&ch.id, HistoryQuery::default()).await.unwrap();
    assert!(history.items[0].deleted);
    assert_eq!(history.items[0].text, "");
    assert_problem(
        a.edit_message(&ch.id, &m.id, "again").await.unwrap_err(),
        404,
        "not_found",
    );
    let _ = alice;
}

async fn typing_and_read_receipts_are_relayed(app: TestApp) {
    let ((alice, a), (bob, b)) = pair(&app).await;
    let ch = a.create_channel("direct", None, &[&bob.id]).await.unwrap();
    let (mut sa, mut sb) = (socket(&a).await, socket(&b).await);
    sa.send(&json!({"type": "typing", "channel_id": ch.id}))
        .await
        .unwrap();
    let typing = sb.expect("typing").await.unwrap();
    assert_eq!(typing["user_id"], alice.id.as_str());
    for i in 0..3 {
        a.send_message(&ch.id, &format!("t{i}"), "hey", None)
            .await
            .unwrap();
    }
    for _ in 0..3 {
        next_message(&mut sb).await;
        next_message(&mut sa).await;
    }
    assert_eq!(
        b.my_channels(None, None).await.unwrap().items[0].unread_count,
        3
    );
    sb.send(&json!({"type": "read", "channel_id": ch.id, "seq": 2}))
        .await
        .unwrap();
    let read = sa.expect("read").await.unwrap();
    assert_eq!(
        (read["user_id"].as_str(), read["seq"].as_i64()),
        (Some(bob.id.as_str()), Some(2))
    );
    assert_eq!(
        b.my_channels(None, None).await.unwrap().items[0].unread_count,
        1
    );
    assert_eq!(b.mark_channel_read(&ch.id, 99).await.unwrap(), 3);
    assert_eq!(
        b.my_channels(None, None).await.unwrap().items[0].unread_count,
        0
    );
}

async fn presence_follows_sockets(app: TestApp) {
    let ((alice, a), (bob, b)) = pair(&app).await;
    assert_eq!(a.presence(&bob.id).await.unwrap().status, "offline");
    let mut watcher = socket(&a).await;
    watcher
        .send(&json!({"type": "presence_subscribe", "user_ids": [bob.id]}))
        .await
        .unwrap();
    let now = watcher.expect("presence").await.unwrap();
    assert_eq!(now["status"], "offline");
    let sb = socket(&b).await;
    let online = watcher.expect("presence").await.unwrap();
    assert_eq!(
        (online["user_id"].as_str(), online["status"].as_str()),
        (Some(bob.id.as_str()), Some("online"))
    );
    assert_eq!(a.presence(&bob.id).await.unwrap().status, "online");
    sb.close().await;
    let offline = watcher.expect("presence").await.unwrap();
    assert_eq!(offline["status"], "offline");
    let p = a.presence(&bob.id).await.unwrap();
    assert_eq!(p.status, "offline");
    assert!(p.last_seen_at.is_some());
    let _ = alice;
}

async fn bad_frames_get_error_frames(app: TestApp) {
    let (_, a) = app.user("alice").await;
    let mut s = socket(&a).await;
    s.send_text("{not json").await.unwrap();
    assert_eq!(
        s.expect("error").await.unwrap()["code"],
        "validation_failed"
    );
    s.send(&json!({"type": "teleport"})).await.unwrap();
    assert_eq!(
        s.expect("error").await.unwrap()["code"],
        "validation_failed"
    );
    s.send(
        &json!({"type": "send", "ref": 7, "channel_id": "nope", "client_msg_id": "x", "text": "t"}),
    )
    .await
    .unwrap();
    let err = s.expect("error").await.unwrap();
    assert_eq!(
        (err["code"].as_str(), err["ref"].as_i64()),
        (Some("validation_failed"), Some(7))
    );
    s.send(&json!({"type": "send", "ref": 8, "channel_id": "1", "client_msg_id": "x", "text": ""}))
        .await
        .unwrap();
    let err = s.expect("error").await.unwrap();
    assert_eq!(err["ref"], 8);
    let big = "x".repeat(70 * 1024);
    s.send(
        &json!({"type": "send", "ref": 9, "channel_id": "1", "client_msg_id": "x", "text": big}),
    )
    .await
    .unwrap();
    assert_eq!(
        s.expect("error").await.unwrap()["code"],
        "payload_too_large"
    );
    s.send(&json!({"type": "sync", "cursor": "not-a-cursor"}))
        .await
        .unwrap();
    assert_eq!(
        s.expect("error").await.unwrap()["code"],
        "validation_failed"
    );
    s.send(&json!({"type": "ping"})).await.unwrap();
    s.expect("pong").await.unwrap();
}

async fn auth_frames_and_refusals(app: TestApp) {
    let (alice, a) = app.user("alice").await;
    let url = format!("{}/v1/ws", app.base.replacen("http", "ws", 1));
    let token = a.token().unwrap().to_owned();
    let (mut s, ready) = Socket::connect_with_auth_frame(&url, &token, Some("phone"))
        .await
        .unwrap();
    assert_eq!(ready["user_id"], alice.id.as_str());
    assert!(ready["heartbeat_ms"].as_u64().unwrap() > 0);
    s.send(&json!({"type": "ping"})).await.unwrap();
    s.expect("pong").await.unwrap();

    let (mut s, _) = Socket::connect(&url, None).await.unwrap();
    s.send(&json!({"type": "ping"})).await.unwrap();
    assert_eq!(
        s.closed().await.unwrap().map(|c| c.0),
        Some(4001),
        "nothing before auth"
    );
    let (mut s, _) = Socket::connect(&url, None).await.unwrap();
    s.send(&json!({"type": "auth", "token": "forged"}))
        .await
        .unwrap();
    assert_eq!(s.closed().await.unwrap().map(|c| c.0), Some(4001));
    let err = Socket::connect(&url, Some("forged"))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("401"), "{err}");
    let endpoint = a.ws_endpoint().await.unwrap();
    assert_eq!(endpoint.url, url);
}

async fn in_app_notifications_arrive_on_the_socket(app: TestApp) {
    let (alice, a) = app.user("alice").await;
    let mut s = socket(&a).await;
    app.app
        .send_notification(&json!({
            "event_id": "live-1",
            "to": {"user_ids": [alice.id]},
            "content": {"in_app": {"title": "Shipped", "body": "on its way"}}
        }))
        .await
        .unwrap();
    let frame = s.expect("notification").await.unwrap();
    assert_eq!(frame["item"]["title"], "Shipped");
}

async fn offline_members_get_a_push(app: TestApp) {
    let ((_, a), (bob, _)) = pair(&app).await;
    let ch = a.create_channel("direct", None, &[&bob.id]).await.unwrap();
    a.send_message(&ch.id, "p1", "are you there?", None)
        .await
        .unwrap();
    // Bob has no device, so the push is suppressed for want of one: what matters
    // here is that the pipeline was asked.
    let app_client = app.app.clone();
    eventually("the push to reach the pipeline", || {
        let c = app_client.clone();
        async move {
            let stats = c.notification_stats(None).await.ok()?;
            let push = &stats["channels"]["push"];
            (push["accepted"] == 1 && push["suppressed_by_reason"]["no_contact"] == 1).then_some(())
        }
    })
    .await;
}

on_both_backends!(
    direct_messages_flow_both_ways,
    a_group_of_fifty_gets_every_message_once,
    reconnecting_devices_sync_what_they_missed_once_in_order,
    a_resent_message_is_stored_once,
    non_members_are_refused,
    group_admins_manage_members,
    history_pages_back_by_seq,
    edits_deletes_and_reactions_reach_members,
    typing_and_read_receipts_are_relayed,
    presence_follows_sockets,
    bad_frames_get_error_frames,
    auth_frames_and_refusals,
    in_app_notifications_arrive_on_the_socket,
    offline_members_get_a_push,
);

/// A reader that stops reading is cut with 4008 while the others keep up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_cut_and_the_others_keep_their_rate() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.chat.outbound_queue = 16;
    })
    .await
    .unwrap();
    let ((_, a), (bob, b)) = pair(&app).await;
    let (carol, c) = app.user("carol").await;
    let group = a
        .create_channel("group", Some("g"), &[&bob.id, &carol.id])
        .await
        .unwrap();
    let mut fast = socket(&b).await;
    let mut slow = socket(&c).await;
    let text = "y".repeat(8 * 1024);
    let total = 1_500;
    let sender = {
        let (a, id, text) = (a.clone(), group.id.clone(), text.clone());
        tokio::spawn(async move {
            for i in 0..total {
                a.send_message(&id, &format!("s{i}"), &text, None)
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = HashSet::new();
    while seen.len() < total {
        let m = next_message(&mut fast).await;
        seen.insert(m["message"]["seq"].as_i64().unwrap());
    }
    sender.await.unwrap();
    assert_eq!(seen.len(), total, "the fast reader got everything");
    assert_eq!(slow.closed().await.unwrap().map(|c| c.0), Some(4008));
    let metrics = app.client.metrics_text().await.unwrap();
    assert!(
        metrics.contains("tidings_ws_sockets_cut_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tidings_ws_frames_routed_total"));
    let _ = carol;
}

/// A socket that stops pinging is closed, and its user goes offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_heartbeats_take_a_user_offline() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.chat.heartbeat_ms = 200;
    })
    .await
    .unwrap();
    let ((_, a), (bob, b)) = pair(&app).await;
    let mut watcher = socket(&a).await;
    let mut silent = socket(&b).await;
    watcher
        .send(&json!({"type": "presence_subscribe", "user_ids": [bob.id]}))
        .await
        .unwrap();
    // The watcher pings on time to stay alive while bob says nothing.
    let mut beat = tokio::time::interval(std::time::Duration::from_millis(100));
    let offline = loop {
        tokio::select! {
            _ = beat.tick() => watcher.send(&json!({"type": "ping"})).await.unwrap(),
            frame = watcher.next() => match frame.unwrap() {
                Frame::Json(v) if v["type"] == "presence" && v["status"] == "offline" => break v,
                Frame::Json(_) => {}
                Frame::Closed(c) => panic!("watcher closed: {c:?}"),
            },
        }
    };
    assert_eq!(offline["user_id"], bob.id.as_str());
    assert_eq!(silent.closed().await.unwrap().map(|c| c.0), Some(4000));
}

/// A client that floods is told to slow down, then cut with 4029.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_refused_then_cut() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.chat.frames_per_sec = 5;
        c.chat.frame_burst = 5;
    })
    .await
    .unwrap();
    let (_, a) = app.user("alice").await;
    let mut s = socket(&a).await;
    for _ in 0..40 {
        if s.send(&json!({"type": "ping"})).await.is_err() {
            break;
        }
    }
    let mut limited = false;
    let code = loop {
        match s.next().await.unwrap() {
            Frame::Json(v) if v["code"] == "rate_limited" => limited = true,
            Frame::Json(_) => {}
            Frame::Closed(c) => break c.map(|c| c.0),
        }
    };
    assert!(limited, "told to slow down first");
    assert_eq!(code, Some(4029));
}

//! One task per socket for one phase of a run: it reads everything the socket
//! receives and, if the socket is a sender, sends by its plan. One task owning the
//! whole socket (no split halves, no channel in between) is the least the client
//! can spend per frame.
//!
//! A phase has a measuring window `[t0, t1)`. Rates count what arrived inside it;
//! latencies count messages that were due inside it. Senders stop at `t1`; every
//! socket then keeps reading until it has been quiet for a moment, so what was in
//! flight is not left to the next phase.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::Notify;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message;

use super::wire::{self, classify, Body, Incoming, Ws};
use crate::measure::new_histogram;

/// Browsers cannot send WebSocket pings, so clients keep sockets alive with `ping`
/// frames; the server closes a socket silent for twice its heartbeat (20 s).
const PING_EVERY: Duration = Duration::from_secs(5);
/// After `t1`, a socket that received nothing for this long is done.
const QUIET: Duration = Duration::from_millis(300);
/// After `t1`, a socket stops reading after this long whatever still arrives.
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// How many of each sender's messages each member has seen, so that a sender can
/// stay a bounded number of messages ahead of its slowest receiver. Without it a
/// sender bounded only by acks can bury a receiver the load generator is too busy
/// to read in time, and the server rightly cuts that socket (4008): the run would
/// measure the load generator.
pub struct Progress {
    members: usize,
    seen: Vec<AtomicU64>,
    waiting: Vec<AtomicBool>,
    wake: Vec<Notify>,
}

impl Progress {
    pub fn new(senders: usize, members: usize) -> Self {
        Self {
            members,
            seen: (0..senders * members).map(|_| AtomicU64::new(0)).collect(),
            waiting: (0..senders).map(|_| AtomicBool::new(false)).collect(),
            wake: (0..senders).map(|_| Notify::new()).collect(),
        }
    }

    fn senders(&self) -> usize {
        self.waiting.len()
    }

    fn saw(&self, sender: usize, member: usize, count: u64) {
        self.seen[sender * self.members + member].store(count, Ordering::SeqCst);
        if self.waiting[sender].load(Ordering::SeqCst) {
            self.wake[sender].notify_one();
        }
    }

    /// Messages of `sender` every other member has seen.
    fn floor(&self, sender: usize) -> u64 {
        let row = &self.seen[sender * self.members..(sender + 1) * self.members];
        row.iter()
            .enumerate()
            .filter(|(m, _)| *m != sender)
            .map(|(_, c)| c.load(Ordering::SeqCst))
            .min()
            .unwrap_or(u64::MAX)
    }
}

#[derive(Clone)]
pub enum Gate {
    /// At most `window` sends awaiting their ack.
    Acks,
    /// At most `window` messages not yet seen by every other member.
    Seen(Arc<Progress>),
}

#[derive(Clone)]
pub enum Pace {
    /// As fast as the gate allows.
    Window { size: u64, gate: Gate },
    /// Open loop: one message every `1 / per_second`, the first due at `first`,
    /// whether or not earlier ones were answered.
    Rate { per_second: f64, first: Instant },
}

#[derive(Clone)]
pub struct SenderPlan {
    pub channel_id: Arc<str>,
    /// This sender's number (its member index, where there is `Progress`).
    pub index: u32,
    pub pace: Pace,
    pub text_bytes: usize,
}

#[derive(Clone)]
pub struct Plan {
    pub phase: u32,
    /// This socket's member index, for `Progress`.
    pub member: usize,
    pub t0: Instant,
    pub t1: Instant,
    pub sender: Option<SenderPlan>,
    /// Where this socket reports what it has seen.
    pub progress: Option<Arc<Progress>>,
}

/// What one socket did in one phase.
pub struct Stats {
    /// Messages due inside the window that were sent.
    pub sent_in_window: u64,
    pub sent: u64,
    pub acks_in_window: u64,
    pub acks: u64,
    pub deliveries_in_window: u64,
    pub delivered_bytes_in_window: u64,
    pub deliveries: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Close code (0 without one) if the socket closed or failed.
    pub closed: Option<(u16, String)>,
    /// Send (due) → ack, for messages due in the window.
    pub ack_latency: Histogram<u64>,
    /// Send (due) → `message` frame at a receiver, for messages due in the window.
    pub delivery_latency: Histogram<u64>,
}

impl Stats {
    pub fn new() -> Self {
        Self {
            sent_in_window: 0,
            sent: 0,
            acks_in_window: 0,
            acks: 0,
            deliveries_in_window: 0,
            delivered_bytes_in_window: 0,
            deliveries: 0,
            errors: 0,
            first_error: None,
            closed: None,
            ack_latency: new_histogram(),
            delivery_latency: new_histogram(),
        }
    }

    /// Adds another socket's figures to these.
    pub fn add(&mut self, other: &Stats) {
        self.sent_in_window += other.sent_in_window;
        self.sent += other.sent;
        self.acks_in_window += other.acks_in_window;
        self.acks += other.acks;
        self.deliveries_in_window += other.deliveries_in_window;
        self.delivered_bytes_in_window += other.delivered_bytes_in_window;
        self.deliveries += other.deliveries;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        if self.closed.is_none() {
            self.closed.clone_from(&other.closed);
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.ack_latency.add(&other.ack_latency);
        let _ = self.delivery_latency.add(&other.delivery_latency);
    }
}

/// Runs one phase on one socket and hands the socket back for the next.
pub async fn drive(mut ws: Ws, plan: Plan) -> (Ws, Stats) {
    let mut stats = Stats::new();
    let t1 = plan.t1;
    let hard_stop = t1 + DRAIN_MAX;
    let mut ping = tokio::time::interval_at((Instant::now() + PING_EVERY).into(), PING_EVERY);
    // Messages seen from each sender, for `Progress`.
    let mut seen = vec![0u64; plan.progress.as_ref().map_or(0, |p| p.senders())];
    let mut last_frame = Instant::now();
    let mut waiting = false;
    // Open loop: how many messages have been due so far.
    let mut due_count: u64 = 0;
    let timer = sleep_until(t1.into());
    tokio::pin!(timer);
    let mut timer_at = t1;

    loop {
        let now = Instant::now();
        let sending = plan.sender.is_some() && now < t1;
        let mut next_due = None;
        if let Some(sender) = plan.sender.as_ref().filter(|_| sending) {
            let fed = match send_now(
                &mut ws,
                &plan,
                sender,
                &mut stats,
                &mut due_count,
                now,
                &mut waiting,
            )
            .await
            {
                Ok(fed) => fed,
                Err(e) => {
                    stats.closed = Some((0, format!("send failed: {e}")));
                    break;
                }
            };
            if fed > 0 {
                if let Err(e) = ws.flush().await {
                    stats.closed = Some((0, format!("flush failed: {e}")));
                    break;
                }
            }
            if let Pace::Rate { per_second, first } = sender.pace {
                next_due = Some(first + Duration::from_secs_f64(due_count as f64 / per_second));
            }
        }
        // Wake at the next due send, at t1, or when the drain should end.
        let wake_at = if sending {
            next_due.map_or(t1, |d| d.min(t1))
        } else if now < t1 {
            t1
        } else {
            if now >= hard_stop || now >= last_frame + QUIET {
                break;
            }
            (last_frame + QUIET).min(hard_stop)
        };
        if wake_at != timer_at {
            timer.as_mut().reset(wake_at.into());
            timer_at = wake_at;
        }
        let wake = plan
            .progress
            .as_ref()
            .zip(plan.sender.as_ref())
            .filter(|_| waiting)
            .map(|(p, s)| &p.wake[s.index as usize]);
        tokio::select! {
            msg = ws.next() => {
                let now = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        last_frame = now;
                        on_text(&text, now, &plan, &mut stats, &mut seen);
                    }
                    Some(Ok(Message::Close(close))) => {
                        stats.closed = Some(close.map_or((0, String::new()), |c| (u16::from(c.code), c.reason.to_string())));
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        stats.closed = Some((0, e.to_string()));
                        break;
                    }
                    None => {
                        stats.closed = Some((0, "end of stream".into()));
                        break;
                    }
                }
            }
            _ = async { if let Some(w) = wake { w.notified().await } }, if wake.is_some() => {}
            _ = &mut timer => {}
            _ = ping.tick() => {
                if let Err(e) = ws.send(Message::text(wire::PING)).await {
                    stats.closed = Some((0, format!("ping failed: {e}")));
                    break;
                }
            }
        }
    }
    if let (Some(p), Some(s)) = (&plan.progress, &plan.sender) {
        p.waiting[s.index as usize].store(false, Ordering::SeqCst);
    }
    (ws, stats)
}

/// Feeds (without flushing) every send the pace allows now; how many.
async fn send_now(
    ws: &mut Ws,
    plan: &Plan,
    sender: &SenderPlan,
    stats: &mut Stats,
    due_count: &mut u64,
    now: Instant,
    waiting: &mut bool,
) -> Result<u64, tokio_tungstenite::tungstenite::Error> {
    let mut fed = 0;
    match &sender.pace {
        Pace::Window { size, gate } => {
            let floor = |stats: &Stats| match gate {
                Gate::Acks => stats.acks,
                Gate::Seen(p) => p.floor(sender.index as usize),
            };
            let mut room = size.saturating_sub(stats.sent.saturating_sub(floor(stats)));
            if room == 0 {
                if let Gate::Seen(p) = gate {
                    // Say we wait before looking again, so a receiver that moves on
                    // in between sees the flag and wakes us.
                    p.waiting[sender.index as usize].store(true, Ordering::SeqCst);
                    *waiting = true;
                    room = size.saturating_sub(stats.sent.saturating_sub(floor(stats)));
                }
            }
            if room > 0 && *waiting {
                if let Gate::Seen(p) = gate {
                    p.waiting[sender.index as usize].store(false, Ordering::SeqCst);
                }
                *waiting = false;
            }
            let due_us = wire::micros(now);
            for _ in 0..room {
                feed(ws, plan, sender, stats, due_us, now).await?;
                fed += 1;
            }
        }
        Pace::Rate { per_second, first } => loop {
            let due = *first + Duration::from_secs_f64(*due_count as f64 / per_second);
            if due > now || due >= plan.t1 {
                break;
            }
            *due_count += 1;
            feed(ws, plan, sender, stats, wire::micros(due), due).await?;
            fed += 1;
        },
    }
    Ok(fed)
}

async fn feed(
    ws: &mut Ws,
    plan: &Plan,
    sender: &SenderPlan,
    stats: &mut Stats,
    due_us: u64,
    due: Instant,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    // A fresh string per frame: the socket takes it over without a copy.
    let mut frame = String::with_capacity(sender.text_bytes + 160);
    let body = Body {
        phase: plan.phase,
        sender: sender.index,
        seq: stats.sent,
        due_us,
    };
    wire::send_frame(&mut frame, &sender.channel_id, body, sender.text_bytes);
    ws.feed(Message::text(frame)).await?;
    stats.sent += 1;
    if due >= plan.t0 && due < plan.t1 {
        stats.sent_in_window += 1;
    }
    Ok(())
}

fn on_text(text: &str, now: Instant, plan: &Plan, stats: &mut Stats, seen: &mut [u64]) {
    let in_window = now >= plan.t0 && now < plan.t1;
    let due_in_window = |us: u64| {
        let due = wire::instant(us);
        due >= plan.t0 && due < plan.t1
    };
    match classify(text) {
        Incoming::Delivery(body) => {
            stats.deliveries += 1;
            if in_window {
                stats.deliveries_in_window += 1;
                stats.delivered_bytes_in_window += text.len() as u64;
            }
            let Some(body) = body.filter(|b| b.phase == plan.phase) else {
                return;
            };
            if due_in_window(body.due_us) {
                stats
                    .delivery_latency
                    .saturating_record(wire::micros(now).saturating_sub(body.due_us));
            }
            if let Some(progress) = &plan.progress {
                let s = body.sender as usize;
                if s < seen.len() {
                    seen[s] += 1;
                    progress.saw(s, plan.member, seen[s]);
                }
            }
        }
        Incoming::Ack(due_us) => {
            stats.acks += 1;
            if in_window {
                stats.acks_in_window += 1;
            }
            if let Some(us) = due_us.filter(|us| due_in_window(*us)) {
                stats
                    .ack_latency
                    .saturating_record(wire::micros(now).saturating_sub(us));
            }
        }
        Incoming::Error(frame) => {
            stats.errors += 1;
            if stats.first_error.is_none() {
                stats.first_error = Some(frame.to_owned());
            }
        }
        Incoming::Pong | Incoming::Other => {}
    }
}

/// Runs one phase on every socket at once, each with its plan; the sockets (in the
/// same order) and what each did.
pub async fn phase(sockets: Vec<Ws>, plans: Vec<Plan>) -> anyhow::Result<(Vec<Ws>, Vec<Stats>)> {
    let tasks: Vec<_> = sockets
        .into_iter()
        .zip(plans)
        .map(|(ws, plan)| tokio::spawn(drive(ws, plan)))
        .collect();
    let mut sockets = Vec::with_capacity(tasks.len());
    let mut stats = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (ws, s) = task.await?;
        sockets.push(ws);
        stats.push(s);
    }
    Ok((sockets, stats))
}

/// The figures of many sockets added up.
pub fn total<'a>(all: impl IntoIterator<Item = &'a Stats>) -> Stats {
    let mut sum = Stats::new();
    for s in all {
        sum.add(s);
    }
    sum
}

/// Sockets that closed during the phase, by close code and reason.
pub fn closes<'a>(all: impl IntoIterator<Item = &'a Stats>) -> serde_json::Value {
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    for s in all {
        if let Some((code, reason)) = &s.closed {
            *by.entry(format!("{code} {reason}")).or_insert(0) += 1;
        }
    }
    serde_json::json!(by)
}

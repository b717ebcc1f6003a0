//! Latency recording and the two ways of offering load: closed loop (as fast as
//! answers come back) and open loop at a fixed rate, timed from when each request was
//! due, so a stalled server cannot hide its stall (no coordinated omission).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Serialize, Clone)]
pub struct Summary {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn summarize(h: &Histogram<u64>, errors: u64, elapsed: Duration) -> Summary {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let secs = elapsed.as_secs_f64();
    Summary {
        requests: h.len(),
        errors,
        seconds: secs,
        per_second: h.len() as f64 / secs,
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: h.max() as f64 / 1000.0,
    }
}

/// `workers` tasks each call `op` back to back for `duration`.
pub async fn closed_loop<F, Fut>(workers: usize, duration: Duration, op: F) -> Summary
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = new_histogram();
            let mut errors = 0u64;
            let mut i = worker;
            while Instant::now() < deadline {
                let t = Instant::now();
                let ok = op(i).await;
                if ok {
                    h.saturating_record(t.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
                i += workers;
            }
            (h, errors)
        }));
    }
    let mut total = new_histogram();
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await.expect("worker");
        total.add(&h).expect("same bounds");
        errors += e;
    }
    summarize(&total, errors, started.elapsed())
}

/// Offers `rate` requests per second for `duration`, at most `max_in_flight` at once;
/// latency counts from each request's scheduled start.
pub async fn open_loop<F, Fut>(
    rate: u64,
    duration: Duration,
    max_in_flight: usize,
    op: F,
) -> Summary
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let op = Arc::new(op);
    let histogram = Arc::new(Mutex::new(new_histogram()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let permits = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    let started = Instant::now();
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (op, histogram, errors) = (op.clone(), histogram.clone(), errors.clone());
        handles.push(tokio::spawn(async move {
            let ok = op(i).await;
            drop(permit);
            if ok {
                let us = due.elapsed().as_micros() as u64;
                histogram
                    .lock()
                    .expect("histogram lock")
                    .saturating_record(us);
            } else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let h = histogram.lock().expect("histogram lock").clone();
    summarize(
        &h,
        errors.load(std::sync::atomic::Ordering::Relaxed),
        started.elapsed(),
    )
}

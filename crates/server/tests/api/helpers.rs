use tidings_client::{AppCredentials, Client, CreateUser, User};
use tidings_platform::config::{Config, Overrides};
use tidings_server::state::AppState;
use tidings_server::Server;
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    /// Anonymous client.
    pub client: Client,
    /// The first app's backend.
    pub app: Client,
    pub creds: AppCredentials,
    pub state: AppState,
    config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _guard: Guard,
}

enum Guard {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema(#[allow(dead_code)] tidings_store_postgres::ScratchSchema),
    /// The distributed shape: a schema, plus JetStream streams under a prefix.
    Cluster(
        #[allow(dead_code)] tidings_store_postgres::ScratchSchema,
        #[allow(dead_code)] Streams,
    ),
}

/// JetStream streams named `<prefix>_*`, deleted on drop.
pub struct Streams {
    url: String,
    prefix: String,
}

impl Drop for Streams {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(crate::cluster::delete_streams(&url, &prefix));
            }
        })
        .join();
    }
}

fn test_config(backend: Backend) -> Option<(Config, Guard)> {
    let (mut config, _) = Config::load(
        None,
        Vec::<(String, String)>::new(),
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: None,
        },
    )
    .expect("default config");
    let guard = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            config.data_dir = dir.path().to_owned();
            Guard::Dir(dir)
        }
        Backend::Postgres => {
            let url = std::env::var("TIDINGS_TEST_DATABASE_URL").ok()?;
            let schema = tidings_store_postgres::ScratchSchema::new(&url, "api");
            config.database_url = Some(url);
            config.database_schema = Some(schema.name().to_owned());
            config.postgres.max_connections = 4;
            // With NATS and Redis available, the PostgreSQL run is the whole
            // distributed shape: queues on JetStream, rate limits in Redis.
            config.redis_url = std::env::var("TIDINGS_TEST_REDIS_URL").ok();
            // Test servers share one Redis: each keeps to keys of its own.
            config.redis_prefix = format!("test:{:016x}:", rand::random::<u64>());
            match std::env::var("TIDINGS_TEST_NATS_URL") {
                Ok(nats) => {
                    let prefix = format!("T{:012x}", rand::random::<u64>() >> 16);
                    config.nats_url = Some(nats.clone());
                    config.nats_stream_prefix = prefix.clone();
                    Guard::Cluster(schema, Streams { url: nats, prefix })
                }
                Err(_) => Guard::Schema(schema),
            }
        }
    };
    Some((config, guard))
}

/// Starts a server on a fresh store. `None` when the backend is not configured here.
pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let (mut config, guard) = test_config(backend)?;
    tweak(&mut config);
    let server = Server::build(config.clone()).await.expect("server starts");
    let creds = server
        .first_app()
        .cloned()
        .expect("a fresh store creates the first app");
    let creds = AppCredentials {
        app_id: creds.app_id.to_string(),
        app_key: creds.app_key,
        app_secret: creds.app_secret,
    };
    let (base, state, tx, handle) = run(server);
    let client = Client::new(&base).expect("client");
    Some(TestApp {
        app: client.as_app(&creds.app_key, &creds.app_secret),
        client,
        base,
        creds,
        state,
        config,
        shutdown: Some(tx),
        server: Some(handle),
        _guard: guard,
    })
}

type Running = (
    String,
    AppState,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

fn run(server: Server) -> Running {
    let base = format!("http://{}", server.local_addr());
    let state = server.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        server
            .run_until(async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
    });
    (base, state, tx, handle)
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, |_| {}).await
}

impl TestApp {
    /// A user created by the app, and a client acting as them.
    pub async fn user(&self, username: &str) -> (User, Client) {
        let user = self
            .app
            .create_user(&CreateUser {
                username: Some(username.into()),
                email: Some(format!("{username}@example.com")),
                ..Default::default()
            })
            .await
            .expect("create user");
        let token = self
            .app
            .mint_token(&user.id, None)
            .await
            .expect("mint token");
        (user, self.client.as_user(&token.token))
    }

    /// Another app on the same server, as its backend.
    pub async fn second_app(&self) -> Client {
        let creds = self
            .state
            .accounts
            .create_app("second")
            .await
            .expect("create app");
        self.client.as_app(&creds.app_key, &creds.app_secret)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server gracefully and starts a new one on the same store (a new
    /// port); the app's credentials stay valid.
    pub async fn restart(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.expect("server task");
        }
        let server = Server::build(self.config.clone())
            .await
            .expect("server restarts");
        assert!(server.first_app().is_none(), "a restart creates no app");
        let (base, state, tx, handle) = run(server);
        self.client = Client::new(&base).expect("client");
        self.app = self
            .client
            .as_app(&self.creds.app_key, &self.creds.app_secret);
        self.base = base;
        self.state = state;
        self.shutdown = Some(tx);
        self.server = Some(handle);
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.expect("server task");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Awaits an outcome the server reaches asynchronously (a worker's delivery): asks
/// `probe` on every tick until it answers `Some`, failing after 15 s.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(25));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        ticks.tick().await;
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
    }
}

/// Asserts that `err` is an API error with this status and code.
#[track_caller]
pub fn assert_problem(err: tidings_client::Error, status: u16, code: &str) {
    match err {
        tidings_client::Error::Api {
            status: s, problem, ..
        } => {
            assert_eq!((s, problem.code.as_str()), (status, code), "{problem:?}");
            assert_eq!(problem.status, status);
            assert!(
                problem.kind.starts_with("urn:tidings:problem:"),
                "{problem:?}"
            );
            assert!(!problem.title.is_empty());
        }
        other => panic!("expected a {status} {code} problem, got {other:?}"),
    }
}

/// Runs each listed `async fn(TestApp)` of the calling module on every backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await.expect("sqlite");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await else {
                        eprintln!("skipped: TIDINGS_TEST_DATABASE_URL is not set");
                        return;
                    };
                    super::$name(app).await;
                }
            )*
        }
    };
}

/// The `tidings` binary running as a child process, as an operator runs it.
pub struct BinaryNode {
    pub child: std::process::Child,
    pub addr: String,
    /// Its stdout, line by line.
    pub stdout: std::sync::mpsc::Receiver<String>,
}

impl BinaryNode {
    /// `tidings serve` on a free port over `data_dir`, with `env` added to a clean
    /// environment (the test's own `TIDINGS_*` settings do not leak in).
    pub fn start(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"));
        for (k, _) in std::env::vars() {
            if k.starts_with("TIDINGS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("TIDINGS_AUTH__ARGON2_MEMORY_KIB", "1024");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tidings serve");
        let (err_tx, err_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        // Drains stderr for the child's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let (out_tx, stdout) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = out_tx.send(line);
            }
        });
        let addr = loop {
            let line = err_rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("the server reports its address");
            if line.contains("tidings listening") {
                let start = line.find("addr=").expect("addr field") + 5;
                break line[start..]
                    .split_whitespace()
                    .next()
                    .expect("addr value")
                    .to_owned();
            }
        };
        Self {
            child,
            addr,
            stdout,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&format!("http://{}", self.addr)).expect("client")
    }

    /// The first app's credentials, which a first start prints on stdout before it
    /// says it listens.
    pub fn first_app(&self) -> tidings_client::AppCredentials {
        let line = self
            .stdout
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("first start prints the first app");
        serde_json::from_str(&line).expect("credentials as JSON")
    }

    /// SIGTERM; the exit status and whatever it printed on stdout that was not read.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        // The reader thread ends at the closed pipe, which ends this iterator.
        let rest = self.stdout.iter().collect();
        (exit, rest)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }
}

impl Drop for BinaryNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Starts a `tidings serve` child process for a scenario, on a fresh data dir and a
//! free port, and reads the first app's credentials it prints.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use tidings_client::AppCredentials;

pub struct ServerProcess {
    child: Child,
    pub base_url: String,
    pub creds: AppCredentials,
    _dir: tempfile::TempDir,
}

/// The `tidings` binary built beside this one.
pub fn sibling_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("tidings");
    if !path.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p tidings-server`",
            path.display()
        );
    }
    Ok(path)
}

impl ServerProcess {
    pub fn start(extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut cmd = Command::new(sibling_binary()?);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("TIDINGS_LOG", "warn,tidings=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("spawning tidings serve")?;
        // Own the child from here on, so every early return below kills it.
        let mut guard = ChildGuard(Some(child));
        let stdout = guard.child().stdout.take().context("stdout")?;
        let stderr = guard.child().stderr.take().context("stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("tidings listening") {
                    let _ = tx.send(line);
                }
            }
        });
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first)?;
        let creds: AppCredentials =
            serde_json::from_str(first.trim()).context("first app credentials")?;
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .context("server did not start")?;
        let start = line.find("addr=").context("addr in log line")? + 5;
        let addr = line[start..]
            .split_whitespace()
            .next()
            .context("addr")?
            .to_owned();
        Ok(Self {
            child: guard.disarm(),
            base_url: format!("http://{addr}"),
            creds,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Kills the child unless disarmed: a start that fails half-way leaves no server.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn child(&mut self) -> &mut Child {
        self.0
            .as_mut()
            .expect("guard holds the child until disarmed")
    }

    fn disarm(mut self) -> Child {
        self.0.take().expect("guard holds the child until disarmed")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

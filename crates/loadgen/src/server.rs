//! Child processes for scenarios: a `tidings serve` on a fresh data dir and a free
//! port (reading the first app's credentials it prints), and helper binaries such as
//! the fake APNs. A child is killed when its handle drops, also when a start fails
//! half-way.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use tidings_client::AppCredentials;

/// A binary built beside this one (same target directory).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} not found: build it with `cargo build --release --workspace`",
            path.display()
        );
    }
    Ok(path)
}

/// Kills and reaps its child on drop.
pub struct ChildProcess(Child);

impl ChildProcess {
    /// Starts `path` with `env` and returns it with the first line it prints on stdout.
    pub fn start_reading_line(
        path: PathBuf,
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Self, String)> {
        Self::start_with_args_reading_line(path, &[], env)
    }

    /// As [`Self::start_reading_line`], with command-line arguments.
    pub fn start_with_args_reading_line(
        path: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Self, String)> {
        let mut cmd = Command::new(path);
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = ChildProcess(cmd.spawn().context("spawning a helper process")?);
        let stdout = child.0.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        Ok((child, line.trim().to_owned()))
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // SIGTERM first so a server can close its store cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

pub struct ServerProcess {
    child: ChildProcess,
    pub base_url: String,
    pub creds: AppCredentials,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    pub fn start(extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir, extra_env)
    }

    fn start_in(dir: tempfile::TempDir, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut cmd = Command::new(sibling_binary("tidings")?);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("TIDINGS_LOG", "warn,tidings=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = ChildProcess(cmd.spawn().context("spawning tidings serve")?);
        let stdout = child.0.stdout.take().context("stdout")?;
        let stderr = child.0.stderr.take().context("stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("tidings listening") {
                    let _ = tx.send(line);
                } else if line.contains("ERROR") {
                    eprintln!("server: {line}");
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
            child,
            base_url: format!("http://{addr}"),
            creds,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

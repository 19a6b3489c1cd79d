//! A real `redis-server` for this crate's tests and its integration tests (Debian's
//! package; `.ci/run` installs it). Not part of the proxy.

use std::time::{Duration, Instant};

/// A real `redis-server` on a free loopback port, stopped when dropped.
pub struct Redis {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Redis {
    /// Starts one, with `password` when given, and waits until it listens.
    pub fn start(password: Option<&str>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = std::process::Command::new("redis-server");
        command.args(["--bind", "127.0.0.1", "--port", &port.to_string()]);
        command.args(["--save", "", "--appendonly", "no"]);
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    /// Session storage settings naming it (key prefix `test:`).
    pub fn config(&self) -> runconfig::middleware::sessions::ValidatedSessionRedis {
        runconfig::middleware::sessions::ValidatedSessionRedis {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            db: 0,
            key_prefix: "test:".to_owned(),
            password_env: None,
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The Kubernetes API client of the operator and the proxy: kube's, over connections
//! with `TCP_NODELAY`, TCP keep-alive and `TCP_USER_TIMEOUT`, and the timeout their
//! watches ask for.
//!
//! kube 5 connects with hyper's `HttpConnector` as it comes: Nagle's algorithm on
//! (kube-rs issue #2056) and no keep-alive. With Nagle on, a stdio attach frame written
//! while the one before is not yet acknowledged waits for the API server's delayed ACK,
//! up to 40 ms; the API server, the kubelet and the runtime (Go) all set `TCP_NODELAY`.
//! Without keep-alive, a connection that died unseen (the API server's host lost, a
//! load balancer dropping its state, a partition) is noticed by nothing: an idle pooled
//! connection takes the next request into the void, a watch goes silent, and a request
//! in flight is retransmitted for about 15 minutes by Linux's defaults. Here it fails
//! about 20 s after its last received byte, busy or idle ([`KEEPALIVE_IDLE`],
//! [`UNACKNOWLEDGED`]), and kube's watchers open it again.
//!
//! kube's `Client::new` over a connector of one's own is the way kube documents for
//! such a client. Its layers are kube's default client's, in kube's order (base URI,
//! the retry of 429/503/504 when `Config::default_retry`, auth, extra headers), less
//! kube's debug-level HTTP spans. Two configurations keep kube's own client, without
//! these options: a proxy between client and API server (`proxy_url`; kube's builder
//! knows HTTP CONNECT and SOCKS5) and an exec credential plugin (kube's builder tracks
//! the expiry of a client certificate the plugin issues, which only it can read).
//! Neither is how the operator or the proxy runs in a cluster.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::client::retry::RetryPolicy;
use kube::runtime::watcher;
use kube::{Client, Config};
use tower::retry::RetryLayer;

/// How long one watch is asked to stay open: the API server's own choice for a client
/// that names none (`--min-request-timeout`, 1800 s by default, times 1 to 2), drawn
/// per watch so that watches started together re-open apart. kube asks for 290 s
/// unless told: the operator's ~25 watches all re-opened in the same second every
/// 290 s on an idle cluster, and at a thousand proxies with three or four watches each
/// that is about 700 re-opened a minute across the cluster instead of about 80.
pub const WATCH_TIMEOUT: std::ops::RangeInclusive<u32> = 1800..=3600;

/// Idle time before the first keep-alive probe on a connection to the API server, the
/// time between probes, and the probes left unanswered before the kernel fails the
/// connection (Linux's own defaults take over two hours). With [`UNACKNOWLEDGED`] set,
/// the kernel fails an idle connection at the first probe 20 s after its last byte
/// arrived: about 20 s. That bounds a request the API server had acknowledged when the
/// path died (an MCP call written to a stdio attach stream; a watch): no bytes are in
/// flight, only the answer is missing, and only keep-alive notices (with 30 s and 10 s
/// the chaos suite saw such calls wait 45 to 56 s). 15 s is Go's default keep-alive; a
/// probe is an empty segment and its acknowledgement, on a connection quiet that long.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_PROBES: u32 = 3;

/// How long bytes sent to the API server may stay unacknowledged before the kernel
/// fails the connection (`TCP_USER_TIMEOUT`, Linux). Keep-alive probes only an idle
/// connection: one with a request in flight whose path died is retransmitted for about
/// 15 minutes by Linux's defaults. Seen on the harness by dropping the API server's
/// packets to one proxy: its watches were opened again in 48 s, its attach stream not
/// at all. 20 s: a live peer acknowledges within a second even when its reader is slow
/// (the window closes, the probes of it are acknowledged), and an MCP client waiting on
/// a call gets its error well before its own timeout (the chaos suite's is 30 s).
/// Linux only (the pods); a build elsewhere relies on keep-alive alone.
#[cfg(target_os = "linux")]
pub const UNACKNOWLEDGED: Duration = Duration::from_secs(20);

/// `config` with this watch's own timeout drawn from [`WATCH_TIMEOUT`].
pub fn with_watch_timeout(config: watcher::Config) -> watcher::Config {
    config.timeout(fastrand::u32(WATCH_TIMEOUT))
}

/// A watch's default configuration, with its own timeout drawn from [`WATCH_TIMEOUT`].
pub fn watch_config() -> watcher::Config {
    with_watch_timeout(watcher::Config::default())
}

/// A client for the cluster `Config::infer` finds (in a pod: its ServiceAccount).
pub async fn infer() -> Result<Client, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    client(config)
}

/// A client for `config`, its connections set up as the module says. The connect,
/// read and write timeouts of `config` (and `reset_reader_on_write`) apply as in kube.
pub fn client(config: Config) -> Result<Client, kube::Error> {
    if config.proxy_url.is_some() || config.auth_info.exec.is_some() {
        return Client::try_from(config);
    }
    let https = config.rustls_https_connector_with_connector(connector())?;
    let mut timeouts = hyper_timeout::TimeoutConnector::new(https);
    timeouts.set_connect_timeout(config.connect_timeout);
    timeouts.set_read_timeout(config.read_timeout);
    timeouts.set_write_timeout(config.write_timeout);
    timeouts.set_reset_reader_on_write(config.reset_reader_on_write);
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build::<_, kube::client::Body>(timeouts);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(client);
    Ok(Client::new(service, config.default_namespace))
}

/// hyper's connector with the socket options of the module.
fn connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(KEEPALIVE_IDLE));
    http.set_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    http.set_keepalive_retries(Some(KEEPALIVE_PROBES));
    #[cfg(target_os = "linux")]
    http.set_tcp_user_timeout(Some(UNACKNOWLEDGED));
    http
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_watch_asks_for_its_own_half_hour_to_hour() {
        let drawn: std::collections::BTreeSet<u32> =
            (0..64).filter_map(|_| watch_config().timeout).collect();
        assert!(drawn.iter().all(|t| WATCH_TIMEOUT.contains(t)), "{drawn:?}");
        assert!(
            drawn.len() > 1,
            "the watches would re-open together: {drawn:?}"
        );
    }

    /// The keep-alive timer of an idle pooled connection, as the kernel shows it in
    /// `/proc/net/tcp` (`tr` 2: the keep-alive timer; `tm->when` in USER_HZ ticks).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn an_idle_connection_to_the_api_server_has_its_keepalive_timer_running()
    -> Result<(), Box<dyn std::error::Error>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let (mut conn, peer) = listener.accept().await?;
            let mut request = vec![0; 4096];
            let _ = conn.read(&mut request).await?;
            let body = r#"{"major":"1","minor":"36","gitVersion":"v1.36.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(answer.as_bytes()).await?;
            // The connection stays open (and idle in the client's pool) while the test
            // reads its timer.
            Ok::<_, std::io::Error>((conn, peer))
        });
        let client = client(Config::new(url.parse()?))?;
        let version = client.apiserver_version().await?;
        assert_eq!(version.minor, "36");
        let (_conn, peer) = server.await??;

        let local = format!("0100007F:{:04X}", peer.port());
        let tcp = std::fs::read_to_string("/proc/net/tcp")?;
        let line = tcp
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(local.as_str()))
            .ok_or_else(|| format!("no socket {local} in /proc/net/tcp:\n{tcp}"))?;
        let timer = line.split_whitespace().nth(5).unwrap_or_default();
        let (kind, when) = timer.split_once(':').unwrap_or_default();
        assert_eq!(
            kind, "02",
            "no keep-alive timer on the idle connection: {line}"
        );
        let ticks = u64::from_str_radix(when, 16)?;
        assert!(
            ticks <= KEEPALIVE_IDLE.as_secs() * 100,
            "the first probe is more than {KEEPALIVE_IDLE:?} away: {line}"
        );
        Ok(())
    }
}

//! MCP sessions shared by the proxy replicas in Redis (`spec.sessionStorage`, provider
//! `redis`), so that any replica routes any streamable HTTP session to the pod it lives
//! on, and a session outlives the replica that created it.
//!
//! One key per session, `<keyPrefix>thv-session:<namespace>/<server>:<session id>`,
//! whose value is the pod instance ([`super::PodTarget::instance`]) it is pinned to. A
//! key lives for [`super::SESSION_IDLE`] after the last use any replica reported.
//!
//! Redis is an aid, never a dependency of serving: a replica reads it only for a session
//! it does not know, and when Redis cannot be reached (or is slow) that request is
//! answered as without it (404, initialize again), the failure logged. Legacy SSE
//! sessions are not shared: their responses travel on a stream that lives in one replica.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use runconfig::middleware::sessions::ValidatedSessionRedis;

/// How long one Redis command may take, connecting included, before the request goes on
/// without it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(1500);

/// Why the shared sessions could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The password variable the RunConfig names is not set.
    #[error(
        "proxy.session_redis.password_env: the environment variable {0} is not set (or not UTF-8)"
    )]
    PasswordUnset(String),
    /// The Redis client rejected its settings.
    #[error("proxy.session_redis: {0}")]
    Client(#[from] redis::RedisError),
}

/// The sessions of one MCP server, in Redis.
pub struct SharedSessions {
    redis: ConnectionManager,
    /// `<keyPrefix>thv-session:<namespace>/<server>:`.
    prefix: String,
    /// Key lifetime.
    ttl: Duration,
    health: Health,
}

/// The password the RunConfig's `password_env` names; none when it names none.
pub fn password_from_env(config: &ValidatedSessionRedis) -> Result<Option<String>, SharedError> {
    match &config.password_env {
        Some(env) => std::env::var(env)
            .map(Some)
            .map_err(|_| SharedError::PasswordUnset(env.clone())),
        None => Ok(None),
    }
}

/// A connection to the RunConfig's Redis, made on first use and remade after it breaks;
/// a command that takes longer than [`COMMAND_TIMEOUT`] fails.
pub fn connection(
    config: &ValidatedSessionRedis,
    password: Option<String>,
) -> Result<ConnectionManager, SharedError> {
    let mut settings = redis::RedisConnectionInfo::default().set_db(config.db);
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    let info = redis::IntoConnectionInfo::into_connection_info(redis::ConnectionAddr::Tcp(
        config.host.clone(),
        config.port,
    ))?
    .set_redis_settings(settings);
    let client = redis::Client::open(info)?;
    let manager = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(2));
    Ok(ConnectionManager::new_lazy_with_config(client, manager)?)
}

/// Whether Redis answered last time: an outage is logged once, and its end.
pub struct Health {
    /// `host:port`.
    address: String,
    failing: AtomicBool,
}

impl Health {
    /// For the RunConfig's Redis.
    pub fn new(config: &ValidatedSessionRedis) -> Self {
        Self {
            address: format!("{}:{}", config.host, config.port),
            failing: AtomicBool::new(false),
        }
    }

    /// The value of a command that answered in time; `None` (logged when an outage
    /// starts) otherwise. `consequence` says what the failure means for requests.
    pub fn outcome<T>(
        &self,
        what: &str,
        consequence: &str,
        result: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        let error = match result {
            Ok(Ok(value)) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(redis = %self.address, "Redis answers again");
                }
                return Some(value);
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {COMMAND_TIMEOUT:?}"),
        };
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(redis = %self.address, %error, "{what} failed; {consequence}");
        }
        None
    }

    /// `host:port`, for logs.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl SharedSessions {
    /// Settings from the RunConfig, the password from the variable it names; the
    /// connection is made on first use and remade after it breaks.
    pub fn from_env(
        config: &ValidatedSessionRedis,
        namespace: &str,
        server: &str,
        ttl: Duration,
    ) -> Result<Self, SharedError> {
        Self::new(config, password_from_env(config)?, namespace, server, ttl)
    }

    /// [`Self::from_env`] with the password given.
    pub fn new(
        config: &ValidatedSessionRedis,
        password: Option<String>,
        namespace: &str,
        server: &str,
        ttl: Duration,
    ) -> Result<Self, SharedError> {
        Ok(Self {
            redis: connection(config, password)?,
            prefix: format!("{}thv-session:{namespace}/{server}:", config.key_prefix),
            ttl,
            health: Health::new(config),
        })
    }

    fn key(&self, session: &str) -> String {
        format!("{}{session}", self.prefix)
    }

    fn outcome<T>(
        &self,
        what: &str,
        result: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        self.health.outcome(
            &format!("session storage: {what}"),
            "until Redis answers, each proxy replica knows only the sessions created through it",
            result,
        )
    }

    /// Checks that Redis answers (logged either way); for start-up.
    pub async fn ping(&self) -> bool {
        let mut redis = self.redis.clone();
        let result = tokio::time::timeout(COMMAND_TIMEOUT, async move {
            redis::cmd("PING").query_async::<String>(&mut redis).await
        })
        .await;
        let answered = self.outcome("PING", result).is_some();
        if answered {
            tracing::info!(redis = %self.health.address(), "session storage: sessions are shared in Redis");
        }
        answered
    }

    /// The pod instance `session` is pinned to, if a replica recorded it. A command that
    /// fails is tried once more before the session counts as unknown (the answer a
    /// replica alone gives, 404): a blip — a command lost while the connection is
    /// remade, one slow answer under load — must not end a client's session.
    pub async fn get(&self, session: &str) -> Option<String> {
        let mut answer = self.read(session).await;
        if !matches!(answer, Ok(Ok(_))) {
            answer = self.read(session).await;
        }
        self.outcome("reading a session", answer).flatten()
    }

    async fn read(
        &self,
        session: &str,
    ) -> Result<redis::RedisResult<Option<String>>, tokio::time::error::Elapsed> {
        let mut redis = self.redis.clone();
        let key = self.key(session);
        tokio::time::timeout(COMMAND_TIMEOUT, async move {
            redis.get::<_, Option<String>>(key).await
        })
        .await
    }

    /// Records that `session` is pinned to `instance`; a command that fails (a broken
    /// connection) is tried once more, as in [`Self::get`]: unrecorded, the session
    /// would be unknown to the other replicas. (One that times out has usually been
    /// queued, and Redis still runs it.)
    pub async fn put(&self, session: &str, instance: &str) {
        let mut answer = self.write(session, instance).await;
        if !matches!(answer, Ok(Ok(()))) {
            answer = self.write(session, instance).await;
        }
        self.outcome("recording a session", answer);
    }

    async fn write(
        &self,
        session: &str,
        instance: &str,
    ) -> Result<redis::RedisResult<()>, tokio::time::error::Elapsed> {
        let mut redis = self.redis.clone();
        let key = self.key(session);
        let ttl = self.ttl.as_secs().max(1);
        let instance = instance.to_owned();
        tokio::time::timeout(COMMAND_TIMEOUT, async move {
            redis.set_ex::<_, _, ()>(key, instance, ttl).await
        })
        .await
    }

    /// Keeps `session` for another key lifetime.
    pub async fn touch(&self, session: &str) {
        let mut redis = self.redis.clone();
        let key = self.key(session);
        let ttl = i64::try_from(self.ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let result = tokio::time::timeout(COMMAND_TIMEOUT, async move {
            redis.expire::<_, ()>(key, ttl).await
        })
        .await;
        self.outcome("refreshing a session", result);
    }

    /// Forgets `session` (ended by the client or the server).
    pub async fn remove(&self, session: &str) {
        let mut redis = self.redis.clone();
        let key = self.key(session);
        let result = tokio::time::timeout(
            COMMAND_TIMEOUT,
            async move { redis.del::<_, ()>(key).await },
        )
        .await;
        self.outcome("forgetting a session", result);
    }
}

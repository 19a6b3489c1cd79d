//! Prometheus metrics of the controllers (reconciles, errors by reason, durations), of
//! the admission webhook (reviews by kind and result, review latency) and of leader
//! election (whether this replica runs the controllers).

use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// The operator's metrics, registered in their own registry.
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    admission_requests: IntCounterVec,
    admission_duration: HistogramVec,
    leader: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "thv_operator_reconcile_total",
                "Reconciles started, by controller",
            ),
            &["controller"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "thv_operator_reconcile_errors_total",
                "Reconciles that failed, by controller and reason",
            ),
            &["controller", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "thv_operator_reconcile_duration_seconds",
                "Reconcile duration, by controller",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["controller"],
        )?;
        let admission_requests = IntCounterVec::new(
            Opts::new(
                "thv_operator_admission_requests_total",
                "Admission reviews, by kind and result (allowed, denied, error)",
            ),
            &["kind", "result"],
        )?;
        // Reviews take about a millisecond; the API server gives up after 5 s.
        let admission_duration = HistogramVec::new(
            HistogramOpts::new(
                "thv_operator_admission_duration_seconds",
                "Time from request to answer of an admission review, by kind",
            )
            .buckets(vec![
                0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0,
            ]),
            &["kind"],
        )?;
        let leader = IntGauge::new(
            "thv_operator_leader",
            "1 while this replica runs the controllers (holds the leader-election Lease, or runs without leader election), else 0",
        )?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(admission_requests.clone()))?;
        registry.register(Box::new(admission_duration.clone()))?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            errors,
            duration,
            admission_requests,
            admission_duration,
            leader,
        })
    }

    /// Records that this replica now runs the controllers.
    pub fn set_leader(&self) {
        self.leader.set(1);
    }

    /// Counts an admission review of `kind` that ended with `result`, taking `seconds`.
    pub fn admission(&self, kind: &str, result: &str, seconds: f64) {
        self.admission_requests
            .with_label_values(&[kind, result])
            .inc();
        self.admission_duration
            .with_label_values(&[kind])
            .observe(seconds);
    }

    /// Counts a reconcile and returns a timer that records its duration when dropped.
    pub fn reconcile(&self, controller: &'static str) -> ReconcileTimer<'_> {
        self.reconciles.with_label_values(&[controller]).inc();
        ReconcileTimer {
            metrics: self,
            controller,
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn error(&self, controller: &'static str, reason: &str) {
        self.errors.with_label_values(&[controller, reason]).inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// Records a reconcile's duration when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    controller: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .with_label_values(&[self.controller])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

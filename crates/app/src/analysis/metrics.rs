//! Long analyses on `/metrics`.

use atlas_analytics::gistar::GiStarError;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts};

/// Long analyses on `/metrics`, labelled by analysis (`emerging`, `hotspots`):
/// `atlas_analyses_running`, those computing now, and `atlas_analyses_abandoned_total`, those
/// stopped part-way because their caller went away.
#[derive(Clone)]
pub struct AnalysisMetrics {
    running: IntGaugeVec,
    abandoned: IntCounterVec,
}

impl AnalysisMetrics {
    /// The analyses counted, each with its samples from the start (zero until one runs).
    const ANALYSES: [&'static str; 2] = ["emerging", "hotspots"];

    /// Registers the gauge and the counter with `registry`.
    ///
    /// # Errors
    /// When the registry refuses them (a second registration).
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let running = IntGaugeVec::new(
            Opts::new("atlas_analyses_running", "Long analyses computing now"),
            &["analysis"],
        )?;
        let abandoned = IntCounterVec::new(
            Opts::new(
                "atlas_analyses_abandoned_total",
                "Long analyses stopped part-way because their client disconnected",
            ),
            &["analysis"],
        )?;
        for analysis in Self::ANALYSES {
            running.with_label_values(&[analysis]);
            abandoned.with_label_values(&[analysis]);
        }
        registry.register(Box::new(running.clone()))?;
        registry.register(Box::new(abandoned.clone()))?;
        Ok(Self { running, abandoned })
    }

    /// Counts one `analysis` in `atlas_analyses_running` until the guard is dropped.
    pub(super) fn start(&self, analysis: &'static str) -> Running {
        let gauge = self.running.with_label_values(&[analysis]);
        gauge.inc();
        Running(gauge)
    }

    /// Counts and logs one `analysis` stopped because its caller has gone, when `err` says so.
    pub(super) fn note_stopped(&self, analysis: &'static str, err: &GiStarError) {
        if *err == GiStarError::Stopped {
            self.abandoned.with_label_values(&[analysis]).inc();
            tracing::info!(analysis, "an analysis stopped: its client has gone");
        }
    }
}

/// Counts an analysis in `atlas_analyses_running` until dropped, however it ends.
pub(super) struct Running(IntGauge);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.dec();
    }
}

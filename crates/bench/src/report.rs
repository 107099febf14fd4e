//! The bench's figures and how they are printed (a table for people, `--json` for machines).

use serde::Serialize;

use crate::lists::ListFigure;
use crate::PhaseResult;

/// One measured phase at one size and page size, with its ratios.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub phase: String,
    pub records: u64,
    pub n: usize,
    pub page: u32,
    pub elapsed_ms: f64,
    /// CPU time (user + system) of the phase's process over the measured section.
    pub cpu_ms: f64,
    pub records_per_sec: f64,
    pub peak_rss_mb: f64,
    /// `name → value`: engine rate / ceiling rate, incremental time / full time, or the
    /// fault profile's overhead over the clean run.
    pub ratios: Vec<(String, f64)>,
    /// What the engine was told to wait (backoff, Retry-After, pacing), left out of the
    /// fault profile's overhead.
    pub waited_ms: f64,
    pub note: String,
}

impl Figure {
    pub fn new(phase: &str, n: usize, page: u32, r: &PhaseResult) -> Figure {
        Figure {
            phase: phase.into(),
            records: r.records,
            n,
            page,
            elapsed_ms: r.elapsed_ms,
            cpu_ms: r.cpu_ms,
            records_per_sec: rate(r),
            peak_rss_mb: r.peak_rss_kb as f64 / 1024.0,
            ratios: Vec::new(),
            waited_ms: r.waited_ms,
            note: r.note.clone(),
        }
    }

    /// This phase's rate as a fraction of another's.
    pub fn ratio_to(mut self, name: &str, base: &PhaseResult) -> Figure {
        let b = rate(base);
        if b > 0.0 {
            self.ratios
                .push((format!("of {name} ceiling"), self.records_per_sec / b));
        }
        self
    }

    /// This phase's elapsed time as a fraction of another's.
    pub fn ratio_time_to(mut self, name: &str, base: &PhaseResult) -> Figure {
        if base.elapsed_ms > 0.0 {
            self.ratios
                .push((format!("time of {name}"), self.elapsed_ms / base.elapsed_ms));
        }
        self
    }

    /// Extra time over a clean run, beyond the waits the engine was configured to make: wall
    /// time, and CPU time, which a shared machine's stalls do not stretch.
    pub fn overhead_over(mut self, name: &str, clean: &PhaseResult) -> Figure {
        // Per record, since failed records and retried pages change what a run processes.
        let per = |ms: f64, n: u64| ms / n.max(1) as f64;
        if clean.elapsed_ms > 0.0 {
            let beyond_waits = self.elapsed_ms - self.waited_ms;
            let clean_ms = clean.elapsed_ms - clean.waited_ms;
            let over = per(beyond_waits, self.records) / per(clean_ms, clean.records) - 1.0;
            self.ratios.push((format!("overhead over {name}"), over));
        }
        if clean.cpu_ms > 0.0 {
            let over = per(self.cpu_ms, self.records) / per(clean.cpu_ms, clean.records) - 1.0;
            self.ratios
                .push((format!("CPU overhead over {name}"), over));
        }
        self
    }
}

fn rate(r: &PhaseResult) -> f64 {
    if r.elapsed_ms > 0.0 {
        r.records as f64 / (r.elapsed_ms / 1e3)
    } else {
        0.0
    }
}

/// The short-token pull: token requests made against what the token lifetime needs.
#[derive(Debug, Clone, Serialize)]
pub struct TokenFigure {
    pub records: u64,
    pub page: u32,
    pub token_lifetime_s: u64,
    pub latency_ms: u64,
    pub elapsed_ms: f64,
    /// Grants the provider answered during the run (client credentials and refreshes).
    pub token_requests: u64,
    /// Run time / token lifetime: about how many tokens the run's length needs.
    pub run_time_per_lifetime: f64,
    /// The most token requests a run this long should make: one per (lifetime − refresh
    /// margin, 10 % of the lifetime), plus the first.
    pub token_requests_bound: u64,
    pub note: String,
}

impl TokenFigure {
    pub fn new(
        n: usize,
        page: u32,
        lifetime_s: u64,
        latency_ms: u64,
        token_requests: u64,
        r: &PhaseResult,
    ) -> TokenFigure {
        let lifetime_ms = lifetime_s as f64 * 1e3;
        let usable_ms = lifetime_ms * 0.9;
        TokenFigure {
            records: r.records.min(n as u64),
            page,
            token_lifetime_s: lifetime_s,
            latency_ms,
            elapsed_ms: r.elapsed_ms,
            token_requests,
            run_time_per_lifetime: r.elapsed_ms / lifetime_ms,
            token_requests_bound: (r.elapsed_ms / usable_ms).ceil() as u64 + 1,
            note: r.note.clone(),
        }
    }
}

/// Everything one bench run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: String,
    pub pulls: Vec<Figure>,
    pub lists: Vec<ListFigure>,
    pub tokens: Option<TokenFigure>,
    pub total_secs: f64,
}

impl Report {
    pub fn new() -> Report {
        Report {
            machine: machine(),
            pulls: Vec::new(),
            lists: Vec::new(),
            tokens: None,
            total_secs: 0.0,
        }
    }

    pub fn push(&mut self, f: Figure) {
        self.pulls.push(f);
    }

    #[allow(clippy::print_stdout)]
    pub fn print(&self, json: bool) {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(self).unwrap_or_else(|e| e.to_string())
            );
            return;
        }
        println!("machine: {}", self.machine);
        println!();
        println!(
            "| phase | records | page | elapsed | CPU | records/s | peak RSS | ratios |\n|---|---:|---:|---:|---:|---:|---:|---|"
        );
        for f in &self.pulls {
            let ratios = f
                .ratios
                .iter()
                .map(|(k, v)| format!("{:.0} % {k}", v * 100.0))
                .collect::<Vec<_>>()
                .join("; ");
            println!(
                "| {} | {} | {} | {:.2} s | {:.2} s | {:.0} | {:.1} MB | {} |",
                f.phase,
                f.records,
                f.page,
                f.elapsed_ms / 1e3,
                f.cpu_ms / 1e3,
                f.records_per_sec,
                f.peak_rss_mb,
                ratios
            );
        }
        if !self.lists.is_empty() {
            println!();
            println!("| list | rows | case | samples | p50 | p99 |\n|---|---:|---|---:|---:|---:|");
            for l in &self.lists {
                println!(
                    "| {} | {} | {} | {} | {:.2} ms | {:.2} ms |",
                    l.list, l.rows, l.case, l.samples, l.p50_ms, l.p99_ms
                );
            }
        }
        if let Some(t) = &self.tokens {
            println!();
            println!(
                "| short tokens | records | page | latency | run time | run time / {} s | token requests | at most |\n|---|---:|---:|---:|---:|---:|---:|---:|",
                t.token_lifetime_s
            );
            println!(
                "| {} s tokens | {} | {} | {} ms | {:.2} s | {:.1} | {} | {} |",
                t.token_lifetime_s,
                t.records,
                t.page,
                t.latency_ms,
                t.elapsed_ms / 1e3,
                t.run_time_per_lifetime,
                t.token_requests,
                t.token_requests_bound
            );
        }
        println!();
        for f in self.pulls.iter().filter(|f| !f.note.is_empty()) {
            println!("{} ({} records, page {}): {}", f.phase, f.n, f.page, f.note);
        }
        println!("total bench time: {:.1} s", self.total_secs);
    }
}

/// CPU model and core count, for the table's heading.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores, {}", std::env::consts::OS)
}

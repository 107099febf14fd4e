//! `syncdesk-bench`: pull throughput, peak memory and list latency of the engine, each next to
//! a ceiling measured in the same run (docs/performance.md).
//!
//! The parent process starts the sandbox provider and runs every measured phase in a child
//! process of its own (`--phase …`), so each phase's peak RSS is its own and not the
//! sandbox's or an earlier phase's.

mod lists;
mod phases;
mod report;
mod team;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use serde::{Deserialize, Serialize};
use syncdesk_sandbox::{Entity, Faults, RetryAfter, Sandbox, SandboxConfig};

use crate::report::{Figure, Report, TokenFigure};

/// The short-token pull: the sandbox's tokens last this long…
pub const TOKEN_TTL_SECS: u64 = 2;
/// …every data request takes this long…
pub const TOKEN_LATENCY_MS: u64 = 30;
/// …and pages hold this many records.
pub const TOKEN_PAGE: u32 = 100;

#[derive(Debug, Parser)]
#[command(
    name = "syncdesk-bench",
    about = "Syncdesk benchmarks (docs/performance.md)"
)]
pub struct Args {
    /// Record counts to pull, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub sizes: Vec<usize>,
    /// Page sizes, comma-separated (1..=1000).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub pages: Vec<u32>,
    /// Rows per table for the list-latency benchmark (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    pub list_rows: usize,
    /// Skip the fault profile.
    #[arg(long)]
    pub no_faults: bool,
    /// Records for the short-token pull (2-second tokens, 30 ms latency, page 100); 0 skips it.
    #[arg(long, default_value_t = 10_000)]
    pub token_records: usize,
    /// Run the clean and the fault-profile pulls this many times each, alternating, and
    /// report the fastest of each: a shared machine's stalls only ever add time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub repeat: u32,
    /// Team mode's figures instead (docs/performance.md): a full pull on SQLite and on
    /// PostgreSQL, then 1, 2 and 4 workers sharing one database. The URL is a PostgreSQL
    /// server's maintenance database; scripts/bench-team.sh starts a private one.
    #[arg(long, value_name = "URL")]
    pub team: Option<String>,
    /// With --team: records of the full pull, jobs the workers share, records per job,
    /// worker counts.
    #[arg(long, default_value_t = 100_000)]
    pub team_pull: usize,
    #[arg(long, default_value_t = 64)]
    pub team_jobs: usize,
    #[arg(long, default_value_t = 2_000)]
    pub team_job_records: usize,
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub team_workers: Vec<usize>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Only write the list benchmark's rows (--list-rows of each) into DIR/syncdesk.db, a
    /// database the desktop app opens with SYNCDESK_DATA_DIR=DIR, and exit.
    #[arg(long, value_name = "DIR")]
    pub seed_lists: Option<PathBuf>,
    /// Internal: run one phase in this process and print its result as JSON.
    #[arg(long, hide = true)]
    pub phase: Option<String>,
    #[arg(long, hide = true)]
    pub url: Option<String>,
    #[arg(long, hide = true)]
    pub dir: Option<PathBuf>,
    #[arg(long, hide = true, default_value_t = 0)]
    pub n: usize,
    #[arg(long, hide = true, default_value_t = 1000)]
    pub page: u32,
    /// Which repetition of a full pull this is (its own database).
    #[arg(long, hide = true, default_value_t = 0)]
    pub run: u32,
}

/// What a phase reports back to the parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseResult {
    pub records: u64,
    pub elapsed_ms: f64,
    /// CPU time (user + system) of the measured section.
    #[serde(default)]
    pub cpu_ms: f64,
    pub peak_rss_kb: u64,
    /// Seconds the engine was told to wait (backoff, Retry-After), for the fault overhead.
    #[serde(default)]
    pub waited_ms: f64,
    #[serde(default)]
    pub note: String,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("syncdesk-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    for &p in &args.pages {
        if !(1..=1000).contains(&p) {
            return Err(format!("--pages: {p} is not within 1..=1000"));
        }
    }
    if args.sizes.contains(&0) {
        return Err("--sizes: sizes must be positive".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    if let Some(dir) = &args.seed_lists {
        if args.list_rows == 0 {
            return Err("--seed-lists needs --list-rows above 0".into());
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("--seed-lists {}: {e}", dir.display()))?;
        return rt.block_on(lists::seed(&dir.join("syncdesk.db"), args.list_rows));
    }
    if let Some(server) = &args.team {
        if args.team_workers.is_empty() || args.team_workers.contains(&0) || args.team_jobs == 0 {
            return Err("--team-workers and --team-jobs must be positive".into());
        }
        return rt.block_on(team::run(team::TeamArgs {
            server: server.clone(),
            pull_records: args.team_pull,
            jobs: args.team_jobs,
            job_records: args.team_job_records,
            workers: args.team_workers.clone(),
        }));
    }
    if let Some(phase) = args.phase.clone() {
        let r = rt.block_on(phases::run(&phase, &args))?;
        let out = serde_json::to_string(&r).map_err(|e| e.to_string())?;
        #[allow(clippy::print_stdout)]
        {
            println!("{out}");
        }
        return Ok(());
    }
    rt.block_on(orchestrate(&args))
}

/// Run `--phase name` in a child process and read its result.
fn child(
    phase: &str,
    url: &str,
    dir: &std::path::Path,
    n: usize,
    page: u32,
    run: u32,
) -> Result<PhaseResult, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args([
            "--phase",
            phase,
            "--url",
            url,
            "--n",
            &n.to_string(),
            "--page",
            &page.to_string(),
            "--run",
            &run.to_string(),
        ])
        .arg("--dir")
        .arg(dir)
        .output()
        .map_err(|e| format!("phase {phase}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "phase {phase} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim())
        .map_err(|e| format!("phase {phase}: bad result {line:?}: {e}"))
}

/// The faster of two runs of the same phase (the first run when there is only one).
fn fastest(best: Option<PhaseResult>, r: PhaseResult) -> PhaseResult {
    match best {
        Some(b) if b.elapsed_ms <= r.elapsed_ms => b,
        _ => r,
    }
}

async fn orchestrate(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let mut report = Report::new();
    for &n in &args.sizes {
        for &page in &args.pages {
            let sandbox = Sandbox::start(SandboxConfig {
                customers: n,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("sandbox: {e}"))?;
            let url = sandbox.base_url();
            let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
            let dir = tmp.path();
            let run = |phase: &str, i: u32| child(phase, &url, dir, n, page, i);
            let faults = || {
                sandbox.set_faults(Faults {
                    bad_record_rate: 0.01,
                    error_rate: 0.02,
                    rate_limit_rate: 0.01,
                    retry_after: RetryAfter::Seconds(0),
                    ..Default::default()
                })
            };

            let provider = run("provider", 0)?;
            let store = run("store", 0)?;
            // Clean and fault-profile pulls alternate, so a slow stretch of a shared machine
            // falls on both; the fastest of each is kept.
            let mut full: Option<PhaseResult> = None;
            let mut faulty: Option<PhaseResult> = None;
            for i in 0..args.repeat {
                full = Some(fastest(full, run("engine-full", i)?));
                if !args.no_faults {
                    faults();
                    faulty = Some(fastest(faulty, run("engine-faults", i)?));
                    sandbox.set_faults(Faults::default());
                }
            }
            let full = full.ok_or("no clean pull ran")?;
            sandbox.touch_fraction(Entity::Customers, 0.01);
            let incr = run("engine-incremental", 0)?;
            let mut row = vec![
                Figure::new("provider ceiling", n, page, &provider),
                Figure::new("store ceiling", n, page, &store),
                Figure::new("engine full", n, page, &full)
                    .ratio_to("provider", &provider)
                    .ratio_to("store", &store),
                Figure::new("engine incremental 1%", n, page, &incr).ratio_time_to("full", &full),
            ];
            if let Some(faulty) = faulty {
                row.push(
                    Figure::new("engine faults", n, page, &faulty).overhead_over("clean", &full),
                );
            }
            sandbox.shutdown().await;
            for f in row {
                report.push(f);
            }
        }
    }
    if args.token_records > 0 {
        report.tokens = Some(short_tokens(args.token_records).await?);
    }
    if args.list_rows > 0 {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        report.lists = lists::measure(tmp.path(), args.list_rows).await?;
    }
    report.total_secs = started.elapsed().as_secs_f64();
    report.print(args.json);
    Ok(())
}

/// A full pull on a sandbox whose tokens last [`TOKEN_TTL_SECS`] and whose data requests take
/// [`TOKEN_LATENCY_MS`]: how many token requests the run made, next to how many its length
/// needs (run time / lifetime). One per page would mean each refresh came too early.
async fn short_tokens(n: usize) -> Result<TokenFigure, String> {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: n,
        token_ttl_secs: TOKEN_TTL_SECS,
        faults: Faults {
            latency_ms: TOKEN_LATENCY_MS,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .map_err(|e| format!("sandbox: {e}"))?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    sandbox.reset_stats();
    let r = child(
        "engine-tokens",
        &sandbox.base_url(),
        tmp.path(),
        n,
        TOKEN_PAGE,
        0,
    )?;
    let stats = sandbox.stats();
    sandbox.shutdown().await;
    Ok(TokenFigure::new(
        n,
        TOKEN_PAGE,
        TOKEN_TTL_SECS,
        TOKEN_LATENCY_MS,
        stats.token_grants + stats.refresh_grants + stats.failed_grants,
        &r,
    ))
}

//! The staging benchmark (issue 7): what a user waits for and pays for, as ratios measured side
//! by side in one run so they hold on a noisy machine.
//!
//! `ci/benchmark [--quick]` runs it (or `cargo bench --bench staging [-- --quick]`). Every
//! figure goes through the product as a user meets it: the buildpack zip made by `package`,
//! staged by `stage` (empty cache, then the same cache with the app unchanged), started by
//! `launch`; plus `bin/supply` and `bin/detect` run straight from the unpacked zip. The
//! numerator and denominator of each ratio are measured in the same iteration, one after the
//! other, and each is the median of the iterations. The workload is the `workload` channel of
//! `fixtures/conda/build.py` (small and large). The full run writes the generated part of
//! `docs/benchmarks.md`; `--quick` (small env only) writes `target/benchmarks-quick.md`.
//!
//! `cargo test --all-targets` builds this target and runs it without `--bench`: it then returns
//! at once, so the test suite never pays for it.
//!
//! This file holds the run; each group of figures has its module (`level.rs`: figures 1, 2, 3,
//! 5 and 7; `download.rs`: 4; `tools.rs`: 6), `summary.rs` reads the staging log's summary,
//! `report.rs` makes the table and `document.rs` writes it into `docs/benchmarks.md`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

mod document;
mod download;
mod level;
mod report;
mod summary;
mod tools;

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{distinct_tree_bytes, median, parse_duration, summary_duration};
use document::{Machine, render, write_generated};
use download::bench_download;
use level::{
    DropletSizes, LevelSamples, bench_level, package, unzip, workload_fixtures, workload_manifest,
};
use report::Report;
use summary::{peak_memory, restore_step, summary_time};
use support::{BINARY, LOCAL_CF, Server, StageOptions};
use tools::bench_tools;

/// What python-buildpack bakes into an environment: its staging deps dir, rewritten at every
/// start by a profile.d script (the peer baseline of figure 3).
const PEER_STAGING_DEPS_IDX: &str = "/tmp/contents1234567890/deps/0";
const RUNTIME_DEPS_IDX: &str = "/home/vcap/deps/0";
const APP_COMMAND: &str = "python -c 'print(1)'";

struct Config {
    quick: bool,
    runs: usize,
    levels: Vec<Level>,
    download_mib: u64,
    detect_runs: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Small,
    Large,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Large => "large",
        }
    }
}

fn main() {
    if !common::benchmarking() {
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let config = if quick {
        Config {
            quick,
            runs: 3,
            levels: vec![Level::Small],
            download_mib: 100,
            detect_runs: 50,
        }
    } else {
        Config {
            quick,
            runs: 5,
            levels: vec![Level::Small, Level::Large],
            download_mib: 500,
            detect_runs: 100,
        }
    };
    let started = Instant::now();
    progress(if quick {
        "quick benchmark: the small env"
    } else {
        "full benchmark: the small and large envs"
    });
    let machine = Machine::read();
    let scratch = tempfile::Builder::new()
        .prefix("conda-bp-bench-")
        .tempdir_in(std::env::temp_dir())
        .expect("a scratch directory");
    let mut report = Report::default();
    for &level in &config.levels {
        bench_level(&config, level, scratch.path(), &mut report);
    }
    bench_download(&config, scratch.path(), &mut report);
    bench_tools(&config, scratch.path(), &mut report);
    report.memory_rows();
    let elapsed = started.elapsed();
    let load_after = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let table = report.table();
    println!("\n{table}");
    let command = std::env::var("BENCH_COMMAND").unwrap_or_else(|_| {
        format!(
            "cargo bench --bench staging{}",
            if quick { " -- --quick" } else { "" }
        )
    });
    let generated = render(
        &config,
        &machine,
        &command,
        &table,
        &report,
        elapsed,
        &load_after,
    );
    let target = if config.quick {
        support::repo().join("target/benchmarks-quick.md")
    } else {
        support::repo().join("docs/benchmarks.md")
    };
    write_generated(&target, &generated);
    println!(
        "benchmark finished in {:.0} s; figures written to {}",
        elapsed.as_secs_f64(),
        target.display()
    );
}

/// A progress line on stderr, with the time since the benchmark started.
fn progress(text: &str) {
    static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let elapsed = STARTED.get_or_init(Instant::now).elapsed();
    eprintln!("[{:>4.0} s] {text}", elapsed.as_secs_f64());
}

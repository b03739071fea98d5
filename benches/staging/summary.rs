//! Reading the staging log's summary.

use super::*;

/// `Time: 250ms in all (...)`: the whole supply phase, as the buildpack measured it.
pub(crate) fn summary_time(log: &str) -> Duration {
    summary_duration(log).expect("the summary's Time line")
}

/// `(restoring the environment 113ms)` in the summary's Time line.
pub(crate) fn restore_step(log: &str) -> Duration {
    let line = log
        .lines()
        .find(|line| line.contains("Time: "))
        .expect("the Time line");
    let text = between(line, "restoring the environment ", ")")
        .or_else(|| between(line, "restoring the environment ", ","))
        .expect("the restore step");
    parse_duration(text).expect("a duration")
}

/// `Peak memory: conda 35.0 MiB, buildpack 29.3 MiB`: the buildpack's own, in KiB.
pub(crate) fn peak_memory(log: &str) -> u64 {
    let line = log
        .lines()
        .find(|line| line.contains("Peak memory:"))
        .expect("the Peak memory line");
    let text = line
        .split("buildpack ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("the buildpack's peak memory");
    parse_size(text.trim()) / 1024
}

pub(crate) fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let length = text[from..].find(end)?;
    Some(&text[from..from + length])
}

/// `512 B`, `3.4 KiB`, `29.3 MiB` (`log::format_size`), in bytes.
pub(crate) fn parse_size(text: &str) -> u64 {
    let (number, unit) = text.split_once(' ').expect("a size with a unit");
    let scale: f64 = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("unknown unit {unit}"),
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (number.parse::<f64>().unwrap() * scale) as u64;
    bytes
}

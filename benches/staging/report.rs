//! The report: each figure's row, its goal, and the notes under the table.

use super::*;

pub(crate) fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

pub(crate) fn ms(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis >= 10_000.0 {
        format!("{:.1} s", millis / 1000.0)
    } else if millis >= 100.0 {
        format!("{millis:.0} ms")
    } else {
        format!("{millis:.1} ms")
    }
}

#[allow(clippy::cast_precision_loss)]
pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

#[derive(Clone, Copy)]
pub(crate) enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Reported, no goal set.
    None,
}

pub(crate) struct Row {
    pub(crate) figure: String,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
    pub(crate) detail: String,
    pub(crate) goal: Goal,
}

impl Row {
    pub(crate) fn verdict(&self) -> &'static str {
        match self.goal {
            Goal::AtMost(limit) if self.value <= limit => "pass",
            Goal::AtLeast(limit) if self.value >= limit => "pass",
            Goal::None => "-",
            _ => "MISS",
        }
    }

    pub(crate) fn value_text(&self) -> String {
        match self.unit {
            "" => format!("{:.3}", self.value),
            "ms" => format!("{:.1} ms", self.value),
            unit => format!("{:.1} {unit}", self.value),
        }
    }

    pub(crate) fn goal_text(&self) -> String {
        let number = |value: f64| match self.unit {
            "" => format!("{value}"),
            unit => format!("{value} {unit}"),
        };
        match self.goal {
            Goal::AtMost(limit) => format!("<= {}", number(limit)),
            Goal::AtLeast(limit) => format!(">= {}", number(limit)),
            Goal::None => "-".into(),
        }
    }
}

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    pub(crate) notes: Vec<String>,
    pub(crate) start_overhead: Vec<(Level, f64)>,
    pub(crate) memory: Vec<(Level, u64, u64)>,
}

impl Report {
    pub(crate) fn row(
        &mut self,
        figure: impl Into<String>,
        value: f64,
        unit: &'static str,
        goal: Goal,
    ) -> &mut Row {
        self.rows.push(Row {
            figure: figure.into(),
            value,
            unit,
            detail: String::new(),
            goal,
        });
        self.rows.last_mut().unwrap()
    }

    pub(crate) fn add_level(
        &mut self,
        level: Level,
        info: &serde_json::Value,
        samples: &LevelSamples,
        sizes: &DropletSizes,
        launches: usize,
    ) {
        let name = level.name();
        let workload = &info["workload"];
        self.notes.push(format!(
            "{name} env: {} packages, {} files, {} installed (the fixture's count); {} cold and \
             {} warm stagings, {} `bin/supply` and `cp` runs, {launches} starts per variant",
            workload["packages"],
            workload["files"],
            mib(workload["installed_bytes"].as_u64().unwrap_or(0)),
            samples.cold_stage.len(),
            samples.warm_stage.len(),
            samples.supply_wall.len(),
        ));
        let (cold, warm) = (median(&samples.cold_stage), median(&samples.warm_stage));
        let warm_supply = median(&samples.warm_supply);
        self.row(
            format!("1. warm restage / cold stage, `stage` end to end ({name})"),
            secs(warm) / secs(cold),
            "",
            Goal::AtMost(0.10),
        )
        .detail = format!(
            "warm {} / cold {}; of the warm, supply's own summary time {} and the rest \
             (zip unpack, app copy, finalize, release, the {} droplet.tgz) {}",
            ms(warm),
            ms(cold),
            ms(warm_supply),
            mib(sizes.droplet),
            ms(warm.saturating_sub(warm_supply))
        );
        let (cold, warm) = (median(&samples.cold_supply), median(&samples.warm_supply));
        self.row(
            format!("1. warm restage / cold stage, supply phase ({name})"),
            secs(warm) / secs(cold),
            "",
            Goal::AtMost(0.10),
        )
        .detail = format!("warm {} / cold {}", ms(warm), ms(cold));

        // A restore writes new files (nothing written into the environment later may reach
        // the cache), so its physical limit is a full copy; links are beside it.
        let (supply, cp_al, cp_a) = (
            median(&samples.supply_wall),
            median(&samples.cp_al),
            median(&samples.cp_a),
        );
        self.row(
            format!("2. warm `bin/supply` / `cp -a` of the env ({name})"),
            secs(supply) / secs(cp_a),
            "",
            Goal::AtMost(1.5),
        )
        .detail = format!(
            "supply {} / cp -a {} (cp -al {})",
            ms(supply),
            ms(cp_a),
            ms(cp_al)
        );
        let restore = median(&samples.supply_restore);
        self.row(
            format!("2. restore step alone / `cp -a` ({name})"),
            secs(restore) / secs(cp_a),
            "",
            Goal::AtMost(1.5),
        )
        .detail = format!("restore {} / cp -a {}", ms(restore), ms(cp_a));

        let (ours, direct, peer) = (
            median(&samples.launch_ours),
            median(&samples.python_direct),
            median(&samples.launch_peer),
        );
        let overhead = (secs(ours) - secs(direct)) * 1000.0;
        self.start_overhead.push((level, overhead));
        self.row(
            format!("3. start overhead over plain python ({name})"),
            overhead,
            "ms",
            Goal::AtMost(20.0),
        )
        .detail = format!(
            "launcher to first output {} - python alone {}; whole `launch` incl. unpack {}",
            ms(ours),
            ms(direct),
            ms(median(&samples.launch_total))
        );
        self.row(
            format!("3. peer: python-buildpack's start-time grep|sed ({name})"),
            (secs(peer) - secs(direct)) * 1000.0,
            "ms",
            Goal::None,
        )
        .detail = format!(
            "launcher to first output {} - python alone {}",
            ms(peer),
            ms(direct)
        );
        if let [(_, small), (_, large)] = self.start_overhead[..] {
            self.row(
                "3. start overhead, large - small (flat in env size)",
                large - small,
                "ms",
                Goal::AtMost(5.0),
            )
            .detail = format!("large {large:.1} ms - small {small:.1} ms");
        }

        #[allow(clippy::cast_precision_loss)]
        let ratio = sizes.added as f64 / sizes.environment as f64;
        self.row(
            format!("5. droplet bytes added / env size on disk ({name})"),
            ratio,
            "",
            Goal::AtMost(1.01),
        )
        .detail = format!(
            "{} in deps/ and profile.d/ / env {} in {} files; tar headers add {}; droplet.tgz {}",
            mib(sizes.added),
            mib(sizes.environment),
            sizes.files,
            mib(sizes.tar_overhead),
            mib(sizes.droplet)
        );
        #[allow(clippy::cast_precision_loss)]
        let ratio = sizes.cache as f64 / sizes.environment as f64;
        self.row(
            format!("5. app cache / env size on disk ({name})"),
            ratio,
            "",
            Goal::None,
        )
        .detail = format!(
            "cache {} (the environment's tar.zst and its metadata) / env {}",
            mib(sizes.cache),
            mib(sizes.environment)
        );
        self.memory.push((
            level,
            median(&samples.cold_memory),
            median(&samples.warm_memory),
        ));
    }

    pub(crate) fn download(
        &mut self,
        mib_count: u64,
        product: &[Duration],
        curl: &[Duration],
        curl_wall: &[Duration],
        curl_alone: &[Duration],
    ) {
        let (ours, theirs) = (median(product), median(curl));
        #[allow(clippy::cast_precision_loss)]
        let rate = |duration: Duration| mib_count as f64 / secs(duration);
        self.row(
            format!("4. download + sha256 throughput / curl | sha256sum ({mib_count} MiB)"),
            secs(theirs) / secs(ours),
            "",
            Goal::AtLeast(0.9),
        )
        .detail = format!(
            "{:.0} MiB/s ({}) / {:.0} MiB/s ({}; its wall {}); curl -o /dev/null alone {:.0} MiB/s",
            rate(ours),
            ms(ours),
            rate(theirs),
            ms(theirs),
            ms(median(curl_wall)),
            rate(median(curl_alone))
        );
    }

    pub(crate) fn tools(
        &mut self,
        packaging: &[Duration],
        zipping: &[Duration],
        zip_bytes: u64,
        detecting: &[Duration],
        rejecting: &[Duration],
        executable_only: &[Duration],
    ) {
        let (detect, reject) = (median(detecting), median(rejecting));
        self.row(
            "6. `bin/detect` wall time",
            secs(detect) * 1000.0,
            "ms",
            Goal::AtMost(5.0),
        )
        .detail = format!(
            "a conda app {}; not a conda app {}; the executable without the sh wrapper {} \
             (median of {})",
            ms(detect),
            ms(reject),
            ms(median(executable_only)),
            detecting.len()
        );
        let (package, zip) = (median(packaging), median(zipping));
        self.row(
            "6. `package --cached` / `zip -r` of the same files",
            secs(package) / secs(zip),
            "",
            Goal::AtMost(1.2),
        )
        .detail = format!(
            "package {} / zip -r {} ({} zip)",
            ms(package),
            ms(zip),
            mib(zip_bytes)
        );
    }

    pub(crate) fn memory_rows(&mut self) {
        for (level, cold, warm) in self.memory.clone() {
            #[allow(clippy::cast_precision_loss)]
            let value = cold as f64 / 1024.0;
            self.row(
                format!("7. buildpack peak memory, cold supply ({})", level.name()),
                value,
                "MiB",
                Goal::None,
            )
            .detail = format!(
                "warm supply {}; the summary's `Peak memory: ... buildpack` line \
                 (getrusage of the buildpack's process; conda has its own figure)",
                mib(warm * 1024)
            );
        }
    }

    pub(crate) fn table(&self) -> String {
        let mut text = String::from(
            "| figure | value | goal | verdict | absolute (medians) |\n|---|---:|---|---|---|\n",
        );
        for row in &self.rows {
            let cell = |text: &str| text.replace('|', "\\|");
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} |",
                cell(&row.figure),
                row.value_text(),
                row.goal_text(),
                row.verdict(),
                cell(&row.detail)
            );
        }
        text
    }
}

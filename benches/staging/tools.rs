//! Figure 6: detect, and packaging the cached buildpack against zip -r.

use super::*;

pub(crate) fn bench_tools(config: &Config, scratch: &Path, report: &mut Report) {
    progress("== detect and package --cached");
    let fixtures = workload_fixtures(Level::Small);
    let info: serde_json::Value =
        serde_json::from_slice(&fs::read(fixtures.join("fixtures.json")).unwrap()).unwrap();
    let dir = scratch.join("tools");
    fs::create_dir_all(&dir).unwrap();
    let server = Server::start(&fixtures);
    let manifest = workload_manifest(&info, &server.url(), &dir);
    let downloads = dir.join("download-cache");
    // The first run fills the download cache; the timed ones find every installer there, as
    // a release pipeline packaging again does.
    let zip = package(&manifest, &dir.join("first"), Some(&downloads));
    let files = unzip(&zip, &dir.join("files"));
    let zip_bytes = fs::metadata(&zip).unwrap().len();

    let mut packaging = Vec::new();
    let mut zipping = Vec::new();
    for run in 0..config.runs {
        let output = dir.join(format!("package-{run}"));
        let started = Instant::now();
        package(&manifest, &output, Some(&downloads));
        packaging.push(started.elapsed());
        let _ = fs::remove_dir_all(&output);

        let target = dir.join(format!("zip-{run}.zip"));
        let started = Instant::now();
        let status = Command::new("zip")
            .arg("-q")
            .arg("-r")
            .arg(&target)
            .arg(".")
            .current_dir(&files)
            .status()
            .expect("zip runs (ci/benchmark installs it)");
        zipping.push(started.elapsed());
        assert!(status.success(), "zip -r failed");
        let _ = fs::remove_file(&target);
    }

    let app = fixtures.join("apps/workload");
    let not_an_app = dir.join("not-an-app");
    fs::create_dir_all(&not_an_app).unwrap();
    let detect = files.join("bin/detect");
    let executable = files.join("bin/conda-buildpack");
    let mut detecting = Vec::new();
    let mut rejecting = Vec::new();
    let mut executable_only = Vec::new();
    for _ in 0..config.detect_runs {
        detecting.push(timed_status(Command::new(&detect).arg(&app), 0));
        rejecting.push(timed_status(Command::new(&detect).arg(&not_an_app), 1));
        executable_only.push(timed_status(
            Command::new(&executable).arg("detect").arg(&app),
            0,
        ));
    }
    report.tools(
        &packaging,
        &zipping,
        zip_bytes,
        &detecting,
        &rejecting,
        &executable_only,
    );
}

pub(crate) fn timed_status(command: &mut Command, expected: i32) -> Duration {
    let started = Instant::now();
    let status = command.stdout(Stdio::null()).status().unwrap();
    let wall = started.elapsed();
    assert_eq!(status.code(), Some(expected), "{command:?}");
    wall
}

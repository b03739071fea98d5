//! The stacks issue's stories that only the real programs can tell: real conda 26.7.1 solving
//! for the target stack's glibc in `vendor`, and a cflinuxfs5 cached zip staging the pydata app
//! air-gapped on Cloud Foundry's real builder. Without `../shared/real` each says so and skips.

use crate::support;

use std::path::Path;

use crate::support::{Packaging, Server, StageOptions, launch, package, scratch, stage, stdout};

fn on(stack: &str, server: &Server) -> StageOptions {
    let mut options = StageOptions::with_channels(server);
    options.stack = Some(stack.into());
    options
}

/// A package with two builds: 2.0 needs glibc 2.38 (newer than this machine's Debian 12 has,
/// so only conda's override can make it eligible), 1.0 needs 2.17.
fn glibc_demo_channel(root: &Path) {
    use sha2::Digest as _;
    let subdir = root.join("channels/glibc-demo/linux-64");
    std::fs::create_dir_all(&subdir).unwrap();
    std::fs::create_dir_all(root.join("channels/glibc-demo/noarch")).unwrap();
    std::fs::write(
        root.join("channels/glibc-demo/noarch/repodata.json"),
        r#"{"info":{"subdir":"noarch"},"packages":{},"packages.conda":{}}"#,
    )
    .unwrap();
    let mut records = serde_json::Map::new();
    for (version, glibc) in [("1.0", "2.17"), ("2.0", "2.38")] {
        let file = format!("glibcdemo-{version}-0.tar.bz2");
        let payload = format!("glibcdemo {version}\n");
        let index = serde_json::json!({
            "name": "glibcdemo", "version": version, "build": "0", "build_number": 0,
            "depends": [format!("__glibc >={glibc}")], "subdir": "linux-64",
            "arch": "x86_64", "platform": "linux", "license": "MIT",
        });
        let paths = serde_json::json!({"paths_version": 1, "paths": [{
            "_path": "share/glibcdemo.txt", "path_type": "hardlink",
            "sha256": format!("{:x}", sha2::Sha256::digest(payload.as_bytes())),
            "size_in_bytes": payload.len(),
        }]});
        let mut tar = tar::Builder::new(bzip2::write::BzEncoder::new(
            Vec::new(),
            bzip2::Compression::default(),
        ));
        for (name, bytes) in [
            ("info/index.json", index.to_string().into_bytes()),
            ("info/paths.json", paths.to_string().into_bytes()),
            ("info/files", b"share/glibcdemo.txt\n".to_vec()),
            ("share/glibcdemo.txt", payload.into_bytes()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes.as_slice())
                .unwrap();
        }
        let bytes = tar.into_inner().unwrap().finish().unwrap();
        std::fs::write(subdir.join(&file), &bytes).unwrap();
        let mut record = index.as_object().unwrap().clone();
        record.insert(
            "md5".into(),
            format!("{:x}", md5::Md5::digest(&bytes)).into(),
        );
        record.insert(
            "sha256".into(),
            format!("{:x}", sha2::Sha256::digest(&bytes)).into(),
        );
        record.insert("size".into(), bytes.len().into());
        records.insert(file, record.into());
    }
    std::fs::write(
        subdir.join("repodata.json"),
        serde_json::json!({"info": {"subdir": "linux-64"}, "packages": records, "packages.conda": {}})
            .to_string(),
    )
    .unwrap();
}

/// `vendor` solves with real conda 26.7.1 for the stack the app will run on: conda receives
/// the stack's glibc as `__glibc`, so a build needing a newer glibc than the stack has is not
/// chosen, and one the stack can run is, whatever the developer's own machine has.
#[test]
fn vendor_solves_with_real_conda_for_the_target_stacks_glibc() {
    if support::real_conda::world().is_none() {
        return;
    }
    let dir = scratch();
    let root = dir.path().join("root");
    glibc_demo_channel(&root);
    std::os::unix::fs::symlink(
        support::world::real_kit().unwrap().join("conda/channel"),
        root.join("channels/conda-forge"),
    )
    .unwrap();
    let server = Server::start(&root);
    let (home, conda) = support::real_conda::developer_miniforge(dir.path());
    let vendored_for = |stack: Option<&str>| {
        let app = dir
            .path()
            .join(format!("app-{}", stack.unwrap_or("default")));
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(
            app.join("environment.yml"),
            "channels: [glibc-demo]\ndependencies:\n  - glibcdemo\n",
        )
        .unwrap();
        let args = stack
            .map(|stack| vec!["--stack", stack])
            .unwrap_or_default();
        let output = support::vendor_ok(&app, &conda, &server, &home, &args);
        let said = format!(
            "{}{}",
            stdout(&output),
            String::from_utf8_lossy(&output.stderr)
        );
        let files = support::names(&app.join("vendor/linux-64"));
        (files, said, app)
    };

    let (files, said, app) = vendored_for(Some("cflinuxfs5"));
    assert_eq!(files, ["glibcdemo-2.0-0.tar.bz2"], "{said}");
    assert!(
        said.contains("Vendoring for glibc 2.39 (cflinuxfs5)"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(app.join("vendor/stacks.txt"))
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .collect::<Vec<_>>(),
        ["cflinuxfs5"]
    );

    // By default: every current stack, so the lowest glibc among them (cflinuxfs4's 2.35).
    let (files, said, _) = vendored_for(None);
    assert_eq!(files, ["glibcdemo-1.0-0.tar.bz2"], "{said}");
    assert!(
        said.contains("Vendoring for glibc 2.35 (cflinuxfs4 and cflinuxfs5)"),
        "{said}"
    );
}

/// The goal of the stacks issue, on the real programs: a cflinuxfs5 cached zip built by
/// `package` stages the pydata app (real numpy, scipy, pandas, scikit-learn, flask), vendored for
/// cflinuxfs5 by real conda 26.7.1, on Cloud Foundry's real builder with the network cut.
#[test]
fn the_cflinuxfs5_cached_zip_stages_the_pydata_app_air_gapped_on_the_real_programs() {
    let Some(world) = support::real_conda::world() else {
        return;
    };
    support::world::use_the_real_platform();
    let dir = scratch();
    let server = Server::start(world);
    let cached = package(
        &server,
        dir.path(),
        &Packaging {
            cached: true,
            stack: Some("cflinuxfs5".into()),
            ..support::real_conda::packaging(
                &server,
                dir.path(),
                support::real_conda::Miniconda::Plain,
            )
        },
    );
    let app = support::real_conda::pydata_app(dir.path());
    let (home, conda) = support::real_conda::developer_miniforge(dir.path());
    support::vendor_ok(&app, &conda, &server, &home, &["--stack", "cflinuxfs5"]);
    let offline = on("cflinuxfs5", &server).offline();
    let staging = stage(&app, &[&cached], &offline, &dir.path().join("offline"));
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("       Copy [")
        .assert_log_contains("packages from vendor/, installed offline from a local channel");
    let run = launch(
        &staging.droplet(),
        "python -c 'import numpy, scipy, pandas, sklearn, flask; print(numpy.__version__, sklearn.__version__)'",
        &[],
    );
    assert!(
        stdout(&run).contains("2.2.6 1.9.1"),
        "{}{}",
        stdout(&run),
        String::from_utf8_lossy(&run.stderr)
    );
}

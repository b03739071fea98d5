//! Packaging: the buildpack zipped by its own `package` command against the fixture server's
//! manifest, and the stand-in buildpacks of the multi-buildpack stories.

use super::*;

/// The repository's manifest with every installer's URI and sha256 swapped for the fixture
/// installer of the same name and version, served by `server`. Defaults, deprecation dates and
/// the file list stay the real ones.
pub(crate) fn fixture_manifest(server: &Server, into: &Path) -> PathBuf {
    fixture_manifest_edited(server, into, None)
}

fn fixture_manifest_edited(
    server: &Server,
    into: &Path,
    edit: Option<fn(&mut serde_yaml_ng::Value)>,
) -> PathBuf {
    let fixtures = fixtures();
    let text = fs::read_to_string(repo().join("manifest.yml")).unwrap();
    let mut manifest: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    for dependency in manifest["dependencies"].as_sequence_mut().unwrap() {
        let name = dependency["name"].as_str().unwrap().to_string();
        let version = dependency["version"].as_str().unwrap().to_string();
        let installer = fixtures.installer(&name, &version);
        let file = installer["file"].as_str().unwrap();
        dependency["uri"] = format!("{}/installers/{file}", server.url()).into();
        dependency["sha256"] = installer["sha256"].as_str().unwrap().into();
    }
    if let Some(edit) = edit {
        edit(&mut manifest);
    }
    fs::create_dir_all(into).unwrap();
    let path = into.join("fixture-manifest.yml");
    fs::write(&path, serde_yaml_ng::to_string(&manifest).unwrap()).unwrap();
    path
}

/// How to package.
#[derive(Default, Clone)]
pub(crate) struct Packaging {
    pub(crate) cached: bool,
    pub(crate) stack: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) cache_dir: Option<PathBuf>,
    /// A change to the fixture manifest before packaging (say, credentials in the URIs).
    pub(crate) edit_manifest: Option<fn(&mut serde_yaml_ng::Value)>,
    /// A whole manifest instead of the fixture one (the real-conda world's).
    pub(crate) manifest: Option<PathBuf>,
}

impl Packaging {
    /// The cached zip, as an operator of an offline foundation uploads it.
    pub(crate) fn cached() -> Self {
        Self {
            cached: true,
            ..Self::default()
        }
    }
}

/// Packages the buildpack with `conda-buildpack package` against `server`'s fixtures.
pub(crate) fn package(server: &Server, into: &Path, options: &Packaging) -> PathBuf {
    let manifest = match &options.manifest {
        Some(manifest) => manifest.clone(),
        None => fixture_manifest_edited(server, into, options.edit_manifest),
    };
    let output = into.join("zips");
    let mut command = Command::new(BINARY);
    command
        .arg("package")
        .arg("--manifest")
        .arg(&manifest)
        .arg("--source")
        .arg(repo())
        .arg("--output")
        .arg(&output);
    if options.cached {
        command.arg("--cached").arg("--cache-dir").arg(
            options
                .cache_dir
                .clone()
                .unwrap_or_else(|| into.join("download-cache")),
        );
    }
    if let Some(stack) = &options.stack {
        command.arg("--stack").arg(stack);
    }
    if let Some(version) = &options.version {
        command.arg("--buildpack-version").arg(version);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "package failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    PathBuf::from(path)
}

/// Zips the buildpack folder `source` into `target` with its files' Unix modes.
pub(crate) fn zip_buildpack_dir(source: &Path, target: &Path) {
    use std::os::unix::fs::MetadataExt;
    let source = source.to_path_buf();
    let mut writer = zip::ZipWriter::new(fs::File::create(target).unwrap());
    let mut pending = vec![source.clone()];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if entry.path().is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    for file in files {
        let name = file
            .strip_prefix(&source)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mode = fs::metadata(&file).unwrap().mode() & 0o777;
        let options = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        writer.start_file(name, options).unwrap();
        writer.write_all(&fs::read(&file).unwrap()).unwrap();
    }
    writer.finish().unwrap();
}

/// Zips a stand-in buildpack from `fixtures/buildpacks/<name>` with its Unix modes, as an
/// operator's buildpack zip would carry them.
pub(crate) fn standin_buildpack(name: &str, into: &Path) -> PathBuf {
    let source = repo().join("fixtures/buildpacks").join(name);
    let target = into.join(format!("{name}.zip"));
    zip_buildpack_dir(&source, &target);
    target
}

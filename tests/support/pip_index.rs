//! A small PEP 503 package index, served over loopback, for the pip half of vendoring:
//! `fastcalc` has a wheel for every platform a developer might fetch for (the CPython and the
//! manylinux that Cloud Foundry's stacks run, a newer glibc, macOS, another CPython) and needs
//! `tinydep`; `plainsdist` has only an sdist. And an app whose pip section needs them all, with
//! a `-r` file and the app itself as `-e .`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A PEP 517 backend in the project's own tree (no build requirements, so pip builds it with
/// no network): a wheel of the listed modules, or for `-e` a `.pth` to the source.
const BACKEND: &str = r#"import os, zipfile

NAME = "@NAME@"
VERSION = "@VERSION@"
REQUIRES = [@REQUIRES@]
MODULES = [@MODULES@]
HERE = os.path.dirname(os.path.abspath(__file__))

def _wheel(directory, files):
    dist_info = "%s-%s.dist-info" % (NAME, VERSION)
    files = dict(files)
    files[dist_info + "/METADATA"] = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (
        NAME, VERSION, "".join("Requires-Dist: %s\n" % r for r in REQUIRES))
    files[dist_info + "/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    name = "%s-%s-py3-none-any.whl" % (NAME, VERSION)
    with zipfile.ZipFile(os.path.join(directory, name), "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)
        wheel.writestr(dist_info + "/RECORD", "".join("%s,,\n" % p for p in files) + dist_info + "/RECORD,,\n")
    return name

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {m: open(os.path.join(HERE, m)).read() for m in MODULES})

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {"__editable__.%s.pth" % NAME: HERE + "\n"})
"#;

const PYPROJECT: &str = "[project]\nname = \"@NAME@\"\nversion = \"@VERSION@\"\n\n[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n";

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("{item:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The backend and pyproject.toml of a project named `name` at `dir`.
pub(crate) fn in_tree_project(
    dir: &Path,
    name: &str,
    version: &str,
    requires: &[&str],
    modules: &[&str],
) {
    fs::create_dir_all(dir).unwrap();
    let fill = |text: &str| {
        text.replace("@NAME@", name)
            .replace("@VERSION@", version)
            .replace("@REQUIRES@", &quoted(requires))
            .replace("@MODULES@", &quoted(modules))
    };
    fs::write(dir.join("backend.py"), fill(BACKEND)).unwrap();
    fs::write(dir.join("pyproject.toml"), fill(PYPROJECT)).unwrap();
}

fn wheel(dir: &Path, file_name: &str, files: &[(&str, &str)], requires: &[&str]) {
    let mut parts = file_name.split('-');
    let (name, version) = (parts.next().unwrap(), parts.next().unwrap());
    let dist_info = format!("{name}-{version}.dist-info");
    let tag = file_name
        .trim_end_matches(".whl")
        .splitn(3, '-')
        .nth(2)
        .unwrap()
        .to_string();
    let mut entries: Vec<(String, String)> = files
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect();
    let mut metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    for requirement in requires {
        metadata.push_str(&format!("Requires-Dist: {requirement}\n"));
    }
    entries.push((format!("{dist_info}/METADATA"), metadata));
    entries.push((
        format!("{dist_info}/WHEEL"),
        format!("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {tag}\n"),
    ));
    let mut record: String = entries
        .iter()
        .map(|(path, _)| format!("{path},,\n"))
        .collect();
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    entries.push((format!("{dist_info}/RECORD"), record));
    let mut writer = zip::ZipWriter::new(fs::File::create(dir.join(file_name)).unwrap());
    for (path, text) in entries {
        writer
            .start_file(path, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(text.as_bytes()).unwrap();
    }
    writer.finish().unwrap();
}

fn sdist(dir: &Path, name: &str, version: &str, requires: &[&str], module: (&str, &str)) {
    let source = dir.join(format!(".{name}-src"));
    in_tree_project(&source, name, version, requires, &[module.0]);
    fs::write(source.join(module.0), module.1).unwrap();
    let mut pkg_info = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    for requirement in requires {
        pkg_info.push_str(&format!("Requires-Dist: {requirement}\n"));
    }
    fs::write(source.join("PKG-INFO"), pkg_info).unwrap();
    let file = fs::File::create(dir.join(format!("{name}-{version}.tar.gz"))).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    tar.append_dir_all(format!("{name}-{version}"), &source)
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    fs::remove_dir_all(source).unwrap();
}

/// Builds the index under `into` for an environment running CPython `python`; returns the
/// root to serve (`Server::start`), whose `/simple` is the index.
pub(crate) fn build(into: &Path, python: (u32, u32)) -> PathBuf {
    let root = into.join("pip-index");
    let files = root.join("channels/files");
    fs::create_dir_all(&files).unwrap();
    let cp = format!("cp{}{}", python.0, python.1);
    let other = format!("cp{}{}", python.0, python.1 + 1);
    let fastcalc = |platform: &str| {
        format!(
            "import tinydep\nPLATFORM = {platform:?}\n\ndef answer():\n    return tinydep.double(21)\n"
        )
    };
    let variants = [
        (
            format!("fastcalc-1.0-{cp}-{cp}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            "manylinux2014",
        ),
        (
            format!("fastcalc-1.0-{cp}-{cp}-manylinux_2_36_x86_64.whl"),
            "manylinux_2_36",
        ),
        (
            format!("fastcalc-1.0-{cp}-{cp}-macosx_11_0_arm64.whl"),
            "macos",
        ),
        (
            format!("fastcalc-1.0-{other}-{other}-manylinux2014_x86_64.whl"),
            "another CPython",
        ),
    ];
    for (file_name, platform) in &variants {
        wheel(
            &files,
            file_name,
            &[("fastcalc/__init__.py", &fastcalc(platform))],
            &["tinydep>=1.0"],
        );
    }
    wheel(
        &files,
        "tinydep-1.0-py3-none-any.whl",
        &[("tinydep.py", "def double(x):\n    return 2 * x\n")],
        &[],
    );
    // What the vendored-offline sample requires, standing in for PyPI's.
    wheel(
        &files,
        "humanize-4.9.0-py3-none-any.whl",
        &[(
            "humanize/__init__.py",
            "def naturalsize(value):\n    return '%.1f MB' % (value / 1e6)\n",
        )],
        &[],
    );
    sdist(
        &files,
        "plainsdist",
        "1.0",
        &["tinydep"],
        ("plainsdist.py", "GREETING = 'built from its sdist'\n"),
    );
    let mut projects: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for entry in fs::read_dir(&files).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let project = name.split('-').next().unwrap().to_string();
        projects.entry(project).or_default().push(name);
    }
    for (project, names) in projects {
        let page = root.join("channels/simple").join(&project);
        fs::create_dir_all(&page).unwrap();
        let links: String = names
            .iter()
            .map(|name| format!("<a href=\"../../files/{name}\">{name}</a><br>\n"))
            .collect();
        fs::write(
            page.join("index.html"),
            format!("<!DOCTYPE html><html><body>\n{links}</body></html>\n"),
        )
        .unwrap();
    }
    root
}

/// An app with conda's Python and pip, and a pip section that needs the whole index: a
/// platform wheel with a dependency, a `-r` file naming an sdist-only project, and the app
/// itself as `-e .` (depending on `tinydep`).
pub(crate) fn app(into: &Path, index_url: &str, python: &str) -> PathBuf {
    let app = into.join("pip-vendored");
    fs::create_dir_all(&app).unwrap();
    fs::write(
        app.join("environment.yml"),
        format!(
            "name: pip-vendored\nchannels:\n  - conda-forge\ndependencies:\n  - python={python}\n  - pip\n  - pip:\n    - --index-url {index_url}\n    - fastcalc==1.0\n    - -r requirements-extra.txt\n    - -e .\n"
        ),
    )
    .unwrap();
    fs::write(app.join("requirements-extra.txt"), "plainsdist>=1.0\n").unwrap();
    fs::write(app.join("Procfile"), "web: python app.py\n").unwrap();
    in_tree_project(&app, "pipapp", "0.1", &["tinydep"], &["app.py"]);
    fs::write(
        app.join("app.py"),
        "import fastcalc, plainsdist, tinydep\nprint('fastcalc', fastcalc.PLATFORM, fastcalc.answer(), '|', plainsdist.GREETING, '|', tinydep.double(5))\n",
    )
    .unwrap();
    app
}

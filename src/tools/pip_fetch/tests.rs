use super::*;

#[test]
fn the_target_takes_every_manylinux_tag_its_glibc_accepts_and_no_newer() {
    use crate::stack;
    let on = |name| {
        Target::new(
            stack::Target::for_stack(stack::find(name).unwrap()),
            (3, 11),
        )
    };
    let fs3 = on("cflinuxfs3").platforms();
    assert_eq!(
        fs3.first().map(String::as_str),
        Some("manylinux_2_27_x86_64")
    );
    assert!(fs3.contains(&"manylinux2014_x86_64".to_string()));
    assert!(fs3.contains(&"manylinux1_x86_64".to_string()));
    assert!(!fs3.iter().any(|tag| tag.contains("_2_28_")));
    let fs5 = on("cflinuxfs5").platforms();
    assert_eq!(
        fs5.first().map(String::as_str),
        Some("manylinux_2_39_x86_64")
    );
    assert!(!fs5.iter().any(|tag| tag.contains("_2_40_")));
    // By default: every current stack at once, the lowest glibc among them.
    let current = Target::new(stack::every_current(), (3, 11));
    assert_eq!(
        current.platforms().first().map(String::as_str),
        Some("manylinux_2_35_x86_64")
    );
    assert_eq!(
        current.to_string(),
        "Linux x86_64, CPython 3.11, glibc 2.35 (cflinuxfs4 and cflinuxfs5)"
    );
}

#[test]
fn build_requirements_are_read_from_pyproject_or_defaulted() {
    assert_eq!(
        build_requirements(Some(
            "[project]\nname='x'\n[build-system]\nrequires = [\n  \"hatchling>=1.2\",\n  'cython'\n]\nbuild-backend = 'x'\n"
        )),
        vec!["hatchling>=1.2".to_string(), "cython".to_string()]
    );
    assert_eq!(
        build_requirements(Some("[build-system]\nrequires = []\n")),
        Vec::<String>::new()
    );
    assert_eq!(build_requirements(None)[0], "setuptools>=40.8.0");
}

#[test]
fn pip_output_says_what_is_missing_and_where_files_came_from() {
    let output = "Collecting fastcalc==1.0\n  Downloading http://127.0.0.1:9/simple/fastcalc/fastcalc-1.0-cp311-cp311-manylinux2014_x86_64.whl#sha256=ab (1.2 kB)\n  Downloading six-1.16.0-py2.py3-none-any.whl (11 kB)\nERROR: Could not find a version that satisfies the requirement plainsdist (from versions: none)\nERROR: No matching distribution found for plainsdist>=1.0\n";
    let mut sources = BTreeMap::new();
    record_sources(output, &mut sources);
    assert_eq!(
        sources["fastcalc-1.0-cp311-cp311-manylinux2014_x86_64.whl"],
        "http://127.0.0.1:9/simple/fastcalc/fastcalc-1.0-cp311-cp311-manylinux2014_x86_64.whl"
    );
    assert_eq!(sources["six-1.16.0-py2.py3-none-any.whl"], "PyPI");
    assert_eq!(
        crate::staging::pip::missing_distributions(output.lines())
            .first()
            .map(String::as_str),
        Some("plainsdist>=1.0")
    );
}

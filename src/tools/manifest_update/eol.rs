//! Python's end-of-life dates, which decide the deprecation dates proposed for the installer
//! lines that are built on one Python (`miniconda3-py39`, `miniconda2`).
//!
//! Source: the Python Developer's Guide, "Status of Python versions",
//! https://devguide.python.org/versions/ (read 2026-12). The guide gives past ends of life
//! as days and planned ones as months; a planned one is written here as the day five years
//! after the version's first release, which is the date PEP 602 plans.

/// Where the dates come from: the `link:` of every proposed deprecation entry.
pub(crate) const SOURCE: &str = "https://devguide.python.org/versions/";

/// `(major.minor, end of life as YYYY-MM-DD)`.
const END_OF_LIFE: &[(&str, &str)] = &[
    ("2.7", "2020-01-01"),
    ("3.5", "2020-09-30"),
    ("3.6", "2021-12-23"),
    ("3.7", "2023-06-27"),
    ("3.8", "2024-10-07"),
    ("3.9", "2025-10-31"),
    ("3.10", "2026-10-04"),
    ("3.11", "2027-10-24"),
    ("3.12", "2028-10-02"),
    ("3.13", "2029-10-07"),
    ("3.14", "2030-10-07"),
];

/// The end of life of Python `version` (`3.9`), if the table knows it.
pub(crate) fn end_of_life(version: &str) -> Option<jiff::civil::Date> {
    END_OF_LIFE
        .iter()
        .find(|(python, _)| *python == version)
        .and_then(|(_, date)| jiff::civil::Date::strptime("%Y-%m-%d", date).ok())
}

/// The Python an installer line is built on: `miniconda3-py39` is 3.9, `miniconda3-py310`
/// 3.10, `miniconda2` 2.7. Miniforge and the old unversioned `miniconda3` line follow the
/// newest Python, so they have none.
pub(crate) fn python_of_line(line: &str) -> Option<String> {
    if line == "miniconda2" {
        return Some("2.7".into());
    }
    let digits = line.strip_prefix("miniconda3-py")?;
    if digits.len() < 2 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let (major, minor) = digits.split_at(1);
    Some(format!("{major}.{minor}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_their_python() {
        assert_eq!(python_of_line("miniconda3-py39").as_deref(), Some("3.9"));
        assert_eq!(python_of_line("miniconda3-py310").as_deref(), Some("3.10"));
        assert_eq!(python_of_line("miniconda2").as_deref(), Some("2.7"));
        assert_eq!(python_of_line("miniforge3"), None);
        assert_eq!(python_of_line("miniconda3"), None);
        assert_eq!(python_of_line("miniconda3-pyx9"), None);
    }

    #[test]
    fn every_date_in_the_table_reads_and_they_grow_with_the_version() {
        let dates: Vec<_> = END_OF_LIFE
            .iter()
            .map(|(python, _)| end_of_life(python).expect(python))
            .collect();
        assert!(dates.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(end_of_life("3.9"), Some(jiff::civil::date(2025, 10, 31)));
        assert_eq!(end_of_life("4.0"), None);
    }
}

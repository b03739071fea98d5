//! Which solver conda runs. At conda-forge's size the choice decides whether a staging fits in
//! Cloud Foundry's memory: the classic solver needs over 4 GiB and ten minutes for a pydata app
//! that rattler solves in seconds under 1 GiB (docs/benchmarks.md). Unless the user or operator
//! names one (`CONDA_SOLVER`, or `solver:` in the app's `.condarc`), the fastest the installed
//! conda offers runs: rattler, then libmamba, then classic.
//!
//! What a conda offers is asked of that conda, never inferred from its version: an operator may
//! pin an installer this buildpack has never seen, with plugins added or taken away.

use std::path::Path;
use std::process::Command;

/// Fastest first.
const PREFERENCE: [&str; 3] = ["rattler", "libmamba", "classic"];

/// Asks conda's own plugin manager; a conda from before solver plugins (4.x, 22.x) has only
/// its classic solver. Python 2 reads it too (Miniconda2's base).
const PROBE: &str = "import json\n\
try:\n    from conda.base.context import context\n    \
solvers = sorted(context.plugin_manager.get_solvers())\n\
except Exception:\n    solvers = ['classic']\n\
print(json.dumps(solvers))\n";

/// The solver a staging uses, and why, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Solver {
    pub(crate) name: String,
    pub(crate) reason: String,
    /// Every solver the installed conda offers, fastest first.
    pub(crate) offered: Vec<String>,
}

impl Solver {
    /// The solvers to suggest when this one fails.
    pub(crate) fn others(&self) -> Vec<String> {
        self.offered
            .iter()
            .filter(|name| **name != self.name)
            .cloned()
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SolverError {
    #[error("{source_name} asks for {wanted}: the installed conda offers {}", offered.join(", "))]
    Unavailable {
        wanted: String,
        /// Where the choice came from: `CONDA_SOLVER`, `the app's .condarc`.
        source_name: String,
        offered: Vec<String>,
        installer: String,
    },
}

/// The solvers a conda offers, asked with `command`: its base's python (see [`python_of`]),
/// with the staging's environment. Fastest first; `None` when the question could not be asked,
/// and conda then runs with its own default, as it would without the buildpack.
pub(crate) fn offered(mut command: Command) -> Option<Vec<String>> {
    let output = command
        .env_remove("CONDA_SOLVER")
        .arg("-c")
        .arg(PROBE)
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let names: Vec<String> = serde_json::from_slice(output.stdout.trim_ascii()).ok()?;
    (!names.is_empty()).then(|| fastest_first(names))
}

/// The base's python (`bin/python3`, or Miniconda2's `bin/python`), which imports its conda.
pub(crate) fn python_of(base: &Path) -> Option<std::path::PathBuf> {
    ["bin/python3", "bin/python"]
        .iter()
        .map(|name| base.join(name))
        .find(|path| path.is_file())
}

fn fastest_first(mut names: Vec<String>) -> Vec<String> {
    let rank = |name: &str| {
        PREFERENCE
            .iter()
            .position(|known| *known == name)
            .unwrap_or(PREFERENCE.len())
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    names.dedup();
    names
}

/// Chooses among `offered`: the user's or operator's choice if they made one (`requested`:
/// where it came from and the name), else the fastest.
pub(crate) fn choose(
    offered: Vec<String>,
    requested: Option<(&str, &str)>,
    installer: &str,
) -> Result<Solver, SolverError> {
    match requested {
        Some((source_name, wanted)) => {
            if offered.iter().any(|name| name == wanted) {
                // `CONDA_SOLVER=classic`, or `solver: classic in the app's .condarc`.
                let reason = if source_name.starts_with("CONDA_") {
                    format!("{source_name}={wanted}")
                } else {
                    format!("solver: {wanted} in {source_name}")
                };
                Ok(Solver {
                    name: wanted.to_string(),
                    reason,
                    offered,
                })
            } else {
                Err(SolverError::Unavailable {
                    wanted: wanted.to_string(),
                    source_name: source_name.to_string(),
                    offered,
                    installer: installer.to_string(),
                })
            }
        }
        None => {
            let name = offered
                .first()
                .cloned()
                .unwrap_or_else(|| "classic".to_string());
            let reason = if offered.len() > 1 {
                format!(
                    "the fastest this conda offers: {}; set CONDA_SOLVER to choose",
                    offered.join(", ")
                )
            } else {
                format!("the only solver {installer}'s conda offers")
            };
            Ok(Solver {
                name,
                reason,
                offered,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_fastest_offered_solver_runs_unless_one_is_chosen() {
        let all = fastest_first(names(&["classic", "libmamba", "rattler"]));
        assert_eq!(all, ["rattler", "libmamba", "classic"]);
        let solver = choose(all.clone(), None, "miniforge3 26.5.3").unwrap();
        assert_eq!(solver.name, "rattler");
        assert!(solver.reason.contains("rattler, libmamba, classic"));
        assert_eq!(solver.others(), ["libmamba", "classic"]);

        let chosen = choose(all, Some(("CONDA_SOLVER", "classic")), "x").unwrap();
        assert_eq!(
            (chosen.name.as_str(), chosen.reason.as_str()),
            ("classic", "CONDA_SOLVER=classic")
        );
        let from_condarc = choose(
            names(&["rattler", "classic"]),
            Some(("the app's .condarc", "classic")),
            "x",
        )
        .unwrap();
        assert_eq!(from_condarc.reason, "solver: classic in the app's .condarc");

        let libmamba = fastest_first(names(&["libmamba", "classic"]));
        assert_eq!(choose(libmamba, None, "x").unwrap().name, "libmamba");
        let only = choose(names(&["classic"]), None, "miniconda2 4.7.12.1").unwrap();
        assert_eq!(
            only.reason,
            "the only solver miniconda2 4.7.12.1's conda offers"
        );
    }

    #[test]
    fn a_solver_the_conda_lacks_is_refused_naming_what_it_has() {
        let error = choose(
            names(&["libmamba", "classic"]),
            Some(("CONDA_SOLVER", "rattler")),
            "miniforge3 24.7.1",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "CONDA_SOLVER asks for rattler: the installed conda offers libmamba, classic"
        );
    }

    #[test]
    fn an_unknown_plugin_solver_is_kept_after_the_known_ones() {
        assert_eq!(
            fastest_first(names(&["zeta", "classic", "rattler"])),
            ["rattler", "classic", "zeta"]
        );
    }
}

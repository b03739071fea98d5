//! The Cloud Foundry stacks this buildpack supports: one row per stack, read by everything that
//! depends on the stack (packaging, staging, `vendor` and its pip targets, the docs). Adding a
//! stack is adding a row here, and listing it in the manifest entries whose installers run on
//! it.

use std::fmt;

/// A Cloud Foundry root file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stack {
    /// `CF_STACK`'s value.
    pub(crate) name: &'static str,
    /// The Ubuntu release the stack is built from.
    pub(crate) ubuntu: &'static str,
    /// The stack's glibc: the newest `__glibc` a conda package may need, and the newest
    /// manylinux tag a wheel may have, to run there.
    pub(crate) glibc: (u32, u32),
    pub(crate) status: Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Current,
    /// Past its end of life since `since` (YYYY-MM-DD): still served, with a warning.
    Deprecated {
        since: &'static str,
    },
}

/// What Cloud Foundry uses when an app names no stack, and what local runs without `CF_STACK`
/// stage for.
pub(crate) const DEFAULT: &str = "cflinuxfs4";

/// Ubuntu's own release notes give the glibc of each release; Cloud Foundry's stack release
/// notes (cloudfoundry/cflinuxfs3, cflinuxfs4, cflinuxfs5) name the Ubuntu release. cflinuxfs3's
/// date is Ubuntu 18.04's end of standard support, after which Cloud Foundry stopped
/// publishing cflinuxfs3 releases.
pub(crate) const STACKS: &[Stack] = &[
    Stack {
        name: "cflinuxfs3",
        ubuntu: "18.04",
        glibc: (2, 27),
        status: Status::Deprecated {
            since: "2023-05-31",
        },
    },
    Stack {
        name: "cflinuxfs4",
        ubuntu: "22.04",
        glibc: (2, 35),
        status: Status::Current,
    },
    Stack {
        name: "cflinuxfs5",
        ubuntu: "24.04",
        glibc: (2, 39),
        status: Status::Current,
    },
];

/// The stack named `name`, if this buildpack supports it.
pub(crate) fn find(name: &str) -> Option<&'static Stack> {
    STACKS.iter().find(|stack| stack.name == name)
}

/// Every supported stack's name, for messages: `cflinuxfs3 (deprecated), cflinuxfs4, cflinuxfs5`.
pub(crate) fn supported_names() -> String {
    STACKS
        .iter()
        .map(|stack| match stack.status {
            Status::Current => stack.name.to_string(),
            Status::Deprecated { .. } => format!("{} (deprecated)", stack.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The stacks that are not deprecated.
pub(crate) fn current() -> impl Iterator<Item = &'static Stack> {
    STACKS
        .iter()
        .filter(|stack| stack.status == Status::Current)
}

/// What a build for "every current stack" may rely on: the lowest glibc among them, and the
/// stacks that glibc serves (every stack whose glibc is at least that one).
pub(crate) fn every_current() -> Target {
    let glibc = current()
        .map(|stack| stack.glibc)
        .min()
        .expect("the table lists a current stack");
    Target::for_glibc(glibc)
}

/// A glibc to build for, and the supported stacks it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) glibc: (u32, u32),
    pub(crate) stacks: Vec<&'static str>,
}

impl Target {
    /// Exactly `stack`'s glibc.
    pub(crate) fn for_stack(stack: &Stack) -> Self {
        Self::for_glibc(stack.glibc)
    }

    fn for_glibc(glibc: (u32, u32)) -> Self {
        Self {
            glibc,
            stacks: STACKS
                .iter()
                .filter(|stack| stack.glibc >= glibc)
                .map(|stack| stack.name)
                .collect(),
        }
    }

    /// `2.35`, as conda's `CONDA_OVERRIDE_GLIBC` and the log write it.
    pub(crate) fn glibc_version(&self) -> String {
        format!("{}.{}", self.glibc.0, self.glibc.1)
    }

    /// `cflinuxfs4 and cflinuxfs5`.
    pub(crate) fn stacks_in_words(&self) -> String {
        match self.stacks.as_slice() {
            [] => "no supported stack".into(),
            [one] => (*one).to_string(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        }
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (Ubuntu {}, glibc {}.{})",
            self.name, self.ubuntu, self.glibc.0, self.glibc.1
        )
    }
}

/// `conda-buildpack stacks`: the table, or with `names_only` one name a line.
pub(crate) fn listing(names_only: bool) -> String {
    let mut out = String::new();
    for stack in STACKS {
        if names_only {
            out.push_str(stack.name);
        } else {
            let status = match stack.status {
                Status::Current => "current".to_string(),
                Status::Deprecated { since } => format!("deprecated since {since}"),
            };
            out.push_str(&format!(
                "{:<12} Ubuntu {:<6} glibc {}.{:<3} {status}",
                stack.name, stack.ubuntu, stack.glibc.0, stack.glibc.1
            ));
        }
        out.push('\n');
    }
    out
}

/// The warning for staging on a deprecated stack, or `None` for a current one.
pub(crate) fn deprecation_warning(stack: &Stack) -> Option<String> {
    match stack.status {
        Status::Current => None,
        Status::Deprecated { since } => Some(format!(
            "{stack} is past its end of life since {since}: it gets no security fixes. Move the \
             app to {} with `cf push APP -s {}` (or `cf change-stack`).",
            current()
                .map(|stack| stack.name)
                .collect::<Vec<_>>()
                .join(" or "),
            current().last().map_or(DEFAULT, |stack| stack.name),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stack_is_named_once_and_the_default_is_current() {
        let mut names: Vec<&str> = STACKS.iter().map(|stack| stack.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), STACKS.len());
        assert_eq!(find(DEFAULT).unwrap().status, Status::Current);
        assert!(find("cflinuxfs2").is_none());
    }

    #[test]
    fn the_stacks_glibcs_are_the_ubuntu_releases() {
        assert_eq!(find("cflinuxfs3").unwrap().glibc, (2, 27));
        assert_eq!(find("cflinuxfs4").unwrap().glibc, (2, 35));
        assert_eq!(find("cflinuxfs5").unwrap().glibc, (2, 39));
    }

    #[test]
    fn every_current_stack_is_the_lowest_current_glibc_and_serves_the_newer_stacks() {
        let target = every_current();
        assert_eq!(target.glibc_version(), "2.35");
        assert_eq!(target.stacks, ["cflinuxfs4", "cflinuxfs5"]);
        assert_eq!(target.stacks_in_words(), "cflinuxfs4 and cflinuxfs5");
    }

    #[test]
    fn a_stacks_target_serves_it_and_the_newer_ones() {
        let fs3 = Target::for_stack(find("cflinuxfs3").unwrap());
        assert_eq!(fs3.stacks, ["cflinuxfs3", "cflinuxfs4", "cflinuxfs5"]);
        assert_eq!(
            fs3.stacks_in_words(),
            "cflinuxfs3, cflinuxfs4 and cflinuxfs5"
        );
        let fs5 = Target::for_stack(find("cflinuxfs5").unwrap());
        assert_eq!(fs5.stacks, ["cflinuxfs5"]);
        assert_eq!(fs5.glibc_version(), "2.39");
    }

    #[test]
    fn only_a_deprecated_stack_is_warned_about_with_its_date() {
        let warning = deprecation_warning(find("cflinuxfs3").unwrap()).unwrap();
        assert!(
            warning.contains("cflinuxfs3 (Ubuntu 18.04, glibc 2.27)"),
            "{warning}"
        );
        assert!(warning.contains("since 2023-05-31"), "{warning}");
        assert!(warning.contains("cf push APP -s cflinuxfs5"), "{warning}");
        assert!(deprecation_warning(find("cflinuxfs4").unwrap()).is_none());
        assert_eq!(
            supported_names(),
            "cflinuxfs3 (deprecated), cflinuxfs4, cflinuxfs5"
        );
    }
}

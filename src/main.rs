//! The `conda-buildpack` executable: everything lives in the library; see `lib.rs`.

fn main() -> std::process::ExitCode {
    conda_buildpack::run()
}

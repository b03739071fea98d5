//! The same scenarios through our model of the builder and through Cloud Foundry's real one.

use super::*;

/// The same apps and buildpacks through our model of the builder and through Cloud Foundry's
/// real one: the same exit code, the same droplet members with the same modes, the same
/// result.json. Without `../shared/real` this says so and skips.
#[test]
fn the_model_and_the_real_builder_agree() {
    let Some(kit) = support::world::real_kit() else {
        eprintln!("skipped: ../shared/real (Cloud Foundry's real builder) is absent");
        return;
    };
    let builder = kit.join("cf/builder");
    type Scenario = fn(&Workspace) -> Vec<PathBuf>;
    let scenarios: [(&str, Scenario); 6] = [
        ("supply then final", |ws| {
            vec![
                ws.zip(&supply_buildpack("a.zip", "a")),
                ws.zip(&final_buildpack("final.zip", "run")),
            ]
        }),
        ("a failing supply buildpack", |ws| {
            vec![
                ws.zip(&Buildpack::new("broken.zip").script("supply", "exit 3")),
                ws.zip(&final_buildpack("final.zip", "run")),
            ]
        }),
        ("a failing supply of the final buildpack", |ws| {
            vec![ws.zip(&final_buildpack("final.zip", "run").script("supply", "exit 4"))]
        }),
        ("a failing finalize", |ws| {
            vec![
                ws.zip(
                    &Buildpack::new("final.zip")
                        .script("finalize", "exit 5")
                        .release_web("run"),
                ),
            ]
        }),
        ("a legacy compile", |ws| {
            vec![
                ws.zip(
                    &Buildpack::new("legacy.zip")
                        .script(
                            "compile",
                            "mkdir -p \"$1/bin\" && echo hi > \"$1/bin/tool\"",
                        )
                        .release_web("run"),
                ),
            ]
        }),
        ("release printing garbage", |ws| {
            vec![
                ws.zip(
                    &Buildpack::new("final.zip")
                        .script("finalize", "true")
                        .script("release", "echo '- not a mapping'"),
                ),
            ]
        }),
    ];
    let mut disagreements = Vec::new();
    for (name, scenario) in scenarios {
        let outcome = |real: bool| {
            let ws = Workspace::new();
            let zips = scenario(&ws);
            let mut command = Command::new(LOCAL_CF);
            command
                .arg("stage")
                .arg(ws.app())
                .arg("--output")
                .arg(ws.output())
                .env("TMPDIR", ws.tmpdir());
            for zip in &zips {
                command.arg("--buildpack").arg(zip);
            }
            if real {
                command.arg("--builder").arg(&builder);
            }
            let staged = Outcome::of(&command.output().expect("stage"));
            let members: Vec<(String, u32)> = if ws.droplet().exists() {
                droplet_members(&ws.droplet())
                    .into_iter()
                    .map(|(name, member)| (name, member.mode))
                    .collect()
            } else {
                Vec::new()
            };
            let result = fs::read_to_string(ws.output().join("result.json")).ok();
            (staged.code, members, result)
        };
        let (model, real) = (outcome(false), outcome(true));
        if model != real {
            disagreements.push(format!("{name}:\n  model: {model:?}\n  real:  {real:?}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "our builder and Cloud Foundry's disagree:\n{}",
        disagreements.join("\n")
    );
}

//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use crate::{env, fuzz, step};

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// Strict mode (implied when the CI environment variable is set): privileged tests fail
    /// instead of skipping (TANDEM_HWTEST_STRICT=1), and cargo-deny and cargo-fuzz are required.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Skip the fuzz smoke run.
    #[arg(long)]
    pub(crate) no_fuzz: bool,
    /// Seconds of fuzzing per fuzz target in the smoke run.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub(crate) fuzz_seconds: u32,
}

/// Whether the `CI` environment variable asks for CI behaviour (`CI=true`, `CI=1`, ...).
fn ci_env(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Runs named steps and remembers their durations.
#[derive(Debug, Default)]
struct Runner {
    passed: Vec<(String, Duration)>,
    /// The counts of the `test` step, once it has passed.
    tests: Option<Tally>,
}

/// Sums of libtest's `test result: ok. 5 passed; 0 failed; 1 ignored; ...` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Tally {
    fn of(output: &str) -> Self {
        let mut tally = Self::default();
        for line in output.lines() {
            let Some(rest) = line.trim().strip_prefix("test result: ") else {
                continue;
            };
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(kind), Some(count)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(count) = count.parse::<u64>() else {
                    continue;
                };
                match kind {
                    "passed" => tally.passed += count,
                    "failed" => tally.failed += count,
                    "ignored" => tally.ignored += count,
                    _ => {}
                }
            }
        }
        tally
    }
}

impl Runner {
    /// Runs one step; on failure the error names the step.
    fn step(&mut self, name: &str, what: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
        step::header(name, what);
        let (result, elapsed) = step::timed(f);
        match result {
            Ok(()) => {
                step::footer(name, "ok", elapsed);
                self.passed.push((name.to_owned(), elapsed));
                Ok(())
            }
            Err(err) => {
                step::footer(name, "FAILED", elapsed);
                Err(err.context(format!("step `{name}` failed")))
            }
        }
    }

    /// Runs one command as a step.
    fn command(&mut self, name: &str, mut cmd: Command) -> Result<()> {
        let what = step::render(&cmd);
        self.step(name, &what, || step::run(&mut cmd))
    }

    fn skip(name: &str, why: &str) {
        println!("==> {name}: skipped ({why})");
    }
}

fn cargo_in(root: &Path) -> Command {
    let mut cmd = Command::new(crate::cargo());
    cmd.current_dir(root);
    cmd
}

/// `cargo fuzz ...` with the flags that let cargo-fuzz's `-Z` options work on stable.
fn cargo_fuzz(root: &Path) -> Command {
    let mut cmd = cargo_in(root);
    cmd.env("RUSTC_BOOTSTRAP", "1").arg("fuzz");
    cmd
}

fn tool_installed(root: &Path, tool: &str) -> bool {
    step::output(cargo_in(root).args([tool, "--version"])).is_some()
}

/// Entry point of `cargo xtask test`.
pub(crate) fn run(args: &TestArgs) -> Result<ExitCode> {
    let root = crate::workspace_root();
    let strict = args.strict || ci_env(std::env::var_os("CI").as_deref());
    if strict {
        println!(
            "xtask test: strict mode (privileged tests must run; cargo-deny, cargo-fuzz required)"
        );
    }
    Ok(conclude("xtask test", |runner| {
        steps(runner, &root, args, strict)
    }))
}

/// Entry point of `cargo xtask fuzz`.
pub(crate) fn fuzz_only(seconds: u32) -> Result<ExitCode> {
    let root = crate::workspace_root();
    Ok(conclude("xtask fuzz", |runner| {
        fuzz_steps(runner, &root, seconds)
    }))
}

/// Runs `steps`, then prints the per-step durations and the verdict line.
fn conclude(label: &str, steps: impl FnOnce(&mut Runner) -> Result<()>) -> ExitCode {
    let mut runner = Runner::default();
    let (result, elapsed) = step::timed(|| steps(&mut runner));
    println!("{label}: summary");
    for (name, took) in &runner.passed {
        println!("    {:<24} {:>9}", name, step::seconds(*took));
    }
    if let Some(t) = runner.tests {
        // The plain `N passed, N failed[, N skipped]` form CI tools read.
        let skipped = if t.ignored > 0 {
            format!(", {} skipped", t.ignored)
        } else {
            String::new()
        };
        println!("tests: {} passed, {} failed{skipped}", t.passed, t.failed);
    }
    match result {
        Ok(()) => {
            println!(
                "{label}: all {} steps passed in {}",
                runner.passed.len(),
                step::seconds(elapsed)
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{label}: {err:#}");
            println!(
                "{label}: FAILED after {} passed steps ({})",
                runner.passed.len(),
                step::seconds(elapsed)
            );
            ExitCode::FAILURE
        }
    }
}

fn steps(runner: &mut Runner, root: &Path, args: &TestArgs, strict: bool) -> Result<()> {
    // First, so that a machine that cannot run the privileged tests says what it lacks before
    // minutes of building, instead of failing or skipping test by test.
    runner.step(
        "env",
        "cargo xtask check-env (toolchain, privileges, kernel, client programs, mount points)",
        || {
            let report = env::Report::of(env::checks());
            print!("{}", report.text);
            env_verdict(&report, strict)
        },
    )?;

    let mut fmt = cargo_in(root);
    fmt.args(["fmt", "--all", "--", "--check"]);
    runner.command("fmt", fmt)?;

    // `--features xtask/lab` so the lab code (behind that feature, see xtask/Cargo.toml) is linted
    // too; the workspace build needs the datapath anyway.
    let mut clippy = cargo_in(root);
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--features",
        "xtask/lab",
    ]);
    clippy.args(["--", "-D", "warnings"]);
    runner.command("clippy", clippy)?;

    let mut test = cargo_in(root);
    test.args(["test", "--workspace", "--locked"]);
    if strict {
        test.env("TANDEM_HWTEST_STRICT", "1");
    }
    let what = step::render(&test);
    let mut tally = Tally::default();
    runner.step("test", &what, || {
        tally = Tally::of(&step::run_tee(&mut test)?);
        if tally.passed == 0 {
            bail!("cargo test ran no test");
        }
        Ok(())
    })?;
    runner.tests = Some(tally);

    if tool_installed(root, "deny") {
        let mut deny = cargo_in(root);
        deny.args(["deny", "--locked", "check", "licenses", "bans", "sources"]);
        runner.command("deny", deny)?;
    } else if strict {
        runner.step("deny", "cargo deny check licenses bans sources", || {
            bail!("cargo-deny is not installed (strict mode requires it); run `bash .ci/install`")
        })?;
    } else {
        Runner::skip(
            "deny",
            "cargo-deny is not installed; `bash .ci/install` installs it",
        );
    }

    if args.no_fuzz {
        Runner::skip("fuzz", "--no-fuzz");
        return Ok(());
    }
    if !tool_installed(root, "fuzz") {
        if strict {
            return runner.step("fuzz", "cargo fuzz", || {
                bail!(
                    "cargo-fuzz is not installed (strict mode requires it); run `bash .ci/install`"
                )
            });
        }
        Runner::skip(
            "fuzz",
            "cargo-fuzz is not installed; `bash .ci/install` installs it",
        );
        return Ok(());
    }
    fuzz_steps(runner, root, args.fuzz_seconds)
}

/// Strict mode (CI) needs everything the privileged tests use; otherwise a missing piece is
/// only reported (tests that need it skip without root, or fail with their own message).
fn env_verdict(report: &env::Report, strict: bool) -> Result<()> {
    if report.missing.is_empty() {
        return Ok(());
    }
    let list = report.missing.join("\n    ");
    if strict {
        bail!(
            "{} missing on this machine; strict mode runs every privileged test, which needs \
             them:\n    {list}",
            report.missing.len()
        );
    }
    println!(
        "xtask test: not strict, going on without:\n    {list}\n(tests that need them skip \
         or fail; `--strict` stops here)"
    );
    Ok(())
}

fn fuzz_steps(runner: &mut Runner, root: &Path, seconds: u32) -> Result<()> {
    let list = step::output(cargo_fuzz(root).args(["list", "--fuzz-dir", fuzz::FUZZ_DIR]))
        .ok_or_else(|| anyhow!("`cargo fuzz list --fuzz-dir {}` failed", fuzz::FUZZ_DIR))?;
    let targets: Vec<String> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        bail!(
            "`cargo fuzz list` found no fuzz targets in {}",
            fuzz::FUZZ_DIR
        );
    }

    runner.step(
        "fuzz seed",
        &format!("{} -> {}/corpus", fuzz::VECTOR_DIR, fuzz::FUZZ_DIR),
        || {
            println!("{}", fuzz::seed(root, &targets)?);
            Ok(())
        },
    )?;

    // The harnesses' own tests (e.g. that proto_request's messages are answered at all), so a
    // harness that silently drops everything cannot make the smoke runs pass.
    let mut harness = cargo_in(root);
    harness
        .args(["test", "--manifest-path"])
        .arg(format!("{}/Cargo.toml", fuzz::FUZZ_DIR));
    harness.arg("--lib");
    runner.command("fuzz harness tests", harness)?;

    // One build of every target; the runs below then find it up to date.
    let mut build = cargo_fuzz(root);
    build.args(["build", "--fuzz-dir", fuzz::FUZZ_DIR]);
    runner.command("fuzz build", build)?;

    for target in &targets {
        let mut run = cargo_fuzz(root);
        run.args(["run", "--fuzz-dir", fuzz::FUZZ_DIR, target, "--"]);
        run.arg(format!("-max_total_time={seconds}"))
            .arg("-rss_limit_mb=2048");
        let before = fuzz::artifacts(root, target);
        let what = step::render(&run);
        runner.step(&format!("fuzz {target}"), &what, || {
            step::run(&mut run).map_err(|err| {
                let found: Vec<_> = fuzz::artifacts(root, target)
                    .difference(&before)
                    .map(|path| format!("\n    {}", fuzz::describe_artifact(path)))
                    .collect();
                err.context(format!(
                    "fuzz target {target} failed; new artifacts:{}",
                    found.concat()
                ))
            })
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn ci_env_truthy_values_enable_strict() {
        assert!(ci_env(Some(OsStr::new("true"))));
        assert!(ci_env(Some(OsStr::new("1"))));
        assert!(!ci_env(Some(OsStr::new("false"))));
        assert!(!ci_env(Some(OsStr::new("0"))));
        assert!(!ci_env(Some(OsStr::new(""))));
        assert!(!ci_env(None));
    }

    #[test]
    fn tally_of_cargo_test_output_sums_result_lines() {
        let output = "running 3 tests\ntest a ... ok\n\n\
            test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; \
            finished in 0.01s\n\
            test result: FAILED. 10 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out\n\
            a test named test result: 5 passed is not a result line\n";
        assert_eq!(
            Tally::of(output),
            Tally {
                passed: 13,
                failed: 2,
                ignored: 1
            }
        );
        assert_eq!(Tally::of("no tests here"), Tally::default());
    }

    #[test]
    fn runner_failed_step_is_named_and_not_counted() {
        let mut runner = Runner::default();
        runner.step("first", "ok step", || Ok(())).unwrap();
        let err = runner
            .step("second", "bad step", || bail!("boom"))
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "step `second` failed: boom");
        let names: Vec<_> = runner.passed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["first"]);
    }

    #[test]
    fn env_verdict_missing_piece_fails_strict_mode_with_its_fix() {
        let missing = env::Report {
            text: String::new(),
            missing: vec![
                "dhcpcd: apt-get install --no-install-recommends dhcpcd-base".to_owned(),
                "/run/dhcpcd: rm /run && mkdir -p /run/dhcpcd".to_owned(),
            ],
        };
        let err = env_verdict(&missing, true).unwrap_err().to_string();
        assert!(err.starts_with("2 missing on this machine"), "{err}");
        assert!(
            err.contains("\n    dhcpcd: apt-get install --no-install-recommends dhcpcd-base\n"),
            "{err}"
        );
        assert!(
            err.ends_with("/run/dhcpcd: rm /run && mkdir -p /run/dhcpcd"),
            "{err}"
        );
        assert!(env_verdict(&missing, false).is_ok());
        let complete = env::Report {
            text: String::new(),
            missing: vec![],
        };
        assert!(env_verdict(&complete, true).is_ok());
    }

    #[test]
    fn runner_command_step_fails_on_nonzero_exit() {
        let mut runner = Runner::default();
        assert!(runner.command("true", Command::new("true")).is_ok());
        assert!(runner.command("false", Command::new("false")).is_err());
        assert_eq!(runner.passed.len(), 1);
    }
}

//! `cargo xtask torture`: its arguments, the boot it plans, and which serial
//! lines it shows.

use std::time::Duration;

use crate::cli::{Cli, Command, FirmwareArg, TortureArgs, boot_params};
use crate::torture::{self, Weights, parse_weights, shows};
use clap::Parser;
use clap::error::ErrorKind;

fn parse(args: &[&str]) -> Result<TortureArgs, clap::Error> {
    let cli = Cli::try_parse_from(["cargo-xtask", "torture"].into_iter().chain(args.iter().copied()))?;
    match cli.command {
        Command::Torture(t) => Ok(t),
        other => panic!("parsed as {other:?}"),
    }
}

fn param<'a>(plan: &'a torture::Plan, key: &str) -> Option<&'a str> {
    // The last one wins, as in the boot parameters file.
    plan.params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn defaults_plan_a_minute_of_hotplug_torture_on_eight_cpus() {
    let args = parse(&[]).unwrap();
    assert_eq!((args.duration, args.smp, args.hotplug_ms), (60, 8, 20));
    assert!(!args.no_hotplug && !args.verbose);
    assert_eq!(args.firmware, FirmwareArg::Bios);
    assert_eq!(args.weights, Weights::default());
    let plan = torture::plan(&args.request()).unwrap();
    assert_eq!(plan.test, "stress::hotplug_torture");
    assert_eq!(
        plan.params,
        [
            ("ktest.run", "stress::hotplug_torture"),
            ("stress.ms", "60000"),
            ("stress.weights", "1,1,1,1,1,1"),
            ("torture.hotplug_ms", "20"),
            ("smp.expect_cpus", "8"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(plan.timeout, Duration::from_secs(60 + 120));
}

#[test]
fn every_option() {
    let args = parse(&[
        "--duration",
        "20",
        "--smp",
        "4",
        "--weights",
        "5,0,1,1,0,2",
        "--hotplug-ms",
        "7",
        "--firmware",
        "uefi",
        "-p",
        "log=debug",
        "-p",
        "smp.expect_cpus=3",
        "--verbose",
        "--",
        "-d",
        "int",
    ])
    .unwrap();
    assert_eq!(args.firmware, FirmwareArg::Uefi);
    assert_eq!(args.qemu_args, ["-d", "int"]);
    assert!(args.verbose);
    let plan = torture::plan(&args.request()).unwrap();
    assert_eq!(param(&plan, "stress.ms"), Some("20000"));
    assert_eq!(param(&plan, "stress.weights"), Some("5,0,1,1,0,2"));
    assert_eq!(param(&plan, "torture.hotplug_ms"), Some("7"));
    assert_eq!(param(&plan, "log"), Some("debug"));
    assert_eq!(param(&plan, "smp.expect_cpus"), Some("3"), "the user's -p comes last and wins");
    assert_eq!(plan.timeout, Duration::from_secs(140));
    // The parameters make a valid boot parameters file.
    let file = boot_params(&plan.params).to_file_contents();
    assert!(file.contains("ktest.run=stress::hotplug_torture"), "{file}");
}

#[test]
fn no_hotplug_runs_the_plain_stress() {
    let plan = torture::plan(&parse(&["--no-hotplug", "--smp", "2"]).unwrap().request()).unwrap();
    assert_eq!(plan.test, "stress::cross_call_stress");
    assert_eq!(param(&plan, "ktest.run"), Some("stress::cross_call_stress"));
    assert_eq!(param(&plan, "torture.hotplug_ms"), None);
    let err = parse(&["--no-hotplug", "--hotplug-ms", "5"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
}

#[test]
fn faults_run_the_fault_test_with_its_short_timeouts() {
    let plan = torture::plan(&parse(&["--faults"]).unwrap().request()).unwrap();
    assert_eq!(param(&plan, "ktest.run"), Some("stress::hotplug_torture_with_faults"));
    for (key, value) in torture::FAULT_PARAMS {
        assert_eq!(param(&plan, key), Some(value), "{key}");
    }
    let err = parse(&["--faults", "--no-hotplug"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
}

/// The guest's fault test declares its own parameters for `cargo xtask
/// test`; `--faults` must boot it with the same ones.
#[test]
fn fault_params_are_the_guest_tests_own() {
    let guest = include_str!("../../../tests/guest/src/faults.rs");
    let start = guest.find("pub const PARAMS: &str = \"").expect("PARAMS in faults.rs");
    let declared: String = guest[start..].split('"').nth(1).unwrap().split_whitespace().collect::<Vec<_>>().join("");
    let declared = declared.replace('\\', "");
    for (key, value) in torture::FAULT_PARAMS {
        assert!(declared.split(';').any(|kv| kv == format!("{key}={value}")), "{key}={value} not in {declared}");
    }
}

#[test]
fn too_few_cpus_is_refused_before_booting() {
    let why = torture::plan(&parse(&["--smp", "2"]).unwrap().request()).unwrap_err();
    assert!(why.contains("--smp 3"), "{why}");
    let why = torture::plan(&parse(&["--smp", "1", "--no-hotplug"]).unwrap().request()).unwrap_err();
    assert!(why.contains("--smp 2"), "{why}");
}

#[test]
fn bad_arguments_are_rejected() {
    for (args, needle) in [
        (&["--duration", "0"][..], "0"),
        (&["--duration", "soon"], "soon"),
        (&["--hotplug-ms", "0"], "0"),
        (&["--weights", "1,2,3"], "6 weights"),
        (&["--weights", "1,2,3,4,5,x"], "many-nowait"),
        (&["--weights", "1,2,3,4,5,-1"], "-1"),
        (&["--weights", "0,0,0,0,0,0"], "all weights are 0"),
        (&["--firmware", "all"], "all"),
        (&["-p", "ktest.run=boot::x"], "set by the test runner"),
        (&["-p", "novalue"], "key=value"),
    ] {
        let err = parse(args).expect_err(&format!("{args:?}"));
        assert_ne!(err.kind(), ErrorKind::DisplayHelp);
        assert!(err.to_string().contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn weights_parse_strictly_and_print_back() {
    assert_eq!(parse_weights(" 1, 2,3 ,4,5,6"), Ok(Weights([1, 2, 3, 4, 5, 6])));
    assert_eq!(parse_weights("0,0,0,0,0,9").unwrap().to_string(), "0,0,0,0,0,9");
    assert!(parse_weights("1,1,1,1,1,1,1").is_err());
    assert!(parse_weights("").is_err());
}

#[test]
fn shows_progress_summary_and_errors_only() {
    for line in [
        "stress: 4000 ms left, 123 calls so far, 8 CPUs online",
        "stress: single       sent       10 ran       10 offline      2\r",
        "torture: cpu_down: 5 ok, 0 failed, min 1 us, mean 2 us, max 3 us",
        "stress: verdict SUCCESS",
        "[    3.123456 cpu2] ERROR guest_tests::stress: stress: async call meant for cpu1 ran on cpu2",
    ] {
        assert!(shows(line), "{line:?}");
    }
    for line in [
        "[    0.012345 cpu0] INFO  kernel: hello",
        "[    0.012345 cpu0] WARN  kernel::smp::calls: stress: not an error",
        "@@KTEST BEGIN\tstress::hotplug_torture",
        "  stress: indented",
        "",
    ] {
        assert!(!shows(line), "{line:?}");
    }
}

#[test]
fn torture_has_help() {
    let err = parse(&["--help"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DisplayHelp);
    let text = err.to_string();
    assert!(text.contains("--duration") && text.contains("--no-hotplug") && text.contains("Exit status"), "{text}");
}
